// The full-node simulator: N complete raft::Node::Impl processes (io, disk, apply and
// snapshot lanes; DiskStorage and the snapshot files on a simulated disk; the transport
// on a simulated network; a SimKv state machine that snapshots through the real
// streaming path) on one thread, under a seeded scheduler (sim_world.h), with clients
// whose history goes to the linearizability checker, and faults. docs/testing.md
// ("Full-node simulation") describes the model, the checks and how to replay a seed.
//
// One run = one seed:
//   setup    node 0 bootstraps; the other initial voters join as learners through the
//            real API (AddLearner, then PromoteLearner once they are caught up).
//   faults   `fault_time` of virtual time with clients running and the faults of the
//            seed's mix (swarm testing: each seed enables a random subset).
//   heal     faults and clients stop, the network heals, crashed members restart; within
//   `heal_time`
//            every member must be up, one leader elected, a final write committed and
//            applied on every member, and every member's state machine equal.
// Checks: after every step, at most one leader per term; on every apply, the entry at
// that index equals what any other node ever applied there (state machine safety); a
// restarted node opens its data again (unless a disk fault is active at that moment);
// at the end, every acknowledged write is in the committed log, the clients' history is
// linearizable, and the heal-phase liveness bound holds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace raft::nodesim {

// The faults a run may use. Swarm testing draws a random subset per seed, so that rare
// combinations get runs where they are not drowned out by the others.
struct FaultMix {
  bool crash = true;        // kill -9 (unsynced data lost or torn) and restart later
  bool disk_errors = true;  // EIO from fsync or write for a while; the node fails, an
                            // operator restarts it
  bool disk_full = true;    // ENOSPC for a while
  bool slow_disk = true;    // the disk lane (and the apply and snapshot lanes) stall
  bool drop = true;         // frames lost
  bool duplicate = true;    // frames delivered twice
  bool reorder = true;      // frames delivered out of order
  bool delay = true;        // extra per-frame delay
  bool cut = true;          // connections reset (mid-snapshot too)
  bool partition = true;    // isolate a node or split the cluster
  bool membership = true;   // add a learner, promote it, remove a member (leader too)
  bool transfer = true;     // leadership transfer
  bool lease = false;       // ReadOnlyOption::kLeaseBased for the whole run

  std::string ToString() const;
};

struct NodeSimOptions {
  std::uint64_t seed = 1;
  int voters = 3;  // initial voters
  int spares = 2;  // extra processes that may join (and be removed) during the run
  int clients = 3;
  int keys = 8;
  std::chrono::milliseconds fault_time{3000};  // virtual time
  std::chrono::milliseconds heal_time{20000};  // liveness bound after healing
  bool swarm = true;                           // draw the mix from the seed; else `mix`
  FaultMix mix;
  bool trace = false;  // print the run's events to stderr
  std::uint64_t max_steps = 20'000'000;
};

struct NodeSimResult {
  bool ok = true;
  std::string failure;  // the first violated check, with its context
  FaultMix mix;
  std::uint64_t steps = 0;
  std::uint64_t ops_ok = 0, ops_unknown = 0, ops_discarded = 0, reads_ok = 0;
  std::uint64_t crashes = 0, failed_nodes = 0, members_added = 0, members_removed = 0;
  std::uint64_t transfers = 0, snapshots_taken = 0, snapshots_installed = 0;
  std::uint64_t last_index = 0;
  double virtual_seconds = 0;

  std::string Summary() const;
};

NodeSimResult RunNodeSim(const NodeSimOptions& options);

}  // namespace raft::nodesim
