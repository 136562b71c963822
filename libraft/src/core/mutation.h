// Deliberate rule-breaking switches, compiled in only when RAFT_MUTATIONS is defined
// (the raft_core_mutant target used by the simulator's mutation tests). In every other
// build Active() is a constant false and the branches it guards vanish.
//
// Each mutation breaks exactly one Raft rule; the simulator must catch every one.
#pragma once

namespace raft::mutation {

enum class Kind {
  kNone = 0,
  kCommitOldTerm,          // count an entry of an earlier term toward commit (Figure 8)
  kVoteWithoutPersist,     // release a vote grant before the vote is durable
  kSkipUpToDateCheck,      // grant votes without the candidate-log-up-to-date check (5.4.1)
  kApplyBeforeCommit,      // hand out entries for apply one past the commit index
  kTruncateOnStaleAppend,  // truncate the log on an append even if entries match
  kTakeUndurable,          // TakeCommitted hands out committed entries not yet durable here
};

#ifdef RAFT_MUTATIONS
extern Kind g_active;
inline bool Active(Kind k) { return g_active == k; }
#else
constexpr bool Active(Kind) { return false; }
#endif

}  // namespace raft::mutation
