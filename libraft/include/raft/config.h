// Configuration of one consensus core instance. Time is counted in ticks; the
// embedding runtime decides how long a tick is.
#pragma once

#include <cstdint>

#include "raft/export.h"
#include "raft/status.h"
#include "raft/types.h"

namespace raft {

enum class ReadOnlyOption : std::uint8_t {
  // ReadIndex confirms leadership with a heartbeat round per batch of reads. Safe.
  kSafe = 0,
  // The leader answers at once while it holds a lease: a quorum of voters acknowledged
  // a heartbeat it sent less than election_ticks - 1 ticks ago, so none of them will
  // vote for another candidate or campaign yet: each keeps that promise for
  // election_ticks of its own ticks after hearing from a leader, and for election_ticks
  // after it starts (it may have promised before a restart); ReportLeaderLost and
  // Campaign() do not break it. A leader that has sent TimeoutNow (a transfer, whose
  // campaign the voters do obey) has no lease for the rest of its term. Outside the lease
  // it falls back to kSafe. Requires check_quorum, and every voter must use it (the
  // promise is kept by the voters' configuration). Assumes every node's ticks advance at
  // the same rate to within one tick per election timeout: a paused or slowed leader
  // process (GC, VM stall, a timer that re-arms after the tick's work) can serve a stale
  // read. See docs/core.md, "Lease reads".
  kLeaseBased = 1,
};

struct RAFT_EXPORT Config {
  NodeId id = kNoNode;

  // A follower that hears nothing from a leader for a randomized timeout in
  // [election_ticks, 2 * election_ticks) starts an election.
  int election_ticks = 10;
  int heartbeat_ticks = 1;

  // Seed of the core's own PRNG for election jitter. Same seed, same inputs -> same run.
  std::uint64_t seed = 1;

  // Index of the last entry the state machine has applied (on restart). Committed entries
  // at or below it are not handed out again. Only committed entries are applied, so the
  // core also takes it as a lower bound of the commit index: the durable commit index may
  // lag (Ready::must_sync). Must not exceed the storage's LastIndex().
  Index applied = 0;

  // Upper bound of entries' bytes per Append message (at least one entry is sent).
  std::uint64_t max_msg_bytes = 1 << 20;
  // Per-follower in-flight Append messages while replicating (pipelining window).
  std::uint32_t max_inflight_msgs = 256;
  // Per-follower bytes of entries in flight; 0 = no limit.
  std::uint64_t max_inflight_bytes = 0;
  // Leader refuses proposals once this many bytes of entries are uncommitted; 0 = no limit.
  std::uint64_t max_uncommitted_bytes = 64ull << 20;
  // Max bytes of committed entries handed out per Ready; 0 = no limit.
  std::uint64_t max_committed_bytes_per_ready = 16ull << 20;

  bool pre_vote = true;
  bool check_quorum = true;
  // Quiescence, for hosts of many groups (docs/core.md, "Quiescence"). A leader whose
  // log is fully replicated, committed and idle sends one last heartbeat round flagged
  // `quiesce` and stops ticking; each follower whose log ends at that commit stops too.
  // A quiesced core sends nothing and Tick() is a no-op, so a host need not tick it.
  // Any message (but the quiesce round itself), proposal, read, transfer, Campaign,
  // ReportLeaderLost for its leader, or Unquiesce() wakes it. While quiesced nobody
  // watches the leader: the host must run a failure detector of its own (one heartbeat
  // per pair of processes) and call Unquiesce() (or ReportLeaderLost) on the groups of
  // a process it lost, or a dead leader is never replaced. Every member must agree.
  bool quiesce = false;
  ReadOnlyOption read_only = ReadOnlyOption::kSafe;

  // Returns kInvalidArgument with a message naming the bad field.
  Status Validate() const;
};

}  // namespace raft
