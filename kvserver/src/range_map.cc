#include "range_map.h"

#include <algorithm>
#include <set>

#include "raft/coding.h"

namespace kv {
namespace {

constexpr std::uint8_t kDescriptorVersion = 1;
constexpr std::uint8_t kSplitRecordVersion = 1;
constexpr std::uint32_t kMaxKeyBytes = kMaxRangeKeyBytes;
constexpr std::uint32_t kMaxReplicas = 64;
constexpr int kFirstPrintable = 0x20;
constexpr int kPrintable = 0x7f - kFirstPrintable;  // 95 first bytes

// Does [a_start, a_end) overlap [b_start, b_end)? ("" ends are +infinity.)
bool Overlaps(std::string_view a_start, std::string_view a_end, std::string_view b_start,
              std::string_view b_end) {
  const bool a_before_b_ends = b_end.empty() || a_start < b_end;
  const bool b_before_a_ends = a_end.empty() || b_start < a_end;
  return a_before_b_ends && b_before_a_ends;
}

}  // namespace

bool RangeDescriptor::Contains(std::string_view key) const {
  return key >= start && (end.empty() || key < end);
}

std::string EncodeDescriptor(const RangeDescriptor& d) {
  std::string out;
  raft::ByteWriter w(&out);
  w.U8(kDescriptorVersion);
  w.U64(d.id);
  w.U64(d.generation);
  w.Bytes(d.start);
  w.Bytes(d.end);
  w.U32(static_cast<std::uint32_t>(d.replicas.size()));
  for (raft::NodeId r : d.replicas) w.U64(r);
  return out;
}

raft::Result<RangeDescriptor> DecodeDescriptor(std::string_view in) {
  raft::ByteReader r(in, "range_descriptor");
  const std::uint8_t version = r.U8("version");
  if (r.ok() && version != kDescriptorVersion) r.Fail("unknown version " + std::to_string(version));
  RangeDescriptor d;
  d.id = r.U64("group");
  d.generation = r.U64("generation");
  d.start = r.Bytes("start", kMaxKeyBytes);
  d.end = r.Bytes("end", kMaxKeyBytes);
  const std::uint32_t n = r.Count("replicas", kMaxReplicas, 8);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) d.replicas.push_back(r.U64("replica"));
  if (r.ok() && d.id == 0) r.Fail("range id 0");
  if (r.ok() && !d.end.empty() && d.start >= d.end) r.Fail("start not below end");
  if (raft::Status s = r.Finish(); !s.ok()) return s;
  return d;
}

std::string EncodeSplitRecord(const SplitRecord& rec) {
  std::string out;
  raft::ByteWriter w(&out);
  w.U8(kSplitRecordVersion);
  w.U64(rec.index);
  w.Bytes(EncodeDescriptor(rec.left));
  w.Bytes(EncodeDescriptor(rec.right));
  w.U32(static_cast<std::uint32_t>(rec.voters.size()));
  for (raft::NodeId v : rec.voters) w.U64(v);
  return out;
}

raft::Result<SplitRecord> DecodeSplitRecord(std::string_view in) {
  raft::ByteReader r(in, "split_record");
  const std::uint8_t version = r.U8("version");
  if (r.ok() && version != kSplitRecordVersion)
    r.Fail("unknown version " + std::to_string(version));
  SplitRecord rec;
  rec.index = r.U64("index");
  const std::string left = r.Bytes("left", 4 * kMaxKeyBytes);
  const std::string right = r.Bytes("right", 4 * kMaxKeyBytes);
  const std::uint32_t n = r.Count("voters", kMaxReplicas, 8);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) rec.voters.push_back(r.U64("voter"));
  if (raft::Status s = r.Finish(); !s.ok()) return s;
  auto l = DecodeDescriptor(left);
  if (!l.ok()) return l.status();
  auto rt = DecodeDescriptor(right);
  if (!rt.ok()) return rt.status();
  if (rec.voters.empty())
    return raft::Status(raft::ErrorCode::kCorruption, "split_record: no voters");
  rec.left = std::move(l).value();
  rec.right = std::move(rt).value();
  return rec;
}

std::string EncodeConf(const raft::ConfState& c) {
  std::string out;
  raft::ByteWriter w(&out);
  for (const std::set<raft::NodeId>* ids : {&c.voters, &c.learners}) {
    w.U32(static_cast<std::uint32_t>(ids->size()));
    for (raft::NodeId id : *ids) w.U64(id);
  }
  return out;
}

raft::Result<raft::ConfState> DecodeConf(std::string_view in) {
  raft::ByteReader r(in, "conf");
  raft::ConfState c;
  for (std::set<raft::NodeId>* ids : {&c.voters, &c.learners}) {
    const std::uint32_t n = r.Count("members", kMaxReplicas, 8);
    for (std::uint32_t i = 0; i < n && r.ok(); ++i) ids->insert(r.U64("member"));
  }
  if (raft::Status s = r.Finish(); !s.ok()) return s;
  return c;
}

std::vector<std::string> EvenSplitPoints(int n) {
  std::vector<std::string> points;
  n = std::min(n, kPrintable);
  for (int i = 1; i < n; ++i)
    points.push_back(std::string(1, static_cast<char>(kFirstPrintable + i * kPrintable / n)));
  return points;
}

std::vector<RangeDescriptor> BootstrapRanges(int n, const std::vector<raft::NodeId>& replicas) {
  const std::vector<std::string> points = EvenSplitPoints(n);
  std::vector<RangeDescriptor> out;
  for (std::size_t i = 0; i <= points.size(); ++i) {
    RangeDescriptor d;
    d.id = kFirstDataRange + i;
    d.generation = 1;
    d.start = i == 0 ? "" : points[i - 1];
    d.end = i == points.size() ? "" : points[i];
    d.replicas = replicas;
    out.push_back(std::move(d));
  }
  return out;
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last != 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return end;  // +infinity
}

bool RangeMap::Update(const std::vector<RangeDescriptor>& ds) {
  // The newest of each range among `ds` (an update may name one range at two
  // generations: a split's record and the new range's own later split), if not older
  // than the one held.
  std::map<RangeId, const RangeDescriptor*> newest;
  for (const RangeDescriptor& d : ds) {
    const RangeDescriptor*& n = newest[d.id];
    if (n == nullptr || n->generation < d.generation) n = &d;
  }
  std::vector<const RangeDescriptor*> fresh;
  for (const auto& [id, d] : newest) {
    const RangeDescriptor* held = Find(id);
    if (held != nullptr && held->generation > d->generation) continue;
    fresh.push_back(d);
  }
  if (fresh.empty()) return false;
  for (const RangeDescriptor* d : fresh) {
    for (auto it = by_start_.begin(); it != by_start_.end();) {
      const RangeDescriptor& o = it->second;
      if (o.id == d->id || Overlaps(o.start, o.end, d->start, d->end))
        it = by_start_.erase(it);
      else
        ++it;
    }
  }
  for (const RangeDescriptor* d : fresh) by_start_[d->start] = *d;
  return true;
}

const RangeDescriptor* RangeMap::Lookup(std::string_view key) const {
  auto it = by_start_.upper_bound(std::string(key));
  if (it == by_start_.begin()) return nullptr;
  --it;
  return it->second.Contains(key) ? &it->second : nullptr;
}

const RangeDescriptor* RangeMap::Find(RangeId id) const {
  for (const auto& [start, d] : by_start_)
    if (d.id == id) return &d;
  return nullptr;
}

std::vector<RangeDescriptor> RangeMap::Overlapping(std::string_view start,
                                                   std::string_view end) const {
  std::vector<RangeDescriptor> out;
  for (const auto& [s, d] : by_start_)
    if (Overlaps(d.start, d.end, start, end)) out.push_back(d);
  return out;
}

std::vector<RangeDescriptor> RangeMap::All() const {
  std::vector<RangeDescriptor> out;
  for (const auto& [s, d] : by_start_) out.push_back(d);
  return out;
}

std::string RangeMap::CheckTiling() const {
  if (by_start_.empty()) return "no ranges";
  std::string expect;  // where the next range must start
  bool ended = false;
  for (const auto& [s, d] : by_start_) {
    if (ended) return "range " + std::to_string(d.id) + " starts after the end of the key space";
    if (d.start != expect)
      return "range " + std::to_string(d.id) + " starts at \"" + d.start + "\", not at \"" +
             expect + "\"";
    if (d.end.empty()) ended = true;
    expect = d.end;
  }
  if (!ended) return "the last range ends at \"" + expect + "\", not at the end of the key space";
  return "";
}

}  // namespace kv
