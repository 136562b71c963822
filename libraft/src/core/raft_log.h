// RaftLog: the log as the core sees it: durable entries (read through Storage) followed
// by the unstable tail, plus the commit and apply cursors.
//
// Invariants: applied_ <= applying_ <= committed_ <= LastIndex();
//             FirstIndex() - 1 <= committed_ (a snapshot is always committed).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "core/unstable.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace raft {

class RaftLog {
 public:
  // Starts from what `storage` holds; `applied` is the application's applied index.
  RaftLog(const Storage* storage, Index applied);

  Index FirstIndex() const;
  Index LastIndex() const;
  LogPosition LastPosition() const { return {LastTerm(), LastIndex()}; }
  Term LastTerm() const;
  // Term of entry i, or nullopt when i is compacted or beyond the last index.
  std::optional<Term> TermAt(Index i) const;
  // Like TermAt, but 0 when unknown (for messages and hints).
  Term TermOrZero(Index i) const;
  bool MatchTerm(Index i, Term t) const;
  // Raft 5.4.1: is (last_index, last_term) at least as up-to-date as our log?
  bool IsUpToDate(Index last_index, Term last_term) const;

  // Follower side of AppendEntries. If (prev_index, prev_term) matches, appends what is
  // new in `ents` (truncating a conflicting suffix, never a matching one), moves commit
  // to min(leader_commit, last new index) and returns the last new index.
  // Requires (RaftCore::Validate and HandleAppend ensure it for any message):
  // prev_index >= committed(), ents contiguous from prev_index + 1, and
  // prev_index + ents.size() <= kIndexMax; so a conflict is never a committed entry.
  std::optional<Index> MaybeAppend(Index prev_index, Term prev_term, Index leader_commit,
                                   std::vector<Entry> ents, std::optional<Index>* truncated_from);
  // Appends at LastIndex()+1 onwards (leader); returns the new last index.
  Index Append(std::vector<Entry> ents);

  // First index in `ents` whose term conflicts with ours (or is new), 0 if none.
  Index FindConflict(const std::vector<Entry>& ents) const;
  // Largest index <= index whose term is <= term (fast backtracking hint, 0 if none).
  Index FindConflictByTerm(Index index, Term term) const;

  // Entries [lo, hi) bounded by max_bytes (at least one). nullopt if lo is compacted.
  std::optional<std::vector<Entry>> Slice(Index lo, Index hi, std::uint64_t max_bytes) const;

  void CommitTo(Index to);
  // Leader: commit up to `index` if it is of `term` (the Figure 8 rule).
  bool MaybeCommit(Index index, Term term);

  bool HasNextCommittedEntries() const;
  // [lo, hi] of committed entries not yet handed out (empty when lo > hi).
  std::pair<Index, Index> NextCommittedRange() const;
  std::vector<Entry> NextCommittedEntries(std::uint64_t max_bytes) const;
  void AcceptApplying(Index index) { applying_ = index; }
  void AppliedTo(Index index);

  void StableTo(Index index, Term term) { unstable_.StableTo(index, term); }
  void StableSnapTo(Index index) { unstable_.StableSnapTo(index); }
  void Restore(const SnapshotMeta& meta);
  // Index of the last entry already durable (not part of the unstable tail).
  Index LastStableIndex() const;

  const Unstable& unstable() const { return unstable_; }
  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  Index applying() const { return applying_; }
  const Storage* storage() const { return storage_; }

 private:
  const Storage* storage_;
  Unstable unstable_;
  Index committed_;
  Index applying_;
  Index applied_;
};

}  // namespace raft
