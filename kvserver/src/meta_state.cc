#include "meta_state.h"

#include <algorithm>

#include "raft/coding.h"

namespace kv {
namespace {

constexpr std::uint8_t kProcessVersion = 1;
constexpr std::uint8_t kMetaCommandVersion = 3;
constexpr std::uint8_t kMetaSnapshotVersion = 2;  // 1: before split orders
constexpr std::uint32_t kMaxProcesses = 4096;
constexpr std::uint32_t kMaxFieldBytes = 4096;
constexpr std::uint32_t kMaxDescriptors = 1024;
constexpr std::uint32_t kMaxDescriptorBytes = 256u << 10;
constexpr std::uint32_t kMaxKeyBytes = 64u << 10;  // as a descriptor's keys

bool ValidState(std::uint8_t s) {
  return s == static_cast<std::uint8_t>(ProcessState::kMember) ||
         s == static_cast<std::uint8_t>(ProcessState::kLeaving);
}

}  // namespace

std::string EncodeProcess(const ProcessRecord& p) {
  std::string out;
  raft::ByteWriter w(&out);
  w.U8(kProcessVersion);
  w.U64(p.id);
  w.U8(static_cast<std::uint8_t>(p.state));
  w.Bytes(p.name);
  w.Bytes(p.raft_addr);
  w.Bytes(p.http_addr);
  return out;
}

raft::Result<ProcessRecord> DecodeProcess(std::string_view in) {
  raft::ByteReader r(in, "process");
  const std::uint8_t version = r.U8("version");
  if (r.ok() && version != kProcessVersion) r.Fail("unknown version " + std::to_string(version));
  ProcessRecord p;
  p.id = r.U64("id");
  const std::uint8_t state = r.U8("state");
  if (r.ok() && !ValidState(state)) r.Fail("unknown state " + std::to_string(state));
  p.state = static_cast<ProcessState>(state);
  p.name = r.Bytes("name", kMaxFieldBytes);
  p.raft_addr = r.Bytes("raft_addr", kMaxFieldBytes);
  p.http_addr = r.Bytes("http_addr", kMaxFieldBytes);
  if (r.ok() && p.id == raft::kNoNode) r.Fail("process id 0");
  if (r.ok() && p.name.empty()) r.Fail("empty name");
  if (raft::Status s = r.Finish(); !s.ok()) return s;
  return p;
}

std::string EncodeMetaCommand(const MetaCommand& c) {
  std::string out;
  raft::ByteWriter w(&out);
  w.U8(kMetaCommandVersion);
  w.U8(static_cast<std::uint8_t>(c.op));
  switch (c.op) {
    case MetaCommand::Op::kAddProcess:
      w.Raw(EncodeProcess(c.process));
      break;
    case MetaCommand::Op::kRemoveProcess:
      w.U64(c.id);
      break;
    case MetaCommand::Op::kSetProcessState:
      w.U64(c.id);
      w.U8(static_cast<std::uint8_t>(c.state));
      break;
    case MetaCommand::Op::kPutDescriptors:
      w.U32(static_cast<std::uint32_t>(c.descriptors.size()));
      for (const RangeDescriptor& d : c.descriptors) w.Bytes(EncodeDescriptor(d));
      break;
    case MetaCommand::Op::kOrderSplit:
      w.U64(c.order.range);
      w.U64(c.order.generation);
      w.Bytes(c.order.key);
      break;
    case MetaCommand::Op::kCancelSplit:
      w.U64(c.order.range);
      w.U64(c.order.generation);
      break;
  }
  return out;
}

raft::Result<MetaCommand> DecodeMetaCommand(std::string_view in) {
  raft::ByteReader r(in, "meta_command");
  const std::uint8_t version = r.U8("version");
  if (r.ok() && version != kMetaCommandVersion)
    r.Fail("unknown version " + std::to_string(version));
  const std::uint8_t op = r.U8("op");
  MetaCommand c;
  c.op = static_cast<MetaCommand::Op>(op);
  if (!r.ok()) return r.Finish();
  switch (c.op) {
    case MetaCommand::Op::kAddProcess: {
      auto p = DecodeProcess(r.Rest());
      if (!p.ok()) return p.status();
      c.process = std::move(p).value();
      return c;
    }
    case MetaCommand::Op::kRemoveProcess:
      c.id = r.U64("id");
      break;
    case MetaCommand::Op::kSetProcessState: {
      c.id = r.U64("id");
      const std::uint8_t state = r.U8("state");
      if (r.ok() && !ValidState(state)) r.Fail("unknown state " + std::to_string(state));
      c.state = static_cast<ProcessState>(state);
      break;
    }
    case MetaCommand::Op::kPutDescriptors: {
      const std::uint32_t n = r.Count("descriptors", kMaxDescriptors, 4);
      for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
        const std::string enc = r.Bytes("descriptor", kMaxDescriptorBytes);
        if (!r.ok()) break;
        auto d = DecodeDescriptor(enc);
        if (!d.ok()) return d.status();
        c.descriptors.push_back(std::move(d).value());
      }
      break;
    }
    case MetaCommand::Op::kOrderSplit:
    case MetaCommand::Op::kCancelSplit:
      c.order.range = r.U64("range");
      c.order.generation = r.U64("generation");
      if (c.op == MetaCommand::Op::kOrderSplit) c.order.key = r.Bytes("key", kMaxKeyBytes);
      break;
    default:
      r.Fail("unknown op " + std::to_string(op));
  }
  if (raft::Status s = r.Finish(); !s.ok()) return s;
  return c;
}

std::string MetaState::Apply(const MetaCommand& c) {
  switch (c.op) {
    case MetaCommand::Op::kAddProcess: {
      auto it = processes_.find(c.process.id);
      if (it != processes_.end() && it->second.name != c.process.name)
        return "process id " + std::to_string(c.process.id) + " is taken by " + it->second.name;
      ProcessRecord p = c.process;
      p.state = ProcessState::kMember;  // joining (again): addresses may have changed
      processes_[p.id] = std::move(p);
      return "";
    }
    case MetaCommand::Op::kRemoveProcess:
      if (processes_.erase(c.id) == 0) return "no process " + std::to_string(c.id);
      return "";
    case MetaCommand::Op::kSetProcessState: {
      auto it = processes_.find(c.id);
      if (it == processes_.end()) return "no process " + std::to_string(c.id);
      it->second.state = c.state;
      return "";
    }
    case MetaCommand::Op::kPutDescriptors: {
      if (c.descriptors.empty()) return "no descriptors";
      RangeMap next = ranges_;
      if (!next.Update(c.descriptors)) return "every descriptor is older than the one held";
      if (std::string fault = next.CheckTiling(); !fault.empty())
        return "the directory would not tile the key space: " + fault;
      ranges_ = std::move(next);
      for (const RangeDescriptor& d : c.descriptors) next_range_ = std::max(next_range_, d.id + 1);
      // Orders the update carried out (or overtook) go.
      for (auto it = orders_.begin(); it != orders_.end();) {
        const RangeDescriptor* d = ranges_.Find(it->first);
        if (d == nullptr || d->generation > it->second.generation)
          it = orders_.erase(it);
        else
          ++it;
      }
      return "";
    }
    case MetaCommand::Op::kOrderSplit: {
      const SplitOrder& o = c.order;
      const RangeDescriptor* d = ranges_.Find(o.range);
      if (d == nullptr || o.range == kMetaRange) return "no range " + std::to_string(o.range);
      if (orders_.count(o.range)) return "range " + std::to_string(o.range) + " has a split order";
      if (d->generation != o.generation)
        return "range " + std::to_string(o.range) + " is at generation " +
               std::to_string(d->generation);
      if (o.key <= d->start || (!d->end.empty() && o.key >= d->end))
        return "the key is not inside range " + std::to_string(o.range);
      SplitOrder order = o;
      order.new_range = next_range_++;
      orders_[o.range] = std::move(order);
      return "";
    }
    case MetaCommand::Op::kCancelSplit: {
      auto it = orders_.find(c.order.range);
      if (it == orders_.end() || it->second.generation != c.order.generation)
        return "no such split order";
      orders_.erase(it);
      return "";
    }
  }
  return "unknown op";
}

std::string MetaState::EncodeSnapshot() const {
  std::string out;
  raft::ByteWriter w(&out);
  w.U8(kMetaSnapshotVersion);
  w.U64(next_range_);
  w.U32(static_cast<std::uint32_t>(processes_.size()));
  for (const auto& [id, p] : processes_) w.Bytes(EncodeProcess(p));
  const std::vector<RangeDescriptor> all = ranges_.All();
  w.U32(static_cast<std::uint32_t>(all.size()));
  for (const RangeDescriptor& d : all) w.Bytes(EncodeDescriptor(d));
  w.U32(static_cast<std::uint32_t>(orders_.size()));
  for (const auto& [range, o] : orders_) {
    w.U64(o.range);
    w.U64(o.generation);
    w.Bytes(o.key);
    w.U64(o.new_range);
  }
  return out;
}

raft::Result<MetaState> MetaState::DecodeSnapshot(std::string_view in) {
  raft::ByteReader r(in, "meta_snapshot");
  const std::uint8_t version = r.U8("version");
  if (r.ok() && version != kMetaSnapshotVersion && version != 1)
    r.Fail("unknown version " + std::to_string(version));
  MetaState st;
  st.next_range_ = r.U64("next_range");
  const std::uint32_t np = r.U32("processes");
  if (r.ok() && np > kMaxProcesses) r.Fail(std::to_string(np) + " processes");
  for (std::uint32_t i = 0; r.ok() && i < np; ++i) {
    auto p = DecodeProcess(r.Bytes("process", kMaxFieldBytes * 4));
    if (!p.ok()) return p.status();
    st.processes_[p->id] = *p;
  }
  const std::uint32_t nd = r.U32("descriptors");
  if (r.ok() && nd > kMaxDescriptors) r.Fail(std::to_string(nd) + " descriptors");
  std::vector<RangeDescriptor> descriptors;
  for (std::uint32_t i = 0; r.ok() && i < nd; ++i) {
    auto d = DecodeDescriptor(r.Bytes("descriptor", kMaxDescriptorBytes));
    if (!d.ok()) return d.status();
    descriptors.push_back(*d);
  }
  const std::uint32_t no = version >= 2 ? r.U32("orders") : 0;
  if (r.ok() && no > kMaxDescriptors) r.Fail(std::to_string(no) + " split orders");
  for (std::uint32_t i = 0; r.ok() && i < no; ++i) {
    SplitOrder o;
    o.range = r.U64("range");
    o.generation = r.U64("generation");
    o.key = r.Bytes("key", kMaxKeyBytes);
    o.new_range = r.U64("new_range");
    if (r.ok() && (o.new_range < kFirstDataRange || o.new_range >= st.next_range_))
      r.Fail("split order of an id never allocated");
    st.orders_[o.range] = std::move(o);
  }
  if (raft::Status s = r.Finish(); !s.ok()) return s;
  if (!descriptors.empty()) {
    if (!st.ranges_.Update(descriptors))
      return raft::Status(raft::ErrorCode::kCorruption, "meta_snapshot: descriptors refused");
    if (std::string fault = st.ranges_.CheckTiling(); !fault.empty())
      return raft::Status(raft::ErrorCode::kCorruption, "meta_snapshot: " + fault);
  }
  return st;
}

}  // namespace kv
