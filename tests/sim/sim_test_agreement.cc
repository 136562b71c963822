// Agreement scenarios (Raft paper 5.3-5.4; the classic lab tests).
#include <fmt/format.h>

#include "figure8.h"
#include "scenario_util.h"

namespace raft::sim::test {

TEST_CASE("basic agreement: entries land at consecutive indexes on every node", "[sim]") {
  Cluster c(Opts(3), 101, nullptr);
  REQUIRE(WaitLeader(c) != kNoNode);
  Index a = Commit(c, "x1");
  Index b = Commit(c, "x2");
  Index d = Commit(c, "x3");
  REQUIRE(a != 0);
  REQUIRE(b == a + 1);
  REQUIRE(d == b + 1);
  REQUIRE(AllApplied(c, d));
}

TEST_CASE("agreement with a failed follower; nothing commits without a majority", "[sim]") {
  Cluster c(Opts(3), 102, nullptr);
  NodeId l = WaitLeader(c);
  REQUIRE(l != kNoNode);
  NodeId f = *Others(c, {l}).begin();
  c.Crash(f);
  REQUIRE(Commit(c, "with-one-down") != 0);
  c.Restart(f);
  Index i = Commit(c, "after-restart");
  REQUIRE(i != 0);
  REQUIRE(AllApplied(c, i));
  // Both followers down: no commit.
  l = c.Leader();
  for (NodeId id : Others(c, {l})) c.Crash(id);
  REQUIRE(c.Propose(l, "no-majority").ok());
  c.RunTicks(100);
  REQUIRE(c.AppliedIndexOf("no-majority") == 0);
  for (NodeId id : c.ids()) c.Restart(id);
  REQUIRE(AllApplied(c, Commit(c, "healed")));
}

TEST_CASE("fail-no-agree: 5 nodes, 3 followers cut off, index must not commit", "[sim]") {
  Cluster c(Opts(5), 103, nullptr);
  NodeId l = WaitLeader(c);
  REQUIRE(Commit(c, "base") != 0);
  l = c.Leader();
  std::set<NodeId> cut;
  for (NodeId id : Others(c, {l})) {
    if (cut.size() < 3) cut.insert(id);
  }
  Isolate(c, cut);
  auto pos = c.Propose(l, "minority-write");
  REQUIRE(pos.ok());
  c.RunTicks(100);
  REQUIRE(c.AppliedIndexOf("minority-write") == 0);
  c.net().HealAll();
  Index next = Commit(c, "after-heal", 400);
  REQUIRE(next != 0);
  // The next entry lands right after the uncommitted one, or replaces it.
  REQUIRE((next == pos->index || next == pos->index + 1 || next == pos->index + 2));
}

TEST_CASE("concurrent proposals in one term all commit", "[sim]") {
  Cluster c(Opts(5), 104, nullptr);
  NodeId l = WaitLeader(c);
  REQUIRE(Commit(c, "warmup") != 0);
  l = c.Leader();
  Term t = c.node(l).raw->term();
  std::vector<Index> at;
  for (int i = 0; i < 5; ++i) {
    auto r = c.Propose(l, fmt::format("conc-{}", i));
    REQUIRE(r.ok());
    at.push_back(r->index);
  }
  REQUIRE(c.RunUntil([&] { return c.AppliedIndexOf("conc-4") != 0; }, kCommitBound));
  REQUIRE(c.node(l).raw->term() == t);
  for (int i = 0; i < 5; ++i) REQUIRE(c.AppliedIndexOf(fmt::format("conc-{}", i)) == at[i]);
}

TEST_CASE("rejoin: a partitioned old leader's uncommitted entries are overwritten", "[sim]") {
  Cluster c(Opts(3), 105, nullptr);
  NodeId old = WaitLeader(c);
  REQUIRE(Commit(c, "base") != 0);
  old = c.Leader();
  Isolate(c, {old});
  for (int i = 0; i < 3; ++i) REQUIRE(c.Propose(old, fmt::format("lost-{}", i)).ok());
  NodeId nl = kNoNode;
  REQUIRE(c.RunUntil([&] { return (nl = LeaderIn(c, Others(c, {old}))) != kNoNode; }, kElectBound));
  Index i = Commit(c, "new-leader-entry");
  REQUIRE(i != 0);
  c.net().HealAll();
  REQUIRE(AllApplied(c, Commit(c, "after-rejoin")));
  for (int k = 0; k < 3; ++k) REQUIRE(c.AppliedIndexOf(fmt::format("lost-{}", k)) == 0);
  REQUIRE(c.LeaderCount() == 1);
}

TEST_CASE("backup: a leader backs up quickly over 50 conflicting entries, twice", "[sim]") {
  ClusterOptions o = Opts(5);
  Cluster c(o, 106, nullptr);
  for (int round = 0; round < 2; ++round) {
    NodeId l = WaitLeader(c);
    REQUIRE(l != kNoNode);
    REQUIRE(Commit(c, fmt::format("base-{}", round)) != 0);
    l = c.Leader();
    NodeId buddy = *Others(c, {l}).begin();
    Isolate(c, {l, buddy});
    for (int i = 0; i < 50; ++i) c.Offer(l, fmt::format("stale-{}-{}", round, i));
    std::set<NodeId> rest = Others(c, {l, buddy});
    REQUIRE(c.RunUntil([&] { return LeaderIn(c, rest) != kNoNode; }, kElectBound));
    NodeId nl = LeaderIn(c, rest);
    for (int i = 0; i < 50; ++i) c.Offer(nl, fmt::format("good-{}-{}", round, i));
    REQUIRE(c.RunUntil([&] { return c.AppliedIndexOf(fmt::format("good-{}-49", round)) != 0; },
                       kCommitBound));
    c.net().HealAll();
    c.net().ResetCounters();
    Index i = Commit(c, fmt::format("joined-{}", round));
    REQUIRE(i != 0);
    REQUIRE(AllApplied(c, i, 300));
    // Term-based hints: backing up over 50 entries costs a few round trips, not 50.
    INFO("messages while backing up: " << c.net().counters().sent);
    REQUIRE(c.net().counters().sent < 400);
  }
}

TEST_CASE("Figure 8: an old-term entry is never committed by counting replicas", "[sim]") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    INFO("seed " << seed);
    RunScriptedFigure8(seed);
  }
}

TEST_CASE("Figure 8 (randomized): leaders crash while proposing; all agree at the end", "[sim]") {
  for (bool unreliable : {false, true}) {
    ClusterOptions o = Opts(5);
    o.max_msg_bytes = 1;
    Cluster c(o, unreliable ? 109 : 108, nullptr);
    if (unreliable) {
      NetFaults nf;
      nf.delay_max_ticks = 4;
      nf.long_delay = 0.05;
      nf.long_delay_max_ticks = 150;
      nf.drop = 0.05;
      c.net().set_faults(nf);
    }
    Rng& rng = c.rng();
    for (int round = 0; round < 150; ++round) {
      NodeId l = c.Leader();
      if (l != kNoNode) c.Offer(l, fmt::format("f8-{}", round));
      c.RunTicks(static_cast<int>(rng.Range(1, 12)));
      if (l != kNoNode && c.Running(l) && rng.Chance(0.5)) c.Crash(l, rng.Chance(0.5));
      int up = 0;
      for (NodeId id : c.ids()) up += c.Running(id);
      if (up < 3) {
        for (NodeId id : c.ids()) {
          if (!c.Running(id) && rng.Chance(0.7)) c.Restart(id);
        }
      }
    }
    c.net().set_faults(NetFaults{});
    for (NodeId id : c.ids()) c.Restart(id);
    Index i = Commit(c, "f8-final", 600);
    REQUIRE(i != 0);
    REQUIRE(AllApplied(c, i, 600));
  }
}

TEST_CASE("unreliable agreement: 10% drops, duplicates, reordering", "[sim]") {
  Cluster c(Opts(5), 110, nullptr);
  NetFaults nf;
  nf.drop = 0.1;
  nf.duplicate = 0.05;
  nf.delay_max_ticks = 5;
  nf.long_delay = 0.02;
  nf.long_delay_max_ticks = 100;
  c.net().set_faults(nf);
  for (int i = 0; i < 30; ++i) {
    NodeId l = c.Leader();
    if (l != kNoNode) c.Offer(l, fmt::format("u-{}", i));
    c.RunTicks(3);
  }
  c.net().set_faults(NetFaults{});
  Index i = Commit(c, "u-final", 400);
  REQUIRE(i != 0);
  REQUIRE(AllApplied(c, i, 400));
}

}  // namespace raft::sim::test
