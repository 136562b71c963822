// Swarm runs: one seed picks the cluster size, the fault mix (which faults are on and how
// hard) and the whole schedule, as in TigerBeetle's VOPR "swarm testing". A run has
//   1. a safety phase of `fault_ticks` under the mix, with clients running, checks on every
//      event (checker.h);
//   2. a liveness phase: every link healed, network faults off, every node restarted and
//      unpaused, disks fast; within `liveness_ticks` a leader must commit a fresh proposal
//      and every running member of the committed configuration must apply it;
//   3. the clients' history must be linearizable (tests/lin).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "network.h"
#include "sim_rng.h"

namespace raft::sim {

struct FaultMix {
  NetFaults net;
  double partition = 0;           // per tick: a new partition pattern replaces the old one
  double heal = 0;                // per tick: all links heal
  double flap = 0;                // per tick: one link toggles
  double crash = 0;               // per tick: a running node crashes
  double restart = 0;             // per tick: a crashed node restarts
  double crash_leader = 0;        // per tick: the current leader crashes (Figure 8 style)
  double crash_new_leader = 0;    // per election: the new leader crashes at once (Figure 8 (b))
  bool keep_majority_up = false;  // restart a node at once when fewer than a majority run
  bool torn = false;              // crashes may tear the write in flight
  bool majority_crash = false;    // crashes may take down a majority
  double pause = 0;
  int pause_max_ticks = 0;
  double slow_disk = 0;  // share of nodes whose fsync takes up to disk_max_ticks
  int disk_max_ticks = 0;
  double conf_change = 0;
  double transfer = 0;
  double snapshot = 0;
  int snapshot_keep_max = 0;
  double client_issue = 0.3;
  // Lease reads (ReadOnlyOption::kLeaseBased) on every node. Pauses then spare the leader:
  // a paused process's clock stops, and a leader whose ticks fall behind its followers'
  // is outside the lease's clock assumption (docs/core.md, "Lease reads", condition 7).
  bool lease_reads = false;
  // Only in lease runs (so that the other sweeps keep their schedules): per tick, a
  // follower's connection from its live leader is reset (ReportLeaderLost), and a node
  // crashes and restarts at once.
  double conn_reset = 0;
  double bounce = 0;
  std::uint64_t max_msg_bytes = 1 << 20;
  std::uint32_t max_inflight_msgs = 256;

  std::string Describe() const;
};

// Profiles: "swarm" (default: each fault group on with probability 1/2), "all" (every
// group on), "reliable" (no faults), "network", "crash", "membership", "snapshot", and
// "figure8" (5 nodes, one entry per append, the leader crashes often, a majority is
// restarted at once: the Figure 8 lab test, which is where old-term commits show).
const std::vector<std::string>& ProfileNames();
bool IsProfile(const std::string& name);
FaultMix PickMix(Rng& rng, const std::string& profile);

struct RunOptions {
  std::uint64_t seed = 1;
  int nodes = 0;  // 0: the seed picks 3, 5 or 7
  std::string profile = "swarm";
  bool lease_reads = false;  // every node uses ReadOnlyOption::kLeaseBased (see FaultMix)
  bool quiesce = false;      // Config::quiesce, with the hosts' failure detector (cluster.h)
  bool trace = false;
  int fault_ticks = 600;
  int liveness_ticks = 400;
  bool check_linearizability = true;
};

struct RunResult {
  bool ok = true;
  std::string failure;
  std::string mix;
  int nodes = 0;
  std::int64_t ticks = 0;
  std::size_t committed = 0;  // entries applied anywhere
  std::size_t ops_completed = 0;
  std::size_t terms_with_leader = 0;
  double asleep = 0;     // share of node-ticks spent quiesced (quiescence runs)
  std::string lin_note;  // a non-fatal note (e.g. checker budget ran out)
};

RunResult RunSeed(const RunOptions& options);
// "raft_sim --seed N --nodes X --profile P --lease --trace"
std::string ReplayCommand(const RunOptions& options);

}  // namespace raft::sim
