// ProcessLiveness: the failure detector of a host of many groups (docs/multi-raft.md,
// "The host"), apart from how it hears. Sleeping groups (Config::quiesce) send nothing,
// so nothing in them notices a dead leader; the host watches the peer *processes*
// instead, one liveness frame per pair every few ticks, and wakes the sleeping groups that
// depend on a process it lost (docs/core.md, "Quiescence").
//
// Pure: the caller reports what it heard and gives the time (ticks in the simulator,
// milliseconds of a monotonic clock in a runtime); no I/O, no clock. Not thread-safe:
// one owner (the host's io thread). The simulator's model of the detector runs on it
// (tests/sim, Cluster::WatchProcesses), so every quiescence sweep exercises it.
#pragma once

#include <cstdint>
#include <map>
#include <set>

#include "raft/raw_node.h"
#include "raft/types.h"

namespace raft::runtime {

class ProcessLiveness {
 public:
  // A process not heard from for more than `timeout` is lost (an election timeout).
  explicit ProcessLiveness(std::int64_t timeout) : timeout_(timeout) {}

  // Something arrived from `peer`'s process at `now` (a liveness frame or any message).
  void Heard(NodeId peer, std::int64_t now) { heard_at_[peer] = now; }

  // Not heard from for more than the timeout. A peer never heard of is watched from the
  // first question about it, so a host that just started gives every peer a full timeout
  // rather than waking everything at once.
  bool Lost(NodeId peer, std::int64_t now) {
    auto it = heard_at_.try_emplace(peer, now).first;
    return now - it->second > timeout_;
  }

  // Stops watching `peer` (it left every group this host shares with it).
  void Forget(NodeId peer) { heard_at_.erase(peer); }

 private:
  const std::int64_t timeout_;
  std::map<NodeId, std::int64_t> heard_at_;  // peer -> when last heard
};

// Whether a host wakes `core` (RawNode::Unquiesce) given the peer processes it lost: a
// sleeping follower whose leader's process is lost (it then campaigns after an election
// timeout unless the leader speaks), or a sleeping leader with a voter whose process is
// lost (check-quorum runs again and steps it down if a quorum is gone). Never an awake
// core, and not for a lost learner: the group's leadership does not depend on it.
inline bool ShouldWake(const RawNode& core, const std::set<NodeId>& lost) {
  if (lost.empty() || !core.Quiesced()) return false;
  if (core.role() != Role::kLeader) return lost.count(core.leader()) > 0;
  for (NodeId voter : core.GetStatus().conf.voters) {
    if (voter != core.id() && lost.count(voter)) return true;
  }
  return false;
}

}  // namespace raft::runtime
