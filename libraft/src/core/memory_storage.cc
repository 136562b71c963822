#include <algorithm>

#include "base/assert.h"
#include "raft/storage.h"

namespace raft {

MemoryStorage::MemoryStorage() { ents_.push_back(Entry{}); }

Index MemoryStorage::FirstIndex() const { return ents_.front().index + 1; }
Index MemoryStorage::LastIndex() const { return ents_.front().index + ents_.size() - 1; }

Result<Term> MemoryStorage::TermAt(Index i) const {
  Index offset = ents_.front().index;
  if (i < offset) return Status(ErrorCode::kCompacted, "index compacted");
  if (i - offset >= ents_.size()) return Status(ErrorCode::kUnavailable, "index beyond last");
  return ents_[i - offset].term;
}

Result<std::vector<Entry>> MemoryStorage::Entries(Index lo, Index hi,
                                                  std::uint64_t max_bytes) const {
  Index offset = ents_.front().index;
  if (lo <= offset) return Status(ErrorCode::kCompacted, "entries compacted");
  if (hi > LastIndex() + 1) return Status(ErrorCode::kUnavailable, "entries beyond last");
  std::vector<Entry> out;
  std::uint64_t bytes = 0;
  for (Index i = lo; i < hi; ++i) {
    const Entry& e = ents_[i - offset];
    bytes += EntrySizeBytes(e);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

Status MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return Status::Ok();
  Index first = FirstIndex();
  Index last_new = entries.back().index;
  if (last_new < first) return Status::Ok();  // all compacted
  std::size_t skip = entries.front().index < first ? first - entries.front().index : 0;
  Index start = entries[skip].index;
  if (start > LastIndex() + 1)
    return Status(ErrorCode::kInvalidArgument, "append leaves a gap in the log");
  Index offset = ents_.front().index;
  ents_.resize(start - offset);
  ents_.insert(ents_.end(), entries.begin() + static_cast<std::ptrdiff_t>(skip), entries.end());
  return Status::Ok();
}

Status MemoryStorage::ApplySnapshot(const SnapshotMeta& meta) {
  if (meta.index < snapshot_.index)
    return Status(ErrorCode::kInvalidArgument, "snapshot older than the current one");
  snapshot_ = meta;
  ents_.clear();
  ents_.push_back(Entry{meta.term, meta.index, EntryType::kNormal, {}});
  return Status::Ok();
}

Result<SnapshotMeta> MemoryStorage::CreateSnapshot(Index index, const ConfState& conf) {
  if (index <= snapshot_.index)
    return Status(ErrorCode::kInvalidArgument, "snapshot index not beyond the current one");
  if (index > LastIndex()) return Status(ErrorCode::kInvalidArgument, "snapshot beyond last");
  auto term = TermAt(index);
  if (!term.ok()) return term.status();
  snapshot_ = SnapshotMeta{index, *term, conf};
  return snapshot_;
}

Status MemoryStorage::Compact(Index index) {
  Index offset = ents_.front().index;
  if (index <= offset) return Status::Ok();
  if (index > LastIndex()) return Status(ErrorCode::kInvalidArgument, "compact beyond last");
  if (index > snapshot_.index)
    return Status(ErrorCode::kInvalidArgument, "compact beyond the latest snapshot");
  ents_.erase(ents_.begin(), ents_.begin() + static_cast<std::ptrdiff_t>(index - offset));
  ents_.front().data.clear();
  ents_.front().type = EntryType::kNormal;
  return Status::Ok();
}

Status MemoryStorage::Bootstrap(const std::vector<NodeId>& voters) {
  if (LastIndex() != 0 || hard_state_.term != 0)
    return Status(ErrorCode::kInvalidArgument, "bootstrap needs empty storage");
  if (voters.empty()) return Status(ErrorCode::kInvalidArgument, "bootstrap needs a voter");
  auto ents = BootstrapEntries(voters);
  Status s = Append(ents);
  if (!s.ok()) return s;
  hard_state_ = HardState{1, kNoNode, ents.back().index};
  return Status::Ok();
}

}  // namespace raft
