// Message validation (docs/core.md, "Message validation"): the attack sequences of
// security review F-1 (a, b's core side, c, e), each refused by RaftCore::Step before it
// changes anything. Honest traffic is never refused: TestCluster REQUIREs every Step to
// succeed, tests/sim's Cluster::Deliver fails a seed on any refusal, and the scenario
// scripts print "step refused", so every core test and sweep checks that too.
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>

#include "test_cluster.h"

namespace raft {
namespace {

using test::TestCluster;

// What a refused message must leave unchanged.
struct Snapshot {
  HardState hard;
  Role role;
  NodeId leader;
  Index last_index;
  Index applied;
  ConfState conf;
  std::size_t applied_entries;
  bool operator==(const Snapshot&) const = default;
};

Snapshot Capture(TestCluster& c, NodeId id) {
  NodeStatus s = c.node(id).GetStatus();
  return {
      s.hard_state, s.role, s.leader, s.last_index, s.applied, s.conf, c.state(id).applied.size()};
}

// Steps `m` into its receiver and requires a refusal that changed nothing.
void RequireRefused(TestCluster& c, const Message& m) {
  Snapshot before = Capture(c, m.to);
  bool ready_before = c.node(m.to).HasReady();
  Status s = c.node(m.to).Step(m);
  INFO(s.ToString());
  REQUIRE(s.code() == ErrorCode::kInvalidArgument);
  REQUIRE(Capture(c, m.to) == before);
  REQUIRE(c.node(m.to).HasReady() == ready_before);
}

Message Msg(MessageType type, NodeId from, NodeId to, Term term) {
  Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = term;
  return m;
}

Entry Ent(Index index, Term term, std::string data = "x") {
  Entry e;
  e.index = index;
  e.term = term;
  e.data = std::move(data);
  return e;
}

// Delivers the queue, counting refusals instead of failing on them.
int DeliverCountingRefusals(TestCluster& c) {
  int refused = 0;
  for (int round = 0; round < 100; ++round) {
    c.ProcessAll();
    std::vector<Message> q;
    q.swap(c.queue());
    if (q.empty()) break;
    for (const Message& m : q) refused += c.node(m.to).Step(m).ok() ? 0 : 1;
  }
  return refused;
}

// Leader 1 of term t with `n` committed proposals on every node.
TestCluster Replicated(int n) {
  TestCluster c(3);
  c.Elect(1);
  for (int i = 0; i < n; ++i) {
    std::string data = "p";  // appended, not `"p" + ...`: GCC 12 -O3 warns (-Wrestrict)
    data.append(std::to_string(i));
    REQUIRE(c.node(1).Propose(data).ok());
  }
  c.Stabilize();
  return c;
}

}  // namespace

// F-1 a: kHeartbeat{term=2^64-1} made every node adopt the last term; term_ + 1 then
// wrapped to 0 and no election could ever succeed again.
TEST_CASE("F-1 a: a heartbeat with term 2^64-1 is refused and the cluster keeps electing",
          "[validate]") {
  TestCluster c = Replicated(1);
  const Term t = c.node(1).term();
  Message m = Msg(MessageType::kHeartbeat, 2, 3, std::numeric_limits<Term>::max());
  RequireRefused(c, m);
  m.term = kTermMax + 1;
  RequireRefused(c, m);
  c.Stabilize();
  REQUIRE(c.node(3).term() == t);
  REQUIRE(c.node(1).TransferLeadership(2).ok());  // a later election still works
  c.Stabilize();
  REQUIRE(c.node(2).role() == Role::kLeader);
  REQUIRE(c.node(2).term() == t + 1);
  REQUIRE(c.node(2).Propose("after").ok());
  c.Stabilize();
  REQUIRE(c.node(3).GetStatus().hard_state.commit == c.node(2).GetStatus().last_index);
}

// F-1 a within the ceiling: kHeartbeat{term=kTermMax} would leave nobody a term to
// campaign in. It moves the receiver only kTermJumpMax up, and the cluster elects above.
TEST_CASE("F-1 a: a term far ahead moves the receiver by kTermJumpMax only", "[validate]") {
  TestCluster c = Replicated(1);
  const Term t = c.node(1).term();
  Message m = Msg(MessageType::kHeartbeat, 2, 3, kTermMax);
  Status s = c.node(3).Step(m);
  REQUIRE(s.code() == ErrorCode::kInvalidArgument);
  REQUIRE(c.node(3).term() == t + kTermJumpMax);
  REQUIRE(c.node(3).leader() == kNoNode);
  // The others follow within a few messages (each at most kTermJumpMax up), and a
  // leader is elected above t + kTermJumpMax.
  auto settled = [&] {
    NodeId lead = c.node(1).leader();
    for (NodeId id : c.ids())
      if (c.node(id).leader() != lead || c.node(id).term() <= t + kTermJumpMax) return false;
    return lead != kNoNode;
  };
  for (int i = 0; i < 500 && !settled(); ++i) {
    for (NodeId id : c.ids()) c.Tick(id);
    DeliverCountingRefusals(c);
  }
  REQUIRE(settled());
  NodeId lead = c.node(1).leader();
  REQUIRE(c.node(lead).Propose("after").ok());
  REQUIRE(DeliverCountingRefusals(c) == 0);
  for (NodeId id : c.ids())
    REQUIRE(c.node(id).GetStatus().hard_state.commit == c.node(lead).GetStatus().last_index);
}

TEST_CASE("F-1 a: a node at kTermMax does not campaign; a stored term above it is corruption",
          "[validate]") {
  MemoryStorage st;
  REQUIRE(st.Bootstrap({1}).ok());
  st.SetHardState(HardState{kTermMax, kNoNode, 1});
  Config cfg;
  cfg.id = 1;
  auto rn = RawNode::Create(cfg, &st);
  REQUIRE(rn.ok());
  (*rn)->Campaign();
  REQUIRE((*rn)->term() == kTermMax);
  REQUIRE((*rn)->role() == Role::kFollower);
  st.SetHardState(HardState{kTermMax + 1, kNoNode, 1});
  REQUIRE(RawNode::Create(cfg, &st).status().code() == ErrorCode::kCorruption);
}

// F-1 c: entries not contiguous from index + 1 hit RAFT_ASSERT(conflict > committed_),
// iterated past the end of the vector, or before its beginning.
TEST_CASE("F-1 c: entries not contiguous from index + 1 are refused", "[validate]") {
  TestCluster c = Replicated(3);
  const Term t = c.node(1).term();
  const Index commit = c.node(3).GetStatus().hard_state.commit;
  const Index last = c.node(3).GetStatus().last_index;
  REQUIRE(commit == last);
  Message m = Msg(MessageType::kAppend, 1, 3, t);
  m.index = last;
  m.log_term = t;
  m.commit = commit;

  SECTION("an entry at or below commit with another term (the assert)") {
    m.entries = {Ent(commit - 1, t + 1)};
    RequireRefused(c, m);
  }
  SECTION("an entry beyond index + len (past the end)") {
    m.entries = {Ent(last + 5, t)};
    RequireRefused(c, m);
  }
  SECTION("a gap inside the batch") {
    m.entries = {Ent(last + 1, t), Ent(last + 3, t)};
    RequireRefused(c, m);
  }
  SECTION("an uncommitted suffix, then a conflict before index (before the beginning)") {
    // Leader 1 appends two entries that only 3 receives; they stay uncommitted.
    c.Isolate(2);
    REQUIRE(c.node(1).Propose("u1").ok());
    REQUIRE(c.node(1).Propose("u2").ok());
    c.ProcessAll();
    for (auto& q : c.queue()) {
      if (q.type == MessageType::kAppend && q.to == 3) REQUIRE(c.node(3).Step(q).ok());
    }
    c.queue().clear();
    c.Process(3);
    c.queue().clear();
    const Index p = c.node(3).GetStatus().last_index;
    REQUIRE(p == last + 2);
    m.index = p;
    m.entries = {Ent(last + 1, t, "evil")};
    RequireRefused(c, m);
  }
  SECTION("index + entries overflowing kIndexMax") {
    m.index = kIndexMax;
    m.log_term = t;
    m.entries = {Ent(kIndexMax + 1, t)};
    RequireRefused(c, m);
  }
  SECTION("terms that decrease, or exceed the message term, or precede log_term") {
    m.entries = {Ent(last + 1, t), Ent(last + 2, t - 1)};
    RequireRefused(c, m);
    m.entries = {Ent(last + 1, t + 1)};
    RequireRefused(c, m);
    m.log_term = t;
    m.entries = {Ent(last + 1, t - 1)};
    RequireRefused(c, m);
  }
  SECTION("an entry conflicting with a committed one, in a stale append") {
    m.index = commit - 2;
    m.log_term = t;
    m.entries = {Ent(commit - 1, t), Ent(commit, t)};
    m.term = t;
    REQUIRE(c.node(3).Step(m).ok());  // the honest stale append: ignored
    m.entries[1].data = "same term, other data: undetectable, and skipped";
    REQUIRE(c.node(3).Step(m).ok());
    m.term = t + 1;
    m.entries = {Ent(commit - 1, t), Ent(commit, t + 1)};
    RequireRefused(c, m);
  }
  // Whatever was refused, the cluster goes on.
  c.Heal();
  c.queue().clear();
  c.Stabilize();
  REQUIRE(c.node(1).Propose("after").ok());
  c.Stabilize();
  REQUIRE(c.node(3).GetStatus().hard_state.commit == c.node(1).GetStatus().last_index);
}

// F-1 e (first half): a forged kAppendResponse made the leader count a follower that
// never had the entries, and commit (and acknowledge) a write only it held.
TEST_CASE("F-1 e: an ack beyond the leader's log is refused; the leader does not commit",
          "[validate]") {
  TestCluster c = Replicated(1);
  const Term t = c.node(1).term();
  c.Isolate(2);
  c.Isolate(3);
  REQUIRE(c.node(1).Propose("only on the leader").ok());
  c.Process(1);
  c.queue().clear();
  const Index last = c.node(1).GetStatus().last_index;
  const Index commit = c.node(1).GetStatus().hard_state.commit;
  REQUIRE(commit < last);
  Message ack = Msg(MessageType::kAppendResponse, 2, 1, t);
  ack.index = last + 1000;
  RequireRefused(c, ack);
  c.Process(1);
  REQUIRE(c.node(1).GetStatus().hard_state.commit == commit);
}

// F-1 e (second half): a heartbeat's commit made a follower apply entries the cluster
// never committed. In a term new to the follower an honest leader's heartbeat commits 0
// (its match for us is 0): here 3 holds an uncommitted entry of term t.
TEST_CASE("F-1 e: a heartbeat committing more than the follower acknowledged is refused",
          "[validate]") {
  TestCluster c = Replicated(1);
  const Term t = c.node(1).term();
  c.Isolate(2);
  REQUIRE(c.node(1).Propose("uncommitted").ok());
  c.ProcessAll();
  for (auto& q : c.queue()) {
    if (q.type == MessageType::kAppend && q.to == 3) REQUIRE(c.node(3).Step(q).ok());
  }
  c.queue().clear();
  c.Process(3);
  c.queue().clear();  // 3's ack is lost: nothing commits
  const Index last3 = c.node(3).GetStatus().last_index;
  const Index commit3 = c.node(3).GetStatus().hard_state.commit;
  REQUIRE(commit3 < last3);

  SECTION("from a new term") {
    Message hb = Msg(MessageType::kHeartbeat, 2, 3, t + 1);
    hb.commit = last3;
    RequireRefused(c, hb);
    hb.commit = 0;  // the honest form: adopted
    REQUIRE(c.node(3).Step(hb).ok());
    REQUIRE(c.node(3).term() == t + 1);
    REQUIRE(c.node(3).GetStatus().hard_state.commit == commit3);
  }
  SECTION("from the leader of our term, beyond our log") {
    Message hb = Msg(MessageType::kHeartbeat, 1, 3, t);
    hb.commit = last3 + 1;
    RequireRefused(c, hb);
    hb.commit = last3;  // 3 acknowledged it: indistinguishable from the leader's word
    REQUIRE(c.node(3).Step(hb).ok());
  }
}

// F-1 b, the core's side: a kSnapshot not from the leader of our term, or inconsistent,
// replaced the follower's log. (That the runtime holds the snapshot's file before the
// core sees the message is the runtime's check.)
TEST_CASE("F-1 b: a snapshot not from the leader, or inconsistent, is refused", "[validate]") {
  TestCluster c = Replicated(2);
  const Term t = c.node(1).term();
  const Index commit = c.node(3).GetStatus().hard_state.commit;
  Message m = Msg(MessageType::kSnapshot, 2, 3, t);
  m.snapshot.index = commit + 1000000;
  m.snapshot.term = t;
  m.snapshot.conf.voters = {1, 2, 3};

  SECTION("from a node that does not lead our term") { RequireRefused(c, m); }
  SECTION("inconsistent metadata from the leader") {
    m.from = 1;
    SnapshotMeta good = m.snapshot;
    m.snapshot.index = 0;
    m.snapshot.term = 0;
    RequireRefused(c, m);
    m.snapshot = good;
    m.snapshot.term = t + 1;
    RequireRefused(c, m);
    m.snapshot = good;
    m.snapshot.term = 0;
    RequireRefused(c, m);
    m.snapshot = good;
    m.snapshot.conf.voters.clear();
    RequireRefused(c, m);
    m.snapshot = good;
    m.snapshot.conf.learners = {3};
    RequireRefused(c, m);
    m.snapshot = good;
    m.snapshot.index = kIndexMax + 1;
    RequireRefused(c, m);
  }
  SECTION("a snapshot that contradicts our committed entries, in a new term") {
    // Found by fuzz_byzantine: the leader of a new term may send a snapshot, but its log
    // holds our committed entries and its terms never decrease.
    m.term = t + 1;
    const Term at_commit = *c.state(3).storage->TermAt(commit);
    m.snapshot.index = commit;
    m.snapshot.term = at_commit + 1;
    RequireRefused(c, m);
    if (at_commit > 1) {
      m.snapshot.index = commit + 5;
      m.snapshot.term = at_commit - 1;
      RequireRefused(c, m);
    }
  }
  REQUIRE(c.node(3).GetStatus().last_index == commit);
}

TEST_CASE("other fields out of bounds are refused", "[validate]") {
  TestCluster c = Replicated(1);
  const Term t = c.node(1).term();
  SECTION("log_term above term") {
    Message m = Msg(MessageType::kVote, 2, 3, t + 1);
    m.log_term = t + 2;
    RequireRefused(c, m);
  }
  SECTION("indexes above kIndexMax") {
    Message m = Msg(MessageType::kAppendResponse, 3, 1, t);
    m.index = kIndexMax + 1;
    RequireRefused(c, m);
  }
  SECTION("reject_hint above the rejected index") {
    Message m = Msg(MessageType::kAppendResponse, 3, 1, t);
    m.reject = true;
    m.index = 1;
    m.reject_hint = 2;
    RequireRefused(c, m);
  }
  SECTION("entries or a snapshot on a message that carries none") {
    Message m = Msg(MessageType::kHeartbeat, 1, 3, t);
    m.entries = {Ent(5, t)};
    RequireRefused(c, m);
    m.entries.clear();
    m.snapshot.index = 1;
    RequireRefused(c, m);
  }
  SECTION("a leader's message in term 0") {
    TestCluster fresh(3);
    RequireRefused(fresh, Msg(MessageType::kHeartbeat, 1, 2, 0));
  }
  SECTION("a second leader in our term") {
    RequireRefused(c, Msg(MessageType::kHeartbeat, 2, 3, t));
    RequireRefused(c, Msg(MessageType::kAppend, 3, 1, t));  // to the leader itself
  }
  SECTION("a heartbeat response echoing a read_seq never sent") {
    Message m = Msg(MessageType::kHeartbeatResponse, 2, 1, t);
    m.read_seq = 1u << 30;
    RequireRefused(c, m);
  }
  SECTION("a vote granted in a term never asked for") {
    RequireRefused(c, Msg(MessageType::kVoteResponse, 2, 3, t + 1));
  }
  SECTION("a read index answer from a term we never had") {
    Message m = Msg(MessageType::kReadIndexResponse, 1, 3, t + 1);
    m.index = 1;
    RequireRefused(c, m);
  }
  SECTION("an unknown entry type") {
    Message m = Msg(MessageType::kAppend, 1, 3, t);
    m.index = c.node(3).GetStatus().last_index;
    m.log_term = t;
    m.entries = {Ent(m.index + 1, t)};
    m.entries[0].type = static_cast<EntryType>(7);
    RequireRefused(c, m);
  }
}

}  // namespace raft
