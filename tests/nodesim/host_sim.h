// The full-node simulator over hosts of many groups (issue 17): P complete raft::Host
// processes (io, disk and apply lanes; one SharedLog on a simulated disk; the version-4
// transport on the simulated network) hosting G groups, each group's replicas on 3 of
// them with a SimKv per replica, on one thread under the seeded scheduler
// (sim_world.h), with clients whose history goes to the linearizability checker, and
// faults. The model and the faults are node_sim.h's; what differs is said here.
//
// One run = one seed:
//   setup    every process starts and bootstraps the groups placed on it (group g on the
//            3 processes from g-1 on, round-robin); about half the groups (drawn from
//            the seed) start from state (Host::CreateGroupFromState at index 100 * g,
//            as a split's new range: their log begins after it, so a replica moved to
//            them or restarted needs the initial snapshot). Every group snapshots every
//            5-60 entries (drawn from the seed, as a Node's run), so compactions, group
//            snapshot streams and installs meet the faults.
//   faults   `fault_time` of virtual time with clients on random groups and the faults of
//            the seed's mix: crashes (unsynced data lost or torn), disk errors and a full
//            disk (the host fails; an operator restarts it), slow lanes, lost, duplicated,
//            reordered and delayed frames, cut connections, partitions, leadership
//            transfers of random groups, and replica moves of random groups (a process
//            that never held the group joins it empty and is added as a learner, then
//            promoted; with four voters one is removed, perhaps the leader, and its
//            process stops hosting the group for good). Lease reads are not built for
//            hosted groups and not drawn.
//   heal     faults and clients stop, the network heals, every process comes back and
//            creates its groups again from its log (LoggedGroups, and groups it joined
//            before anything reached its log); within `heal_time` every member of every
//            group (its leader's configuration) runs it, a final write per group is
//            applied on every member, and the members hold equal data.
// Checks, per group: at most one leader per term (after every step); state machine
// safety over every replica's applies and all time; a restarted process finds every
// group it had bootstrapped and not left in its log, with its log reaching at least what
// it had applied; at the end every acknowledged write is in its group's committed log
// and the clients' history (keys belong to one group each) is linearizable.
#pragma once

#include <chrono>
#include <cstdint>

#include "node_sim.h"

namespace raft::nodesim {

struct HostSimOptions {
  std::uint64_t seed = 1;
  int processes = 4;  // each group starts on 3 of them (round-robin) and moves between them
  int groups = 4;
  int clients = 4;
  int keys = 3;                                // per group
  std::chrono::milliseconds fault_time{3000};  // virtual time
  std::chrono::milliseconds heal_time{20000};  // liveness bound after healing
  bool swarm = true;                           // draw the mix from the seed; else `mix`
  FaultMix mix;
  bool trace = false;  // print the run's events to stderr
  std::uint64_t max_steps = 20'000'000;
};

// NodeSimResult's fields, as they apply to a run of hosts (members_added and
// members_removed count replica moves; the snapshot counts are every host's, every
// incarnation's, summed; last_index is the highest over all groups).
NodeSimResult RunHostSim(const HostSimOptions& options);

}  // namespace raft::nodesim
