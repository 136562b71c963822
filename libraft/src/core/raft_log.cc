#include "core/raft_log.h"

#include <algorithm>

#include "base/assert.h"
#include "core/mutation.h"
#include "raft/message.h"

namespace raft {

RaftLog::RaftLog(const Storage* storage, Index applied)
    : storage_(storage), unstable_(storage->LastIndex() + 1) {
  Index snap = storage->FirstIndex() - 1;
  // What was applied was committed, even if the commit index written with it was lost.
  RAFT_ASSERT(applied <= storage->LastIndex());
  committed_ = std::max({storage->InitialHardState().commit, snap, applied});
  RAFT_ASSERT(committed_ <= storage->LastIndex());
  applied_ = std::max(applied, snap);
  applying_ = applied_;
}

Index RaftLog::FirstIndex() const {
  if (auto i = unstable_.MaybeFirstIndex()) return *i;
  return storage_->FirstIndex();
}

Index RaftLog::LastIndex() const {
  if (auto i = unstable_.MaybeLastIndex()) return *i;
  return storage_->LastIndex();
}

Index RaftLog::LastStableIndex() const {
  if (unstable_.snapshot()) return unstable_.snapshot()->index;  // not durable yet either
  if (!unstable_.entries().empty()) return unstable_.offset() - 1;
  return storage_->LastIndex();
}

Term RaftLog::LastTerm() const { return TermOrZero(LastIndex()); }

std::optional<Term> RaftLog::TermAt(Index i) const {
  Index dummy = FirstIndex() - 1;
  if (i < dummy || i > LastIndex()) return std::nullopt;
  if (auto t = unstable_.MaybeTerm(i)) return t;
  auto t = storage_->TermAt(i);
  if (t.ok()) return *t;
  RAFT_ASSERT(t.status().code() == ErrorCode::kCompacted ||
              t.status().code() == ErrorCode::kUnavailable);
  return std::nullopt;
}

Term RaftLog::TermOrZero(Index i) const {
  auto t = TermAt(i);
  return t ? *t : 0;
}

bool RaftLog::MatchTerm(Index i, Term t) const {
  auto term = TermAt(i);
  return term && *term == t;
}

bool RaftLog::IsUpToDate(Index last_index, Term last_term) const {
  Term ours = LastTerm();
  return last_term > ours || (last_term == ours && last_index >= LastIndex());
}

std::optional<Index> RaftLog::MaybeAppend(Index prev_index, Term prev_term, Index leader_commit,
                                          std::vector<Entry> ents,
                                          std::optional<Index>* truncated_from) {
  // The preconditions (raft_log.h) make every index below in range: the conflict lies in
  // [prev_index + 1, last_new], above committed_.
  RAFT_ASSERT_GE(prev_index, committed_);
  RAFT_ASSERT(ents.size() <= kIndexMax - prev_index);
  RAFT_ASSERT(ents.empty() || (ents.front().index == prev_index + 1 &&
                               ents.back().index == prev_index + ents.size()),
              "entries not contiguous from prev_index + 1");
  if (!MatchTerm(prev_index, prev_term)) return std::nullopt;
  Index last_new = prev_index + ents.size();
  Index conflict = FindConflict(ents);
  if (mutation::Active(mutation::Kind::kTruncateOnStaleAppend) && !ents.empty() &&
      ents.front().index > committed_) {
    conflict = ents.front().index;
  }
  if (conflict != 0) {
    RAFT_ASSERT(conflict > committed_);  // never overwrite a committed entry
    if (conflict <= LastIndex()) *truncated_from = conflict;
    std::vector<Entry> tail(
        std::make_move_iterator(ents.begin() +
                                static_cast<std::ptrdiff_t>(conflict - (prev_index + 1))),
        std::make_move_iterator(ents.end()));
    Append(std::move(tail));
  }
  CommitTo(std::min(leader_commit, last_new));
  return last_new;
}

Index RaftLog::Append(std::vector<Entry> ents) {
  if (ents.empty()) return LastIndex();
  RAFT_ASSERT(ents.front().index - 1 >= committed_);
  unstable_.TruncateAndAppend(std::move(ents));
  return LastIndex();
}

Index RaftLog::FindConflict(const std::vector<Entry>& ents) const {
  for (const Entry& e : ents) {
    if (!MatchTerm(e.index, e.term)) return e.index;
  }
  return 0;
}

Index RaftLog::FindConflictByTerm(Index index, Term term) const {
  index = std::min(index, LastIndex());
  for (;;) {
    auto t = TermAt(index);
    if (!t || *t <= term) return index;  // unknown (compacted) terms end the search
    if (index == 0) return 0;
    --index;
  }
}

std::optional<std::vector<Entry>> RaftLog::Slice(Index lo, Index hi,
                                                 std::uint64_t max_bytes) const {
  RAFT_ASSERT(lo <= hi && hi <= LastIndex() + 1);
  if (lo < FirstIndex()) return std::nullopt;
  std::vector<Entry> out;
  if (lo == hi) return out;
  Index uoff = unstable_.offset();
  std::uint64_t bytes = 0;
  if (lo < uoff) {
    auto stored = storage_->Entries(lo, std::min(hi, uoff), max_bytes);
    if (!stored.ok()) {
      if (stored.status().code() == ErrorCode::kCompacted) return std::nullopt;
      RAFT_ASSERT(false && "storage failed to read entries it reported present");
    }
    out = std::move(stored).value();
    for (const auto& e : out) bytes += EntrySizeBytes(e);
    if (out.size() < std::min(hi, uoff) - lo) return out;  // byte limit reached
  }
  if (hi > uoff) {
    for (Index i = std::max(lo, uoff); i < hi; ++i) {
      const Entry& e = unstable_.entries()[i - uoff];
      bytes += EntrySizeBytes(e);
      if (!out.empty() && bytes > max_bytes) break;
      out.push_back(e);
    }
  }
  return out;
}

void RaftLog::CommitTo(Index to) {
  if (to <= committed_) return;
  RAFT_ASSERT(to <= LastIndex());
  committed_ = to;
}

bool RaftLog::MaybeCommit(Index index, Term term) {
  if (index <= committed_) return false;
  if (!mutation::Active(mutation::Kind::kCommitOldTerm) && TermOrZero(index) != term) {
    return false;
  }
  CommitTo(index);
  return true;
}

std::pair<Index, Index> RaftLog::NextCommittedRange() const {
  Index lo = std::max(applying_ + 1, FirstIndex());
  Index hi = committed_;
  if (mutation::Active(mutation::Kind::kApplyBeforeCommit)) hi = std::min(LastIndex(), hi + 1);
  return {lo, hi};
}

bool RaftLog::HasNextCommittedEntries() const {
  auto [lo, hi] = NextCommittedRange();
  return lo <= hi && !unstable_.snapshot();
}

std::vector<Entry> RaftLog::NextCommittedEntries(std::uint64_t max_bytes) const {
  if (!HasNextCommittedEntries()) return {};
  auto [lo, hi] = NextCommittedRange();
  auto ents = Slice(lo, hi + 1, max_bytes == 0 ? UINT64_MAX : max_bytes);
  RAFT_ASSERT(ents.has_value());
  return std::move(*ents);
}

void RaftLog::AppliedTo(Index index) {
  if (index == 0) return;
  RAFT_ASSERT(index >= applied_);
  if (!mutation::Active(mutation::Kind::kApplyBeforeCommit)) {
    RAFT_ASSERT(index <= committed_);
  }
  applied_ = index;
  applying_ = std::max(applying_, index);
}

void RaftLog::Restore(const SnapshotMeta& meta) {
  committed_ = meta.index;
  unstable_.Restore(meta);
}

}  // namespace raft
