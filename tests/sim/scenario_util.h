// Helpers for the scenario tests (sim_test_*.cc). Each scenario builds a Cluster with a
// fixed seed, scripts faults through its API, and states its bounds in ticks. The checker
// runs on every event of every scenario: a broken invariant throws SimFailure, which fails
// the TEST_CASE with the message.
#pragma once

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "cluster.h"

namespace raft::sim::test {

// Election timeout is 10..20 ticks (ClusterOptions defaults); bounds below are multiples.
constexpr int kElectBound = 150;   // ticks for a (re-)election after a fault
constexpr int kCommitBound = 200;  // ticks for a proposal to commit once a leader exists

inline ClusterOptions Opts(int voters, bool electability = true) {
  ClusterOptions o;
  o.voters = voters;
  o.check_electability = electability;
  return o;
}

inline NodeId WaitLeader(Cluster& c, int max_ticks = kElectBound) {
  c.RunUntil([&] { return c.Leader() != kNoNode; }, max_ticks);
  return c.Leader();
}

inline std::set<NodeId> Others(Cluster& c, std::set<NodeId> except) {
  std::set<NodeId> out;
  for (NodeId id : c.ids()) {
    if (!except.count(id)) out.insert(id);
  }
  return out;
}

// Cuts `group` off from every other node (both directions).
inline void Isolate(Cluster& c, const std::set<NodeId>& group) {
  c.net().Isolate(group, c.all_ids());
}

// Proposes `data` at the current leader and waits until it is applied somewhere.
inline Index Commit(Cluster& c, const std::string& data, int max_ticks = kCommitBound) {
  return c.ProposeAndCommit(data, max_ticks);
}

// True once every running node has applied at least `index`.
inline bool AllApplied(Cluster& c, Index index, int max_ticks = kCommitBound) {
  return c.RunUntil(
      [&] {
        for (NodeId id : c.ids()) {
          if (c.Running(id) && c.node(id).applied < index) return false;
        }
        return true;
      },
      max_ticks);
}

// The leader among the nodes of `group` (kNoNode if none of them leads).
inline NodeId LeaderIn(Cluster& c, const std::set<NodeId>& group) {
  NodeId l = kNoNode;
  Term t = 0;
  for (NodeId id : group) {
    if (c.Running(id) && c.node(id).raw->role() == Role::kLeader && c.node(id).raw->term() >= t) {
      l = id;
      t = c.node(id).raw->term();
    }
  }
  return l;
}

}  // namespace raft::sim::test
