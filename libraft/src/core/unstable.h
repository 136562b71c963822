// The not-yet-durable tail of the log, as in etcd-io/raft's log_unstable.go.
//
// Invariants:
//   - if snapshot_ is set, offset_ == snapshot_->index + 1
//   - entries_[i].index == offset_ + i
//   - everything here has been or will be handed out in a Ready; it becomes stable
//     (and leaves this structure) only in Advance().
#pragma once

#include <optional>
#include <vector>

#include "raft/types.h"

namespace raft {

class Unstable {
 public:
  explicit Unstable(Index offset) : offset_(offset) {}

  std::optional<Index> MaybeFirstIndex() const;
  std::optional<Index> MaybeLastIndex() const;
  std::optional<Term> MaybeTerm(Index i) const;

  // Entries up to and including `index` are durable: drops them, unless the entry at
  // `index` no longer has `term` (replaced meanwhile) or lies in the snapshot.
  void StableTo(Index index, Term term);
  void StableSnapTo(Index index);
  void Restore(const SnapshotMeta& meta);
  // Appends `ents`, replacing any suffix at or after ents.front().index.
  void TruncateAndAppend(std::vector<Entry> ents);
  // Entries [lo, hi); requires offset_ <= lo <= hi <= offset_ + size.
  std::vector<Entry> Slice(Index lo, Index hi) const;

  Index offset() const { return offset_; }
  const std::vector<Entry>& entries() const { return entries_; }
  const std::optional<SnapshotMeta>& snapshot() const { return snapshot_; }

 private:
  std::optional<SnapshotMeta> snapshot_;
  std::vector<Entry> entries_;
  Index offset_;
};

}  // namespace raft
