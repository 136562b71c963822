// Persistence scenarios: crashes lose exactly what was not durable (raw_node.h contract).
#include <fmt/format.h>

#include "scenario_util.h"

namespace raft::sim::test {

TEST_CASE("persistence: restart all, then the leader, then a follower", "[sim]") {
  Cluster c(Opts(3), 301, nullptr);
  REQUIRE(WaitLeader(c) != kNoNode);
  Index i = Commit(c, "p1");
  REQUIRE(AllApplied(c, i));
  for (NodeId id : c.ids()) c.Crash(id);
  for (NodeId id : c.ids()) c.Restart(id);
  REQUIRE(AllApplied(c, Commit(c, "p2", 400)));
  c.Crash(c.Leader());
  for (NodeId id : c.ids()) c.Restart(id);
  REQUIRE(Commit(c, "p3", 400) != 0);
  NodeId f = *Others(c, {c.Leader()}).begin();
  c.Crash(f);
  c.Restart(f);
  REQUIRE(AllApplied(c, Commit(c, "p4", 400), 400));
}

TEST_CASE("persistence: repeated crashes of a minority and of a majority", "[sim]") {
  Cluster c(Opts(5), 302, nullptr);
  Rng& rng = c.rng();
  for (int round = 0; round < 12; ++round) {
    std::vector<NodeId> ids = c.ids();
    std::set<NodeId> down;
    std::size_t k = round % 2 == 0 ? 2 : 3;
    while (down.size() < k) down.insert(ids[rng.Uniform(ids.size())]);
    NodeId l = c.Leader();
    if (l != kNoNode) c.Offer(l, fmt::format("r{}", round));
    c.RunTicks(static_cast<int>(rng.Range(0, 10)));
    for (NodeId id : down) c.Crash(id, /*torn=*/true);
    c.RunTicks(30);
    for (NodeId id : down) c.Restart(id);
    REQUIRE(Commit(c, fmt::format("ok{}", round), 400) != 0);
  }
}

TEST_CASE(
    "persistence: leader and follower crash, restarted leader forms a quorum with the "
    "stale node",
    "[sim]") {
  Cluster c(Opts(3), 303, nullptr);
  NodeId l = WaitLeader(c);
  REQUIRE(Commit(c, "base") != 0);
  l = c.Leader();
  std::set<NodeId> fs = Others(c, {l});
  NodeId stale = *fs.begin(), f = *fs.rbegin();
  Isolate(c, {stale});
  Index i = Commit(c, "while-stale-cut");
  REQUIRE(i != 0);
  c.Crash(l);
  c.Crash(f);
  c.net().HealAll();
  c.Restart(l);
  Index j = Commit(c, "after", 400);
  REQUIRE(j != 0);
  REQUIRE(c.AppliedIndexOf("while-stale-cut") == i);  // not lost
  c.Restart(f);
  REQUIRE(AllApplied(c, j, 400));
}

TEST_CASE("persistence: slow disks and torn writes at crash", "[sim]") {
  Cluster c(Opts(3), 304, nullptr);
  for (NodeId id : c.ids()) c.SetDiskDelay(id, 0, 15);
  for (int round = 0; round < 10; ++round) {
    NodeId l = c.Leader();
    if (l != kNoNode) {
      for (int k = 0; k < 3; ++k) c.Offer(l, fmt::format("s{}-{}", round, k));
    }
    c.RunTicks(static_cast<int>(c.rng().Range(1, 20)));
    std::vector<NodeId> ids = c.ids();
    NodeId victim = ids[c.rng().Uniform(ids.size())];
    c.Crash(victim, /*torn=*/true);
    c.RunTicks(20);
    c.Restart(victim);
  }
  for (NodeId id : c.ids()) c.SetDiskDelay(id, 0, 0);
  REQUIRE(AllApplied(c, Commit(c, "done", 400), 400));
}

TEST_CASE("a stalled leader disk does not stall heartbeats or check-quorum", "[sim]") {
  Cluster c(Opts(3), 305, nullptr);
  NodeId l = WaitLeader(c);
  REQUIRE(Commit(c, "base") != 0);
  l = c.Leader();
  Term t = c.node(l).raw->term();
  c.SetDiskDelay(l, 60, 60);
  c.Offer(l, "slow");
  c.RunTicks(150);
  REQUIRE(c.Leader() == l);  // followers kept hearing from it
  REQUIRE(c.node(l).raw->term() == t);
  // Partition it while its disk is stuck: it must step down (check-quorum), and a new
  // leader takes over; never two leaders that both think they hold a quorum.
  c.Offer(l, "slow2");
  Isolate(c, {l});
  REQUIRE(c.RunUntil([&] { return LeaderIn(c, Others(c, {l})) != kNoNode; }, kElectBound));
  REQUIRE(c.RunUntil([&] { return c.node(l).raw->role() != Role::kLeader; }, 60));
  c.net().HealAll();
  c.SetDiskDelay(l, 0, 0);
  REQUIRE(AllApplied(c, Commit(c, "end", 400), 400));
}

}  // namespace raft::sim::test
