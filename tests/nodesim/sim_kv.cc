#include "sim_kv.h"

#include "raft/coding.h"

namespace raft::nodesim {
namespace {

// Splits "a\nb\nc" into at most `n` fields (the last one keeps any '\n').
std::vector<std::string> Fields(const std::string& s, std::size_t n) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (out.size() + 1 < n) {
    auto nl = s.find('\n', pos);
    if (nl == std::string::npos) break;
    out.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  out.push_back(s.substr(pos));
  return out;
}

// Snapshot body: for each pair, u32 key length, key, u32 value length, value.
class MapSource final : public SnapshotSource {
 public:
  explicit MapSource(std::map<std::string, std::string> m) : m_(std::move(m)) {}
  Status WriteTo(SnapshotWriter* out) override {
    for (const auto& [k, v] : m_) {
      std::string rec;
      char len[4];
      EncodeFixed32(len, static_cast<std::uint32_t>(k.size()));
      rec.append(len, 4).append(k);
      EncodeFixed32(len, static_cast<std::uint32_t>(v.size()));
      rec.append(len, 4).append(v);
      if (Status s = out->Write(rec); !s.ok()) return s;
    }
    return Status::Ok();
  }

 private:
  std::map<std::string, std::string> m_;
};

}  // namespace

// Appended piece by piece (GCC 12 at -O3 warns, wrongly, about `"x" + std::string`).
std::string EncodePut(const std::string& key, const std::string& value) {
  std::string s = "P\n";
  s.append(key).append("\n").append(value);
  return s;
}
std::string EncodeCas(const std::string& key, const std::optional<std::string>& expected,
                      const std::string& value) {
  std::string s = "C\n";
  s.append(key).append("\n");
  if (expected) {
    s.append("=").append(*expected);
  } else {
    s.append("-");
  }
  s.append("\n").append(value);
  return s;
}
std::string EncodeDelete(const std::string& key, std::uint64_t op_id) {
  std::string s = "D\n";
  s.append(key).append("\n").append(std::to_string(op_id));
  return s;
}

void SimKv::Apply(const std::vector<Entry>& entries, std::vector<std::string>* results) {
  for (const auto& e : entries) {
    if (e.index != applied_ + 1 && error_.empty())
      error_ = "entry " + std::to_string(e.index) + " applied after " + std::to_string(applied_);
    applied_ = e.index;
    if (observer_) observer_(e);
    std::string result;
    if (e.type == EntryType::kNormal && !e.data.empty()) {
      if (e.data[0] == 'P') {
        auto f = Fields(e.data, 3);
        data_[f[1]] = f[2];
      } else if (e.data[0] == 'C') {
        auto f = Fields(e.data, 4);
        auto it = data_.find(f[1]);
        // f[2] is "-" (expect absent) or "=" followed by the expected value.
        const bool match = f[2] == "-"
                               ? it == data_.end()
                               : it != data_.end() && f[2].size() == it->second.size() + 1 &&
                                     f[2].compare(1, std::string::npos, it->second) == 0;
        if (match) data_[f[1]] = f[3];
        result.assign(1, match ? '1' : '0');  // not `= "1"`: GCC 12 -O3 warns (-Wrestrict)
      } else if (e.data[0] == 'D') {
        data_.erase(Fields(e.data, 3)[1]);
      }
    }
    results->push_back(std::move(result));
  }
}

Result<std::unique_ptr<SnapshotSource>> SimKv::PrepareSnapshot() {
  return std::unique_ptr<SnapshotSource>(new MapSource(data_));
}

Status SimKv::Restore(SnapshotReader* in, const SnapshotMeta& meta) {
  std::string all;
  char buf[97];  // odd and small: many reads, across record boundaries
  for (;;) {
    auto n = in->Read(buf, sizeof(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    all.append(buf, *n);
  }
  std::map<std::string, std::string> m;
  std::size_t pos = 0;
  auto field = [&](std::string* out) {
    if (all.size() - pos < 4) return false;
    const std::uint32_t len = DecodeFixed32(all.data() + pos);
    pos += 4;
    if (all.size() - pos < len) return false;
    *out = all.substr(pos, len);
    pos += len;
    return true;
  };
  while (pos < all.size()) {
    std::string k, v;
    if (!field(&k) || !field(&v)) return Status(ErrorCode::kCorruption, "SimKv: bad snapshot");
    m[k] = v;
  }
  data_ = std::move(m);
  applied_ = meta.index;
  ++restores_;
  return Status::Ok();
}

std::optional<std::string> SimKv::Get(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

}  // namespace raft::nodesim
