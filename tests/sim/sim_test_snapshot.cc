// Snapshot scenarios: local snapshots + compaction, InstallSnapshot to lagging followers,
// crashes around both.
#include <fmt/format.h>

#include "scenario_util.h"

namespace raft::sim::test {
namespace {

void SnapshotAll(Cluster& c, Index keep) {
  for (NodeId id : c.ids()) c.TakeSnapshot(id, keep);
}

}  // namespace

TEST_CASE("snapshots: basic snapshot, compaction and restart from snapshot + tail", "[sim]") {
  Cluster c(Opts(3), 401, nullptr);
  REQUIRE(WaitLeader(c) != kNoNode);
  Index i = 0;
  for (int k = 0; k < 30; ++k) i = Commit(c, fmt::format("b{}", k));
  REQUIRE(AllApplied(c, i));
  SnapshotAll(c, 5);
  for (NodeId id : c.ids()) REQUIRE(c.node(id).storage->FirstIndex() > 1);
  for (int k = 0; k < 5; ++k) i = Commit(c, fmt::format("t{}", k));
  for (NodeId id : c.ids()) c.Crash(id);
  for (NodeId id : c.ids()) c.Restart(id);
  REQUIRE(AllApplied(c, Commit(c, "after", 400), 400));
}

TEST_CASE("snapshots: a lagging follower catches up by InstallSnapshot", "[sim]") {
  Cluster c(Opts(3), 402, nullptr);
  NodeId l = WaitLeader(c);
  REQUIRE(Commit(c, "base") != 0);
  l = c.Leader();
  NodeId victim = *Others(c, {l}).begin();
  Isolate(c, {victim});
  Index i = 0;
  for (int k = 0; k < 40; ++k) i = Commit(c, fmt::format("v{}", k));
  REQUIRE(i != 0);
  for (NodeId id : c.ids()) {
    if (id != victim) c.TakeSnapshot(id, 0);
  }
  c.net().HealAll();
  REQUIRE(AllApplied(c, i, 300));
  REQUIRE(c.node(victim).storage->Snapshot()->index > 0);  // came by snapshot
}

TEST_CASE("snapshots: unreliable network, crashes during installs", "[sim]") {
  for (std::uint64_t seed : {403, 404, 405}) {
    Cluster c(Opts(5), seed, nullptr);
    NetFaults nf;
    nf.drop = 0.1;
    nf.duplicate = 0.05;
    nf.delay_max_ticks = 4;
    nf.long_delay = 0.03;
    nf.long_delay_max_ticks = 80;
    c.net().set_faults(nf);
    Rng& rng = c.rng();
    for (int round = 0; round < 40; ++round) {
      NodeId l = c.Leader();
      if (l != kNoNode) c.Offer(l, fmt::format("s{}", round));
      c.RunTicks(static_cast<int>(rng.Range(1, 10)));
      std::vector<NodeId> ids = c.ids();
      NodeId x = ids[rng.Uniform(ids.size())];
      if (rng.Chance(0.3)) c.TakeSnapshot(x, static_cast<Index>(rng.Range(0, 3)));
      if (rng.Chance(0.15)) Isolate(c, {x});
      if (rng.Chance(0.15)) c.net().HealAll();
      if (rng.Chance(0.1)) c.Crash(x, true);
      if (rng.Chance(0.2)) {
        for (NodeId id : ids) c.Restart(id);
      }
    }
    c.net().set_faults(NetFaults{});
    c.net().HealAll();
    for (NodeId id : c.ids()) c.Restart(id);
    INFO("seed " << seed);
    REQUIRE(AllApplied(c, Commit(c, "end", 400), 400));
  }
}

TEST_CASE("snapshots: all nodes crash repeatedly; nothing committed is lost", "[sim]") {
  Cluster c(Opts(5), 406, nullptr);
  Index last = 0;
  for (int round = 0; round < 5; ++round) {
    Index i = Commit(c, fmt::format("a{}", round), 400);
    REQUIRE(i > last);
    last = i;
    if (round % 2 == 0) SnapshotAll(c, static_cast<Index>(round));
    for (NodeId id : c.ids()) c.Crash(id, true);
    for (NodeId id : c.ids()) c.Restart(id);
  }
  // Crash all, apply one op, crash all again: nothing lost.
  Index j = Commit(c, "one-op", 400);
  REQUIRE(j > last);
  for (NodeId id : c.ids()) c.Crash(id);
  for (NodeId id : c.ids()) c.Restart(id);
  REQUIRE(AllApplied(c, Commit(c, "final", 400), 400));
  for (int round = 0; round < 5; ++round) REQUIRE(c.AppliedIndexOf(fmt::format("a{}", round)) != 0);
}

}  // namespace raft::sim::test
