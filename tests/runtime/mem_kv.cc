#include "mem_kv.h"

namespace raft::test {
namespace {
class MapSource final : public SnapshotSource {
 public:
  explicit MapSource(std::map<std::string, std::string> m) : m_(std::move(m)) {}
  Status WriteTo(SnapshotWriter* out) override {
    for (const auto& [k, v] : m_) {
      std::string rec = std::to_string(k.size()) + ":" + k + std::to_string(v.size()) + ":" + v;
      if (Status s = out->Write(rec); !s.ok()) return s;
    }
    return Status::Ok();
  }

 private:
  std::map<std::string, std::string> m_;
};
}  // namespace

void MemKv::Apply(const std::vector<Entry>& entries, std::vector<std::string>* results) {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& e : entries) {
    std::string prev;
    if (e.type == EntryType::kNormal && !e.data.empty()) {
      auto eq = e.data.find('=');
      std::string k = e.data.substr(0, eq);
      std::string v = eq == std::string::npos ? "" : e.data.substr(eq + 1);
      prev = data_[k];
      data_[k] = v;
    }
    results->push_back(prev);
    applied_ = e.index;
  }
}

Result<std::unique_ptr<SnapshotSource>> MemKv::PrepareSnapshot() {
  std::lock_guard<std::mutex> l(mu_);
  return std::unique_ptr<SnapshotSource>(new MapSource(data_));
}

Status MemKv::Restore(SnapshotReader* in, const SnapshotMeta& meta) {
  std::string all;
  char buf[4096];
  for (;;) {
    auto n = in->Read(buf, sizeof(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    all.append(buf, *n);
  }
  std::map<std::string, std::string> m;
  std::size_t pos = 0;
  auto field = [&](std::string* out) {
    auto colon = all.find(':', pos);
    if (colon == std::string::npos) return false;
    std::size_t len = std::stoul(all.substr(pos, colon - pos));
    *out = all.substr(colon + 1, len);
    pos = colon + 1 + len;
    return true;
  };
  while (pos < all.size()) {
    std::string k, v;
    if (!field(&k) || !field(&v)) return Status(ErrorCode::kCorruption, "bad snapshot");
    m[k] = v;
  }
  std::lock_guard<std::mutex> l(mu_);
  data_ = std::move(m);
  applied_ = meta.index;
  ++restores_;
  return Status::Ok();
}

void MemKv::Load(std::map<std::string, std::string> data, Index applied) {
  std::lock_guard<std::mutex> l(mu_);
  data_ = std::move(data);
  applied_ = applied;
}

std::string MemKv::Get(const std::string& k) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = data_.find(k);
  return it == data_.end() ? "" : it->second;
}
std::size_t MemKv::Size() const {
  std::lock_guard<std::mutex> l(mu_);
  return data_.size();
}
Index MemKv::applied() const {
  std::lock_guard<std::mutex> l(mu_);
  return applied_;
}
std::size_t MemKv::restores() const {
  std::lock_guard<std::mutex> l(mu_);
  return restores_;
}

}  // namespace raft::test
