// Lease reads (ReadOnlyOption::kLeaseBased, thesis 6.4.1) and the TimeoutNow rules they
// depend on. Each regression test below replays one event sequence of
// /work/shared/reviews/safety.md (sections 1a, 1b, 1c and 7): before the fix, the old
// leader answered a read from its lease after another leader had committed a write.
#include <catch2/catch.hpp>
#include <set>
#include <utility>

#include "test_cluster.h"

namespace raft {
namespace {
using test::TestCluster;

constexpr int kElection = 10;  // Config::election_ticks (the default)

using Links = std::set<std::pair<NodeId, NodeId>>;  // directed links (from, to)

// Like TestCluster::Stabilize, but messages on the `cut` links are lost.
void StabilizeCut(TestCluster& c, const Links& cut) {
  for (int round = 0; round < 1000; ++round) {
    bool any = false;
    for (NodeId id : c.ids()) any |= c.Process(id);
    std::erase_if(c.queue(), [&](const Message& m) { return cut.count({m.from, m.to}) > 0; });
    any |= c.Deliver() > 0;
    if (!any) return;
  }
  FAIL("cluster did not stabilize");
}

Links Both(NodeId a, NodeId b) { return {{a, b}, {b, a}}; }

// Three voters with lease reads. Every node starts inside its restart promise (it may have
// vouched for a leader before a crash), so first let an election timeout pass everywhere,
// then elect node 1 and let it collect a lease: a heartbeat round acknowledged by all.
TestCluster LeaseCluster() {
  TestCluster c(3, [](Config& cfg) { cfg.read_only = ReadOnlyOption::kLeaseBased; });
  for (NodeId id : c.ids()) c.Tick(id, kElection);
  c.ProcessAll();
  c.queue().clear();  // campaigns started by the timers: not needed
  c.Elect(1);
  REQUIRE(c.node(1).role() == Role::kLeader);
  c.Tick(1, 1);
  c.Stabilize();
  return c;
}

// Index at which `data` was applied on `id`, 0 if not applied.
Index AppliedAt(TestCluster& c, NodeId id, const std::string& data) {
  for (const Entry& e : c.state(id).applied)
    if (e.data == data) return e.index;
  return 0;
}

// Node 3 (now leader of a later term) commits "W" with node 2, while node 1 hears nothing;
// then a read arrives at node 1. Returns whether node 1 answered it from its lease: a
// stale read, since its commit index is below W.
bool OldLeaderAnswersAfterNewWrite(TestCluster& c, const Links& cut) {
  REQUIRE(c.node(3).role() == Role::kLeader);
  REQUIRE(c.node(1).role() == Role::kLeader);  // has not heard of the new term
  REQUIRE(c.node(3).Propose("W").ok());
  StabilizeCut(c, cut);
  const Index w = AppliedAt(c, 3, "W");
  REQUIRE(w != 0);  // acknowledged to the client
  REQUIRE(c.node(1).GetStatus().hard_state.commit < w);
  const std::size_t before = c.state(1).reads.size();
  REQUIRE(c.node(1).ReadIndex("after-W").ok());
  c.ProcessAll();  // no delivery: only a lease can answer now
  return c.state(1).reads.size() > before;
}

// Node 1 (leader) starts a transfer to node 3; its TimeoutNow is taken out of the queue
// (held up in the network) and returned.
Message HoldTimeoutNowTo3(TestCluster& c) {
  REQUIRE(c.node(1).TransferLeadership(3).ok());
  c.Process(1);
  auto tn = c.Queued(MessageType::kTimeoutNow);
  REQUIRE(tn.size() == 1);
  std::erase_if(c.queue(), [](const Message& m) { return m.type == MessageType::kTimeoutNow; });
  return tn[0];
}

// Ticks node 1 through an election timeout: the transfer in progress is aborted.
void AbortTransfer(TestCluster& c) {
  for (int i = 0; i < kElection; ++i) {
    c.Tick(1);
    c.Stabilize();
  }
  REQUIRE(c.node(1).GetStatus().lead_transferee == kNoNode);
}

// After node 3's campaign: either it won, and node 1 must not answer a read from its
// lease after 3's write, or the promise held, 1 is the only leader, and its lease read
// is fresh.
void RequireNoStaleLeaseRead(TestCluster& c, const Links& cut) {
  if (c.node(3).role() == Role::kLeader) {
    REQUIRE_FALSE(OldLeaderAnswersAfterNewWrite(c, cut));
    return;
  }
  const std::size_t before = c.state(1).reads.size();
  REQUIRE(c.node(1).ReadIndex("fresh").ok());
  c.ProcessAll();
  REQUIRE(c.state(1).reads.size() == before + 1);
}

}  // namespace

TEST_CASE("lease reads answer at once inside the lease and not after it expires",
          "[readindex][lease]") {
  TestCluster c = LeaseCluster();
  REQUIRE(c.node(1).ReadIndex("in-lease").ok());
  c.ProcessAll();  // no delivery: answered from the lease alone
  REQUIRE(c.state(1).reads.size() == 1);
  // Cut the leader off: its lease runs out before check-quorum demotes it.
  c.Isolate(1);
  c.Tick(1, kElection - 1);
  c.Stabilize();
  REQUIRE(c.node(1).role() == Role::kLeader);
  REQUIRE(c.node(1).ReadIndex("stale?").ok());
  c.Stabilize();
  REQUIRE(c.state(1).reads.size() == 1);  // not answered: the lease expired
}

// safety.md 1a: a transfer campaign bypasses the followers' promise, so the leader that
// sent TimeoutNow must give up its lease for the rest of its term.
TEST_CASE("lease: a leader that sent TimeoutNow no longer answers from its lease",
          "[lease][transfer]") {
  TestCluster c = LeaseCluster();
  const Links cut = {{3, 1}};  // 3's Vote and Appends to 1 are lost (a PeerConn in backoff)
  REQUIRE(c.node(1).TransferLeadership(3).ok());
  StabilizeCut(c, cut);  // TimeoutNow; 3 wins term 2 with 2's vote (granted in 1's lease)
  REQUIRE_FALSE(OldLeaderAnswersAfterNewWrite(c, cut));
  c.Stabilize();  // once 1 hears of term 2 it steps down; the read is never answered
  REQUIRE(c.node(1).role() == Role::kFollower);
  REQUIRE(c.state(1).reads.empty());
}

// safety.md 1b: a reset connection from a live leader must not end a follower's promise.
TEST_CASE("lease: ReportLeaderLost does not release a follower's promise to the leader",
          "[lease][election]") {
  TestCluster c = LeaseCluster();
  const Links cut = Both(1, 3);  // 3 is cut off from 1 but reaches 2
  c.Tick(1, 1);
  StabilizeCut(c, cut);           // 2 acknowledges a heartbeat: 1's lease rests on {1, 2}
  c.node(2).ReportLeaderLost(1);  // 2's connection from 1 was reset; 1 is alive
  c.Tick(3, kElection);           // 3 has not heard from 1 for an election timeout
  c.node(3).Campaign();
  StabilizeCut(c, cut);
  // The fix: 2 keeps its promise and refuses 3's pre-vote, so 1 stays the only leader.
  RequireNoStaleLeaseRead(c, cut);
}

// safety.md 1c: a follower that acknowledged a heartbeat and restarted at once.
TEST_CASE("lease: a restarted voter keeps the promise it may have made before the crash",
          "[lease][election]") {
  TestCluster c = LeaseCluster();
  const Links cut = Both(1, 3);
  c.Tick(1, 1);
  StabilizeCut(c, cut);  // 2 acknowledges: 1's lease rests on {1, 2}
  c.Restart(2);          // 2 crashes and restarts within the lease
  c.Tick(3, kElection);
  c.node(3).Campaign();
  StabilizeCut(c, cut);
  RequireNoStaleLeaseRead(c, cut);
  // After an election timeout of its own, 2 votes again: 3 wins (1 is still cut off).
  c.Tick(2, kElection);
  c.Tick(3, kElection);
  c.node(3).Campaign();
  StabilizeCut(c, cut);
  REQUIRE(c.node(3).role() == Role::kLeader);
}

TEST_CASE("lease: a node inside its promise does not campaign on request", "[lease][election]") {
  TestCluster c = LeaseCluster();
  const Term t = c.node(2).term();
  c.node(2).Campaign();  // 2 heard from 1 just now: its own vote belongs to 1's lease
  c.Stabilize();
  REQUIRE(c.node(2).term() == t);
  REQUIRE(c.node(2).role() == Role::kFollower);
  REQUIRE(c.node(1).role() == Role::kLeader);
}

// safety.md 7: a TimeoutNow that arrives after its transfer was aborted.
TEST_CASE("thesis 3.10 a TimeoutNow delayed past the abort of its transfer is ignored",
          "[transfer]") {
  TestCluster c(3);
  c.Elect(1);
  const Term t = c.node(1).term();
  // The TimeoutNow is held up (queued behind a reconnect); the transfer is aborted at the
  // next election boundary and 1 goes on leading term t.
  const Message tn = HoldTimeoutNowTo3(c);
  AbortTransfer(c);
  REQUIRE(c.node(1).Propose("after-abort").ok());
  c.Stabilize();
  REQUIRE(c.node(3).Step(tn).ok());  // the late TimeoutNow, then a duplicate
  REQUIRE(c.node(3).Step(tn).ok());
  c.Stabilize();
  REQUIRE(c.node(1).role() == Role::kLeader);
  REQUIRE(c.node(1).term() == t);
  REQUIRE(c.node(3).term() == t);
}

TEST_CASE("thesis 3.10 an aborted transfer leaves no TimeoutNow to obey, even when idle",
          "[transfer]") {
  TestCluster c(3);
  c.Elect(1);
  const Term t = c.node(1).term();
  const Message tn = HoldTimeoutNowTo3(c);
  c.queue().clear();
  AbortTransfer(c);
  // No proposal since the abort: the leader's own abort mark makes the TimeoutNow stale.
  REQUIRE(c.node(3).Step(tn).ok());
  c.Stabilize();
  REQUIRE(c.node(1).role() == Role::kLeader);
  REQUIRE(c.node(1).term() == t);
}

// Refused since messages are validated (docs/core.md, "Message validation"): node 2 cannot
// lead term t, so no honest node sends this.
TEST_CASE("thesis 3.10 a TimeoutNow from a node other than the leader is refused", "[transfer]") {
  TestCluster c(3);
  c.Elect(1);
  const Term t = c.node(1).term();
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.from = 2;
  m.to = 3;
  m.term = t;
  LogPosition last{c.node(3).term(), c.node(3).GetStatus().last_index};
  m.index = last.index;
  m.log_term = last.term;
  REQUIRE(c.node(3).Step(m).code() == ErrorCode::kInvalidArgument);
  c.Stabilize();
  REQUIRE(c.node(1).role() == Role::kLeader);
  REQUIRE(c.node(3).term() == t);
}

}  // namespace raft
