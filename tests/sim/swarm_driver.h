// SwarmDriver: injects the faults of a FaultMix into a Cluster, one tick at a time, with
// every choice drawn from the cluster's Rng (so the seed decides the schedule).
#pragma once

#include <vector>

#include "cluster.h"
#include "swarm.h"

namespace raft::sim {

class SwarmDriver {
 public:
  SwarmDriver(Cluster& c, const FaultMix& mix) : c_(c), mix_(mix) {}
  // Called before each Cluster::Tick() of the safety phase.
  void Inject();

 private:
  std::vector<NodeId> Live() const;
  NodeId RandomRunning();
  void NewPartition();
  void Flap();
  void CrashOne();
  void RestartOne();
  void ConfChangeOne();
  void TransferOne();
  void ResetLeaderConnection();
  void Bounce();

  Cluster& c_;
  FaultMix mix_;
  Term last_leader_term_ = 0;
};

}  // namespace raft::sim
