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
  kTimeoutNowAnySender,    // a TimeoutNow is obeyed from anyone, late or duplicated (defect 7)
  kLeaseAfterTransfer,     // a leader keeps its read lease after sending TimeoutNow (defect 1a)

  // The runtime's rules (src/runtime, src/storage): the full-node simulator
  // (tests/nodesim) must catch each one.
  kSendBeforePersist,    // messages_after_persist leave before the Ready is durable
  kSkipHardState,        // a new term or vote is never written to disk
  kSkipLogSync,          // the Ready's fdatasync is skipped (entries published as stable)
  kReadContextReuse,     // every incarnation uses the same ReadIndex contexts (defect 1)
  kServeReadEarly,       // a read barrier completes before its read index is applied
  kProposalByIndexOnly,  // a proposal completes on any entry at its index (defect 4)
  kCleanupTooEager,      // snapshot cleanup also deletes the log's own snapshot (defect 3)
  kSkipSnapshotDirSync,  // a new snapshot's rename (or a host's new group snapshot
                         // directory) is not made durable
  kSkipRestore,          // an installed snapshot is not restored into the state machine
  kRestoreByName,        // the restore opens the installed snapshot by name, late (a newer
                         // snapshot's cleanup may have removed it: found by nodesim)
  kViewByName,           // a snapshot stream reads its file by name, not through the
                         // descriptor it opened (defect 2: cleanup ends the stream)
  kSkipInitialSnapshot,  // a host's group from state is logged without its initial
                         // snapshot file (a replica added later cannot get the state)
};

#ifdef RAFT_MUTATIONS
extern Kind g_active;
inline bool Active(Kind k) { return g_active == k; }
#else
constexpr bool Active(Kind) { return false; }
#endif

}  // namespace raft::mutation
