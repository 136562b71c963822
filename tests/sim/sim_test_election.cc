// Election scenarios (Raft paper 5.2; thesis 4.2.3 / 9.6 for pre-vote and check-quorum).
#include <fmt/format.h>

#include "scenario_util.h"

namespace raft::sim::test {

TEST_CASE("initial election: one leader, term stable without faults", "[sim]") {
  Cluster c(Opts(3), 201, nullptr);
  NodeId l = WaitLeader(c);
  REQUIRE(l != kNoNode);
  Term t = c.node(l).raw->term();
  REQUIRE(t >= 2);  // bootstrap writes term 1
  c.RunTicks(400);
  REQUIRE(c.Leader() == l);
  REQUIRE(c.LeaderCount() == 1);
  REQUIRE(c.node(l).raw->term() == t);
}

TEST_CASE("re-election: leader loss, rejoin, no quorum, quorum restored", "[sim]") {
  Cluster c(Opts(3), 202, nullptr);
  NodeId l1 = WaitLeader(c);
  REQUIRE(l1 != kNoNode);
  Isolate(c, {l1});
  std::set<NodeId> rest = Others(c, {l1});
  REQUIRE(c.RunUntil([&] { return LeaderIn(c, rest) != kNoNode; }, kElectBound));
  // The old leader rejoins: still exactly one leader.
  c.net().HealAll();
  c.RunTicks(60);
  REQUIRE(c.LeaderCount() == 1);
  // Cut two of three: no leader anywhere (check-quorum deposes the isolated one).
  NodeId l2 = c.Leader();
  NodeId f = *Others(c, {l2}).begin();
  Isolate(c, {l2});
  Isolate(c, {f});
  c.RunTicks(80);
  REQUIRE(c.LeaderCount() == 0);
  // Restore a quorum.
  c.net().HealAll();
  Isolate(c, {l2});
  REQUIRE(c.RunUntil([&] { return LeaderIn(c, Others(c, {l2})) != kNoNode; }, kElectBound));
  c.net().HealAll();
  REQUIRE(Commit(c, "after") != 0);
}

TEST_CASE("many elections: 7 nodes, 10 rounds of cutting 3 random nodes", "[sim]") {
  Cluster c(Opts(7), 203, nullptr);
  REQUIRE(WaitLeader(c) != kNoNode);
  for (int round = 0; round < 10; ++round) {
    std::vector<NodeId> ids = c.ids();
    std::set<NodeId> cut;
    while (cut.size() < 3) cut.insert(ids[c.rng().Uniform(ids.size())]);
    for (NodeId id : cut) Isolate(c, {id});
    std::set<NodeId> rest = Others(c, cut);
    INFO("round " << round);
    REQUIRE(c.RunUntil([&] { return LeaderIn(c, rest) != kNoNode; }, 2 * kElectBound));
    c.net().HealAll();
    c.RunTicks(20);
  }
  REQUIRE(Commit(c, "end") != 0);
}

TEST_CASE("pre-vote: a long-isolated follower rejoins without disrupting the leader", "[sim]") {
  Cluster c(Opts(3), 204, nullptr);
  NodeId l = WaitLeader(c);
  REQUIRE(Commit(c, "base") != 0);
  l = c.Leader();
  Term t = c.node(l).raw->term();
  NodeId f = *Others(c, {l}).begin();
  Isolate(c, {f});
  c.RunTicks(500);                      // ~30 election timeouts
  REQUIRE(c.node(f).raw->term() == t);  // pre-vote: no term inflation
  c.net().HealAll();
  c.RunTicks(200);
  REQUIRE(c.Leader() == l);
  REQUIRE(c.node(l).raw->term() == t);
}

TEST_CASE("partial connectivity converges with pre-vote and check-quorum", "[sim]") {
  // 5 nodes: 1, 2, 3 fully connected; 4 reaches only 2; 5 reaches only 3.
  Cluster c(Opts(5), 205, nullptr);
  REQUIRE(WaitLeader(c) != kNoNode);
  Network& n = c.net();
  for (NodeId x : {1, 3, 5}) n.BlockBoth(4, x);
  for (NodeId x : {1, 2, 4}) n.BlockBoth(5, x);
  c.RunTicks(300);
  NodeId l = c.Leader();
  REQUIRE(l != kNoNode);
  Term t = c.node(l).raw->term();
  c.RunTicks(600);
  REQUIRE(c.Leader() == l);
  REQUIRE(c.node(l).raw->term() == t);
  REQUIRE(Commit(c, "stable") != 0);
}

TEST_CASE("message counts: election, 10 entries, idle", "[sim]") {
  // Scaled from the lab limits (30 to elect, 42 for 10 entries, 60 per idle second with
  // 100 ms heartbeats) to heartbeat_ticks = 2.
  ClusterOptions o = Opts(3);
  o.shuffle_events = false;
  Cluster c(o, 206, nullptr);
  REQUIRE(WaitLeader(c) != kNoNode);
  std::uint64_t elect = c.messages_sent();
  INFO("messages to elect: " << elect);
  CHECK(elect <= 30);
  REQUIRE(Commit(c, "warm") != 0);
  c.RunTicks(10);
  NodeId l = c.Leader();
  std::uint64_t before = c.messages_sent();
  for (int i = 0; i < 10; ++i) REQUIRE(c.Propose(l, fmt::format("m{}", i)).ok());
  REQUIRE(c.RunUntil([&] { return c.AppliedIndexOf("m9") != 0; }, 100));
  std::uint64_t ten = c.messages_sent() - before;
  INFO("messages for 10 entries: " << ten);
  CHECK(ten <= 100);  // one append round per proposal (no batching across Propose calls)
  c.RunTicks(20);
  before = c.messages_sent();
  c.RunTicks(50);  // 25 heartbeat rounds x 2 followers x (heartbeat + response)
  std::uint64_t idle = c.messages_sent() - before;
  INFO("idle messages in 50 ticks: " << idle);
  CHECK(idle <= 110);
}

}  // namespace raft::sim::test
