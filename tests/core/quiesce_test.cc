// Quiescence (Config::quiesce; docs/core.md, "Quiescence"): an idle group falls asleep,
// sends nothing and does no tick work; inputs wake it; a dead leader is replaced only
// once the host's failure detector wakes the followers.
#include <catch2/catch.hpp>

#include "runtime/process_liveness.h"
#include "test_cluster.h"

namespace raft {
using test::TestCluster;

namespace {

void Quiescing(Config& c) { c.quiesce = true; }

// One tick on each of `ids`, then every message and Ready until nothing moves. Returns
// the number of messages delivered.
int Round(TestCluster& c, std::initializer_list<NodeId> ids = {1, 2, 3}) {
  for (NodeId id : ids) c.Tick(id);
  int delivered = 0;
  for (int i = 0; i < 1000; ++i) {
    bool any = false;
    for (NodeId id : c.ids()) any |= c.Process(id);
    int n = c.Deliver();
    delivered += n;
    if (!any && n == 0) return delivered;
  }
  FAIL("cluster did not stabilize");
  return delivered;
}

bool AllQuiesced(TestCluster& c, std::initializer_list<NodeId> ids = {1, 2, 3}) {
  for (NodeId id : ids)
    if (!c.node(id).Quiesced()) return false;
  return true;
}

// Rounds until every node in `ids` sleeps (at most `max`); returns the rounds taken.
int RoundsToQuiesce(TestCluster& c, int max, std::initializer_list<NodeId> ids = {1, 2, 3}) {
  for (int r = 1; r <= max; ++r) {
    Round(c, ids);
    if (AllQuiesced(c, ids)) return r;
  }
  return max + 1;
}

std::string LastApplied(TestCluster& c, NodeId id) {
  const auto& a = c.state(id).applied;
  return a.empty() ? "" : a.back().data;
}

}  // namespace

TEST_CASE("an idle group falls asleep: nothing is sent and ticks do nothing", "[quiesce]") {
  TestCluster c(3, Quiescing);
  c.Elect(1);
  REQUIRE(c.node(1).Propose("a").ok());
  c.Stabilize();
  REQUIRE(RoundsToQuiesce(c, 3) <= 3);
  for (NodeId id : {1, 2, 3}) {
    REQUIRE(LastApplied(c, id) == "a");  // the quiesce round carried the commit
    REQUIRE(c.node(id).GetStatus().quiesced);
  }
  const Term term = c.node(1).term();
  int sent = 0;
  for (int i = 0; i < 200; ++i) sent += Round(c);  // 20 election timeouts
  REQUIRE(sent == 0);
  REQUIRE(c.node(1).role() == Role::kLeader);
  REQUIRE(c.node(1).term() == term);
  REQUIRE(c.node(2).leader() == 1);
}

TEST_CASE("a proposal wakes the group, and it sleeps again once idle", "[quiesce]") {
  TestCluster c(3, Quiescing);
  c.Elect(1);
  REQUIRE(RoundsToQuiesce(c, 3) <= 3);
  REQUIRE(c.node(1).Propose("b").ok());
  REQUIRE_FALSE(c.node(1).Quiesced());
  c.Stabilize();  // the append wakes the followers
  REQUIRE_FALSE(c.node(2).Quiesced());
  for (NodeId id : {1, 2, 3}) REQUIRE(LastApplied(c, id) == "b");
  REQUIRE(RoundsToQuiesce(c, 3) <= 3);
}

TEST_CASE("with quiesce off nothing sleeps", "[quiesce]") {
  TestCluster c(3);
  c.Elect(1);
  int sent = 0;
  for (int i = 0; i < 20; ++i) sent += Round(c);
  REQUIRE(sent >= 20 * 4);  // a heartbeat and its answer per follower per tick
  REQUIRE_FALSE(c.node(1).Quiesced());
  REQUIRE_FALSE(c.node(2).Quiesced());
}

TEST_CASE("a follower that lost the quiesce round wakes the group without a new term",
          "[quiesce]") {
  TestCluster c(3, Quiescing);
  c.Elect(1);
  const Term term = c.node(1).term();
  // The leader's quiesce round: drop the heartbeat to node 3.
  for (int i = 0; i < 5 && !c.node(1).Quiesced(); ++i) {
    c.Tick(1);
    c.Process(1);
    if (c.node(1).Quiesced()) {
      std::erase_if(c.queue(), [](const Message& m) { return m.to == 3; });
    }
    c.Stabilize();
  }
  REQUIRE(c.node(1).Quiesced());
  REQUIRE(c.node(2).Quiesced());
  REQUIRE_FALSE(c.node(3).Quiesced());
  // Node 3's election timer runs out; its pre-vote wakes the others, the leader's next
  // round reaches it, and the group sleeps again. Nobody's term moves (pre-vote).
  REQUIRE(RoundsToQuiesce(c, 4 * c.state(3).config.election_ticks) <=
          4 * c.state(3).config.election_ticks);
  REQUIRE(c.node(1).role() == Role::kLeader);
  for (NodeId id : {1, 2, 3}) REQUIRE(c.node(id).term() == term);
}

TEST_CASE("a follower behind keeps its group awake until it catches up", "[quiesce]") {
  TestCluster c(3, Quiescing);
  c.Elect(1);
  c.Isolate(3);
  REQUIRE(c.node(1).Propose("c").ok());
  c.Stabilize();
  for (int i = 0; i < 30; ++i) {
    Round(c, {1, 2});
    REQUIRE_FALSE(c.node(1).Quiesced());
  }
  c.Heal();
  REQUIRE(RoundsToQuiesce(c, 5) <= 5);
  REQUIRE(LastApplied(c, 3) == "c");
}

TEST_CASE("a quiesced group replaces a dead leader only once the host wakes it", "[quiesce]") {
  TestCluster c(3, Quiescing);
  c.Elect(1);
  REQUIRE(RoundsToQuiesce(c, 3) <= 3);
  const Term term = c.node(1).term();
  c.Isolate(1);  // the leader's process is gone
  const int e = c.state(2).config.election_ticks;
  for (int i = 0; i < 10 * e; ++i) Round(c, {2, 3});
  // This is the contract: asleep, the followers notice nothing by themselves.
  REQUIRE(c.node(2).leader() == 1);
  REQUIRE(c.node(3).leader() == 1);
  // The host's failure detector lost node 1's process.
  c.node(2).Unquiesce();
  c.node(3).Unquiesce();
  int rounds = 0;
  while (c.node(2).role() != Role::kLeader && c.node(3).role() != Role::kLeader) {
    Round(c, {2, 3});
    REQUIRE(++rounds < 4 * e);
  }
  REQUIRE(c.node(2).term() > term);
  // The old leader, back, still asleep: the new leader's first message wakes it and it
  // follows. The group then sleeps under its new leader.
  c.Heal();
  REQUIRE(RoundsToQuiesce(c, 10) <= 10);
  REQUIRE(c.node(1).role() == Role::kFollower);
  REQUIRE(c.node(1).term() == c.node(2).term());
}

TEST_CASE("ReportLeaderLost wakes a quiesced follower of that leader", "[quiesce]") {
  TestCluster c(3, Quiescing);
  c.Elect(1);
  REQUIRE(RoundsToQuiesce(c, 3) <= 3);
  c.node(2).ReportLeaderLost(3);  // not its leader: stays asleep
  REQUIRE(c.node(2).Quiesced());
  c.node(2).ReportLeaderLost(1);
  REQUIRE_FALSE(c.node(2).Quiesced());
}

TEST_CASE("reads wake a quiesced group; a leader that slept holds no lease", "[quiesce]") {
  TestCluster c(3, [](Config& cfg) {
    cfg.quiesce = true;
    cfg.read_only = ReadOnlyOption::kLeaseBased;
  });
  // Past the promise every voter keeps after it starts (lease_test.cc does the same).
  for (NodeId id : c.ids()) c.Tick(id, c.state(id).config.election_ticks);
  c.Elect(1);
  REQUIRE(c.node(1).role() == Role::kLeader);
  for (int i = 0; i < 3; ++i) {  // busy (a proposal at every tick): awake, with a lease
    REQUIRE(c.node(1).Propose("w").ok());
    Round(c);
  }
  REQUIRE_FALSE(c.node(1).Quiesced());
  SECTION("awake, the lease answers at once") {
    REQUIRE(c.node(1).ReadIndex("awake").ok());
    c.Process(1);
    REQUIRE(c.state(1).reads.size() == 1);
  }
  SECTION("after sleeping, a read needs a fresh round") {
    REQUIRE(RoundsToQuiesce(c, 3) <= 3);
    REQUIRE(c.node(1).ReadIndex("asleep").ok());
    REQUIRE_FALSE(c.node(1).Quiesced());
    c.Process(1);
    REQUIRE(c.state(1).reads.empty());  // the round went out; no lease to answer from
    c.Stabilize();
    REQUIRE(c.state(1).reads.size() == 1);
    REQUIRE(c.state(1).reads[0].context == "asleep");
  }
  SECTION("a follower's read wakes it and its leader") {
    REQUIRE(RoundsToQuiesce(c, 3) <= 3);
    REQUIRE(c.node(2).ReadIndex("follower").ok());
    REQUIRE_FALSE(c.node(2).Quiesced());
    c.Stabilize();
    REQUIRE(c.state(2).reads.size() == 1);
  }
}

TEST_CASE("the quiesce flag is refused on anything but a heartbeat", "[quiesce][validate]") {
  TestCluster c(3, Quiescing);
  c.Elect(1);
  Message m;
  m.type = MessageType::kAppendResponse;
  m.from = 2;
  m.to = 1;
  m.term = c.node(1).term();
  m.index = 1;
  m.quiesce = true;
  Status s = c.node(1).Step(m);
  REQUIRE(s.code() == ErrorCode::kInvalidArgument);
  REQUIRE(s.message().find("sets quiesce (only kHeartbeat does)") != std::string::npos);
}

TEST_CASE("a follower with quiesce off answers a quiesce round and stays awake", "[quiesce]") {
  TestCluster c(3, [](Config& cfg) { cfg.quiesce = cfg.id != 3; });
  c.Elect(1);
  for (int i = 0; i < 10; ++i) {
    Round(c);
    REQUIRE_FALSE(c.node(3).Quiesced());
  }
  // Its answers wake the leader each time: the group never sleeps, nor does it churn.
  REQUIRE(c.node(1).role() == Role::kLeader);
  REQUIRE(c.node(3).leader() == 1);
}

// The host's side (runtime/process_liveness.h, header-only and pure): which processes
// are lost, and which sleeping cores that wakes.
TEST_CASE("ProcessLiveness: a peer not heard for more than the timeout is lost",
          "[quiesce][liveness]") {
  runtime::ProcessLiveness live(10);
  REQUIRE_FALSE(live.Lost(2, 100));  // first asked: watched from now
  REQUIRE_FALSE(live.Lost(2, 110));
  REQUIRE(live.Lost(2, 111));
  live.Heard(2, 111);
  REQUIRE_FALSE(live.Lost(2, 121));
  REQUIRE(live.Lost(2, 122));
  live.Forget(2);
  REQUIRE_FALSE(live.Lost(2, 500));  // watched afresh
}

TEST_CASE("ShouldWake: a sleeping follower for its leader's process, a leader for a voter's",
          "[quiesce][liveness]") {
  TestCluster c(3, Quiescing);
  c.Elect(1);
  REQUIRE(RoundsToQuiesce(c, 3) <= 3);
  using runtime::ShouldWake;
  CHECK_FALSE(ShouldWake(c.node(2), {}));
  CHECK_FALSE(ShouldWake(c.node(2), {3}));  // another follower: not its business
  CHECK(ShouldWake(c.node(2), {1}));
  CHECK(ShouldWake(c.node(1), {3}));
  CHECK_FALSE(ShouldWake(c.node(1), {4}));  // not a member
  REQUIRE(c.node(1).Propose("awake").ok());
  CHECK_FALSE(ShouldWake(c.node(1), {2, 3}));  // awake: nothing to do
}

}  // namespace raft
