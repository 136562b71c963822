// Membership changes (thesis 4.1-4.3, one voter at a time) and leadership transfer
// (thesis 3.10), under faults.
#include <fmt/format.h>

#include "scenario_util.h"

namespace raft::sim::test {
namespace {

Status Change(Cluster& c, ConfChangeType type, NodeId node) {
  for (int attempt = 0; attempt < 40; ++attempt) {
    NodeId l = WaitLeader(c);
    if (l == kNoNode) continue;
    auto r = c.node(l).raw->ProposeConfChange({type, node, {}});
    c.Kick(l);
    if (r.ok()) {
      if (type != ConfChangeType::kRemoveNode) c.StartSpare(node);
      Index at = r->index;
      if (c.RunUntil([&] { return c.checker().applied().count(at) != 0; }, 200)) {
        auto it = c.checker().applied().find(at);
        if (it->second.type == EntryType::kConfChange) return Status::Ok();
      }
      continue;
    }
    c.RunTicks(10);
  }
  return Status(ErrorCode::kTimeout, "conf change did not commit");
}

ClusterOptions MemberOpts() {
  ClusterOptions o = Opts(3, /*electability=*/false);
  o.spares = 2;
  return o;
}

}  // namespace

TEST_CASE("membership: add a learner, promote it, under an unreliable network", "[sim]") {
  Cluster c(MemberOpts(), 501, nullptr);
  NetFaults nf;
  nf.drop = 0.05;
  nf.delay_max_ticks = 3;
  c.net().set_faults(nf);
  REQUIRE(Commit(c, "base", 400) != 0);
  REQUIRE(Change(c, ConfChangeType::kAddLearner, 4).ok());
  REQUIRE(Change(c, ConfChangeType::kAddVoter, 4).ok());
  REQUIRE(c.checker().committed_conf().voters.count(4) == 1);
  c.net().set_faults(NetFaults{});
  // Now 4 voters: any 3 form a quorum, including the new node.
  c.Crash(1);
  Index i = Commit(c, "with-4", 400);
  REQUIRE(i != 0);
  c.Restart(1);
  REQUIRE(AllApplied(c, i, 400));
}

TEST_CASE("membership: remove a follower, then remove the leader", "[sim]") {
  Cluster c(MemberOpts(), 502, nullptr);
  REQUIRE(Commit(c, "base", 400) != 0);
  REQUIRE(Change(c, ConfChangeType::kAddVoter, 4).ok());
  REQUIRE(Change(c, ConfChangeType::kAddVoter, 5).ok());
  NodeId l = c.Leader();
  NodeId f = *Others(c, {l}).begin();
  REQUIRE(Change(c, ConfChangeType::kRemoveNode, f).ok());
  l = WaitLeader(c);
  REQUIRE(Change(c, ConfChangeType::kRemoveNode, l).ok());
  std::set<NodeId> rest = Others(c, {l, f});
  REQUIRE(c.RunUntil([&] { return LeaderIn(c, rest) != kNoNode; }, kElectBound));
  REQUIRE(Commit(c, "after-removals", 400) != 0);
  REQUIRE(c.checker().committed_conf().voters.size() == 3);
}

TEST_CASE("membership: a removed, isolated node rejoining does not disrupt the leader", "[sim]") {
  Cluster c(MemberOpts(), 503, nullptr);
  REQUIRE(Commit(c, "base", 400) != 0);
  REQUIRE(Change(c, ConfChangeType::kAddVoter, 4).ok());
  NodeId l = c.Leader();
  NodeId victim = *Others(c, {l}).begin();
  Isolate(c, {victim});  // it never learns of its removal
  REQUIRE(Change(c, ConfChangeType::kRemoveNode, victim).ok());
  c.RunTicks(400);
  l = c.Leader();
  Term t = c.node(l).raw->term();
  c.net().HealAll();
  c.RunTicks(300);
  REQUIRE(c.Leader() == l);
  REQUIRE(c.node(l).raw->term() == t);
  REQUIRE(Commit(c, "undisturbed") != 0);
}

TEST_CASE("leadership transfer under faults", "[sim]") {
  Cluster c(Opts(5), 504, nullptr);
  NetFaults nf;
  nf.drop = 0.05;
  nf.delay_max_ticks = 3;
  c.net().set_faults(nf);
  int transferred = 0;
  for (int round = 0; round < 20; ++round) {
    NodeId l = WaitLeader(c);
    if (l == kNoNode) continue;
    std::vector<NodeId> others;
    for (NodeId id : Others(c, {l})) others.push_back(id);
    NodeId target = others[c.rng().Uniform(others.size())];
    if (c.rng().Chance(0.3)) c.Offer(l, fmt::format("tr{}", round));
    REQUIRE(c.node(l).raw->TransferLeadership(target).ok());
    c.Kick(l);
    if (c.rng().Chance(0.2)) c.Crash(c.rng().Chance(0.5) ? l : target, true);
    c.RunTicks(40);
    transferred += c.Leader() == target;
    for (NodeId id : c.ids()) c.Restart(id);
  }
  INFO("transfers that landed: " << transferred);
  REQUIRE(transferred >= 5);
  c.net().set_faults(NetFaults{});
  REQUIRE(AllApplied(c, Commit(c, "end", 400), 400));
}

}  // namespace raft::sim::test
