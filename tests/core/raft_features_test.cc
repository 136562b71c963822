// Thesis features beyond the basic paper: pre-vote, check-quorum, membership,
// leadership transfer, ReadIndex, snapshots, flow control, error values.
#include <catch2/catch.hpp>
#include <optional>

#include "test_cluster.h"

namespace raft {
using test::TestCluster;
using test::TestNode;

namespace {
ConfChange Change(ConfChangeType t, NodeId id) { return ConfChange{t, id, {}}; }
}  // namespace

TEST_CASE("single node: an entry commits only after the leader's own fsync", "[durability]") {
  TestCluster c(1);
  c.Elect(1);
  REQUIRE(c.node(1).role() == Role::kLeader);
  auto pos = c.node(1).Propose("v");
  REQUIRE(pos.ok());
  Ready rd = c.node(1).GetReady();
  REQUIRE(rd.entries.size() == 1);
  // Not yet durable, so not committed and not handed out for apply.
  REQUIRE(rd.committed_entries.empty());
  REQUIRE(c.state(1).storage->Append(rd.entries).ok());
  c.node(1).Advance(rd);
  Ready r2 = c.node(1).GetReady();
  REQUIRE(r2.committed_entries.size() == 1);
  REQUIRE(r2.committed_entries[0].data == "v");
  c.node(1).Advance(r2);
}

TEST_CASE("thesis 9.6 pre-vote: a rejoining isolated node does not bump the term", "[prevote]") {
  TestCluster c(3);
  c.Elect(1);
  Term t = c.node(1).term();
  c.Isolate(3);
  for (int i = 0; i < 10; ++i) {
    c.Tick(3, 25);
    c.Stabilize();
  }
  REQUIRE(c.node(3).term() == t);  // pre-vote never succeeded, term unchanged
  c.Heal();
  c.Tick(1, 1);
  c.Stabilize();
  REQUIRE(c.node(1).role() == Role::kLeader);
  REQUIRE(c.node(1).term() == t);
  REQUIRE(c.node(3).leader() == 1);
}

TEST_CASE("thesis 6.2 check-quorum: a leader cut off from its majority steps down",
          "[checkquorum]") {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(1);
  for (int i = 0; i < 21; ++i) {
    c.Tick(1);
    c.Stabilize();
  }
  REQUIRE(c.node(1).role() == Role::kFollower);
}

TEST_CASE("thesis 4.2.3 a node that hears from a live leader ignores vote requests",
          "[checkquorum]") {
  TestCluster c(3, [](Config& cfg) { cfg.pre_vote = false; });
  c.Elect(1);
  Term t = c.node(1).term();
  // Node 3 campaigns with a higher term although the leader is alive.
  c.Isolate(1);
  c.node(3).Campaign();
  c.Stabilize();
  REQUIRE(c.node(2).term() == t);  // ignored: within the leader's lease
  REQUIRE(c.node(3).role() == Role::kCandidate);
}

TEST_CASE("partial connectivity converges with pre-vote and check-quorum", "[prevote]") {
  TestCluster c(5);
  c.Elect(1);
  // 1,2,3 fully connected; 4 reaches only 2; 5 reaches only 3. Simulate by
  // dropping messages on the cut links with a custom delivery loop.
  auto allowed = [](NodeId a, NodeId b) {
    auto link = [&](NodeId x, NodeId y) { return (a == x && b == y) || (a == y && b == x); };
    if (a == 4 || b == 4) return link(4, 2);
    if (a == 5 || b == 5) return link(5, 3);
    return true;
  };
  Term t = c.node(1).term();
  for (int tick = 0; tick < 300; ++tick) {
    for (NodeId id : c.ids()) c.Tick(id);
    for (int r = 0; r < 5; ++r) {
      c.ProcessAll();
      auto q = std::move(c.queue());
      c.queue().clear();
      for (auto& m : q)
        if (allowed(m.from, m.to)) REQUIRE(c.node(m.to).Step(m).ok());
    }
  }
  REQUIRE(c.node(1).role() == Role::kLeader);
  REQUIRE(c.node(1).term() == t);  // never disrupted
}

TEST_CASE("learners receive the log but are never counted and never campaign", "[learner]") {
  TestCluster c(3);
  c.Elect(1);
  c.AddEmptyNode(4);
  REQUIRE(c.node(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 4)).ok());
  c.Stabilize();
  c.Tick(1, 1);
  c.Stabilize();
  REQUIRE(c.node(4).GetStatus().conf.learners.count(4));
  REQUIRE(c.state(4).applied.size() == c.state(1).applied.size());
  // A learner never campaigns.
  c.Tick(4, 100);
  c.Stabilize();
  REQUIRE(c.node(4).role() == Role::kFollower);
  // Its acknowledgements do not count: with 2 and 3 cut, nothing commits.
  c.Isolate(2);
  c.Isolate(3);
  auto before = c.node(1).GetStatus().hard_state.commit;
  REQUIRE(c.node(1).Propose("x").ok());
  c.Stabilize();
  REQUIRE(c.node(1).GetStatus().hard_state.commit == before);
  c.Heal();
  c.Stabilize();
  // Promotion to voter.
  REQUIRE(c.node(1).ProposeConfChange(Change(ConfChangeType::kAddVoter, 4)).ok());
  c.Stabilize();
  REQUIRE(c.node(1).GetStatus().conf.voters.count(4));
}

TEST_CASE("one membership change at a time", "[confchange]") {
  TestCluster c(3);
  c.Elect(1);
  c.AddEmptyNode(4);
  c.AddEmptyNode(5);
  REQUIRE(c.node(1).ProposeConfChange(Change(ConfChangeType::kAddVoter, 4)).ok());
  auto second = c.node(1).ProposeConfChange(Change(ConfChangeType::kAddVoter, 5));
  REQUIRE(second.status().code() == ErrorCode::kConfChangePending);
  c.Stabilize();
  REQUIRE(c.node(1).ProposeConfChange(Change(ConfChangeType::kAddVoter, 5)).ok());
  c.Stabilize();
  REQUIRE(c.node(1).GetStatus().conf.voters.size() == 5);
  // Invalid changes are refused with a reason.
  REQUIRE(c.node(1).ProposeConfChange(Change(ConfChangeType::kAddVoter, 5)).status().code() ==
          ErrorCode::kInvalidArgument);
}

TEST_CASE("2015 single-server change bug: no change before an entry of the leader's term commits",
          "[confchange]") {
  TestCluster c(4, [](Config& cfg) { cfg.check_quorum = false; });
  c.Elect(1);
  c.Isolate(2);
  c.Isolate(3);
  c.Isolate(4);
  // Re-elect node 2 in a new term; until its no-op commits it must refuse changes.
  c.Heal();
  c.Isolate(1);
  c.node(2).Campaign();
  for (int i = 0; i < 10 && c.node(2).role() != Role::kLeader; ++i) {
    c.ProcessAll();
    c.Deliver();
  }
  REQUIRE(c.node(2).role() == Role::kLeader);
  c.AddEmptyNode(5);
  auto r = c.node(2).ProposeConfChange(Change(ConfChangeType::kAddVoter, 5));
  REQUIRE(r.status().code() == ErrorCode::kConfChangePending);
  c.Stabilize();
  REQUIRE(c.node(2).ProposeConfChange(Change(ConfChangeType::kAddVoter, 5)).ok());
}

TEST_CASE("a removed leader steps down once its removal commits", "[confchange]") {
  TestCluster c(3);
  c.Elect(1);
  REQUIRE(c.node(1).ProposeConfChange(Change(ConfChangeType::kRemoveNode, 1)).ok());
  c.Stabilize();
  REQUIRE(c.node(1).role() == Role::kFollower);
  REQUIRE(c.node(2).GetStatus().conf.voters == std::set<NodeId>{2, 3});
  // The removed node never campaigns; the rest elect a leader.
  c.Tick(1, 100);
  c.Tick(3, 10);
  c.Tick(2, 30);
  c.Stabilize();
  REQUIRE(c.node(1).role() == Role::kFollower);
  REQUIRE((c.node(2).role() == Role::kLeader || c.node(3).role() == Role::kLeader));
}

TEST_CASE("thesis 3.10 leadership transfer hands over and refuses proposals meanwhile",
          "[transfer]") {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  REQUIRE(c.node(1).Propose("a").ok());
  c.Stabilize();
  c.Heal();
  REQUIRE(c.node(1).TransferLeadership(3).ok());
  REQUIRE(c.node(1).Propose("b").status().code() == ErrorCode::kProposalDropped);
  c.Stabilize();
  REQUIRE(c.node(3).role() == Role::kLeader);
  REQUIRE(c.node(1).leader() == 3);
}

TEST_CASE("leadership transfer is aborted after an election timeout", "[transfer]") {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  REQUIRE(c.node(1).TransferLeadership(3).ok());
  c.Stabilize();
  for (int i = 0; i < 10; ++i) {
    c.Tick(1);
    c.Tick(2);
    c.Stabilize();
  }
  REQUIRE(c.node(1).role() == Role::kLeader);
  REQUIRE(c.node(1).Propose("c").ok());
}

TEST_CASE("thesis 6.4 ReadIndex on the leader and from a follower", "[readindex]") {
  TestCluster c(3);
  c.Elect(1);
  REQUIRE(c.node(1).Propose("w").ok());
  c.Stabilize();
  REQUIRE(c.node(1).ReadIndex("r1").ok());
  c.Stabilize();
  REQUIRE(c.state(1).reads.size() == 1);
  REQUIRE(c.state(1).reads[0].context == "r1");
  REQUIRE(c.state(1).reads[0].index == c.node(1).GetStatus().hard_state.commit);
  REQUIRE(c.node(2).ReadIndex("r2").ok());
  c.Stabilize();
  REQUIRE(c.state(2).reads.size() == 1);
  REQUIRE(c.state(2).reads[0].index == c.node(1).GetStatus().hard_state.commit);
}

TEST_CASE("ReadIndex on a leader that lost its majority never answers", "[readindex]") {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(1);
  REQUIRE(c.node(1).ReadIndex("stale?").ok());
  for (int i = 0; i < 30; ++i) {
    c.Tick(1);
    c.Stabilize();
  }
  REQUIRE(c.state(1).reads.empty());
}

TEST_CASE("proposals on a follower fail naming the leader", "[errors]") {
  TestCluster c(3);
  c.Elect(1);
  auto r = c.node(2).Propose("x");
  REQUIRE(r.status().code() == ErrorCode::kNotLeader);
  REQUIRE(r.status().message() == "leader is 1");
}

TEST_CASE("the leader refuses proposals beyond the uncommitted byte limit", "[flow]") {
  TestCluster c(3, [](Config& cfg) { cfg.max_uncommitted_bytes = 1000; });
  c.Elect(1);
  c.Isolate(2);
  c.Isolate(3);
  int accepted = 0;
  for (int i = 0; i < 20; ++i) accepted += c.node(1).Propose(std::string(100, 'x')).ok() ? 1 : 0;
  REQUIRE(accepted == 10);
  REQUIRE(c.node(1).Propose("y").status().code() == ErrorCode::kProposalDropped);
}

TEST_CASE("a lagging follower is caught up by snapshot after compaction", "[snapshot]") {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 20; ++i) REQUIRE(c.node(1).Propose("e").ok());
  c.Stabilize();
  Index applied = c.state(1).applied.back().index;
  for (NodeId id : {NodeId{1}, NodeId{2}}) {
    auto& s = *c.state(id).storage;
    REQUIRE(s.CreateSnapshot(applied, c.node(id).GetStatus().conf).ok());
    REQUIRE(s.Compact(applied).ok());
  }
  c.Heal();
  c.Tick(1, 1);
  bool offered = false;
  for (int round = 0; round < 50; ++round) {
    c.ProcessAll();
    for (auto& m : c.queue())
      if (m.type == MessageType::kSnapshot && m.to == 3) offered = true;
    if (c.Deliver() == 0) break;
  }
  REQUIRE(offered);
  c.node(1).ReportSnapshot(3, true);
  c.Tick(1, 1);
  c.Stabilize();
  REQUIRE(c.state(3).storage->Snapshot()->index == applied);
  REQUIRE(c.node(3).GetStatus().hard_state.commit == c.node(1).GetStatus().hard_state.commit);
  REQUIRE(c.node(1).Propose("after").ok());
  c.Stabilize();
  REQUIRE(c.state(3).applied.back().data == "after");
}

}  // namespace raft

namespace raft {
TEST_CASE("a full in-flight window of lost appends is recovered by heartbeats (sim seed 22)",
          "[flow]") {
  test::TestCluster c(3, [](Config& cfg) { cfg.max_inflight_msgs = 1; });
  c.Elect(1);
  REQUIRE(c.node(1).Propose("lost").ok());
  c.ProcessAll();
  // Drop the append to node 3 only.
  auto q = std::move(c.queue());
  c.queue().clear();
  for (auto& m : q)
    if (m.to != 3) c.queue().push_back(m);
  c.Stabilize();
  REQUIRE(c.state(3).applied.back().data != "lost");
  for (int i = 0; i < 3; ++i) {
    c.Tick(1, 1);
    c.Stabilize();
  }
  REQUIRE(c.state(3).applied.back().data == "lost");
}
}  // namespace raft

namespace raft {
TEST_CASE("ReportLeaderLost: followers elect a new leader within election_ticks of a crash",
          "[election]") {
  TestCluster c(3);
  c.Elect(1);
  const Term before = c.node(1).term();
  const int e = c.state(2).config.election_ticks;
  c.Isolate(1);  // killed: both followers see its connections end
  c.node(2).ReportLeaderLost(1);
  c.node(3).ReportLeaderLost(1);
  int ticks = 0;
  while (c.node(2).role() != Role::kLeader && c.node(3).role() != Role::kLeader && ticks < 3 * e) {
    c.Tick(2);
    c.Tick(3);
    c.Stabilize();
    ++ticks;
  }
  // Without the report the first campaign comes after at least election_ticks ticks.
  REQUIRE(ticks < e);
  REQUIRE(c.node(2).term() > before);
}

TEST_CASE("ReportLeaderLost from one follower does not unseat a live leader", "[election]") {
  TestCluster c(3);
  c.Elect(1);
  const Term before = c.node(1).term();
  const int e = c.state(2).config.election_ticks;
  c.node(3).ReportLeaderLost(1);  // a reset connection; the leader is fine
  for (int i = 0; i < 3 * e; ++i) {
    for (NodeId id : {NodeId{1}, NodeId{2}, NodeId{3}}) c.Tick(id);
    c.Stabilize();
  }
  REQUIRE(c.node(1).role() == Role::kLeader);
  REQUIRE(c.node(1).term() == before);
  REQUIRE(c.node(3).leader() == 1);
}

TEST_CASE("a follower answers heartbeats while its disk is busy; append acks still wait",
          "[durability]") {
  TestCluster c(3);
  c.Elect(1);
  REQUIRE(c.node(1).Propose("x").ok());
  c.Process(1);
  c.Deliver();
  Ready busy = c.node(2).GetReady();  // node 2's disk is writing the entry (a slow fsync)
  REQUIRE(!busy.entries.empty());
  REQUIRE(busy.messages_after_persist.size() == 1);  // the append ack waits for it
  c.queue().clear();
  c.Tick(1);  // the leader's heartbeat round
  c.Process(1);
  c.Deliver();
  auto out = c.node(2).TakeMessages();
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].type == MessageType::kHeartbeatResponse);
  c.node(2).Advance(busy);
}

TEST_CASE("TakeCommitted hands out entries committed during a slow fsync, once", "[durability]") {
  TestCluster c(3);
  c.Elect(1);
  c.Stabilize();
  REQUIRE(c.node(1).Propose("a").ok());
  c.Process(1);  // "a" is durable on the leader
  c.Deliver();
  c.Process(2);  // and on the followers, whose acknowledgements wait in the queue
  c.Process(3);
  REQUIRE(c.node(1).Propose("b").ok());
  Ready busy = c.node(1).GetReady();  // the leader's disk is writing "b" (a slow fsync)
  REQUIRE(busy.entries.size() == 1);
  REQUIRE(busy.entries[0].data == "b");
  const Index b_index = busy.entries[0].index;
  REQUIRE(c.node(1).TakeCommitted().empty());  // "a" is not committed yet
  c.Deliver();                                 // the acknowledgements of "a" arrive
  std::vector<Entry> taken = c.node(1).TakeCommitted();
  REQUIRE(taken.size() == 1);
  REQUIRE(taken[0].data == "a");
  REQUIRE(taken[0].index == b_index - 1);
  REQUIRE(c.node(1).TakeCommitted().empty());  // handed out once
  // Finish the slow Ready by hand: nothing in it is repeated by the next one.
  TestNode& t = c.state(1);
  REQUIRE(t.storage->Append(busy.entries).ok());
  for (auto& m : busy.messages) c.queue().push_back(m);
  for (auto& e : busy.committed_entries) REQUIRE(e.index > taken.back().index);
  c.node(1).Advance(busy);
  REQUIRE(c.node(1).GetStatus().applied == taken.back().index);
  t.applied.push_back(taken[0]);
  c.Stabilize();
  REQUIRE(t.applied.back().data == "b");
  REQUIRE(t.applied[t.applied.size() - 2].data == "a");
  for (std::size_t i = 1; i < t.applied.size(); ++i)
    REQUIRE(t.applied[i].index == t.applied[i - 1].index + 1);
}

TEST_CASE("TakeCommitted never hands out an entry that is not durable here", "[durability]") {
  TestCluster c(3);
  c.Elect(1);
  c.Stabilize();
  c.Isolate(3);
  REQUIRE(c.node(1).Propose("d").ok());
  c.Stabilize();  // "d" commits with nodes 1 and 2
  c.Heal();
  // Rounds of heartbeats until node 3 gets "d" together with a commit index covering it.
  std::optional<Ready> busy;
  TestNode& t = c.state(3);
  for (int round = 0; round < 10 && !busy; ++round) {
    c.Tick(1, c.state(1).config.heartbeat_ticks);
    c.Process(1);
    c.Deliver();
    while (!busy && c.node(3).HasReady()) {
      Ready rd = c.node(3).GetReady();
      if (!rd.entries.empty() && rd.entries.back().data == "d") {
        busy = std::move(rd);
        break;
      }
      for (auto& m : rd.messages) c.queue().push_back(m);
      REQUIRE(t.storage->Append(rd.entries).ok());
      if (rd.hard_state) t.storage->SetHardState(*rd.hard_state);
      for (auto& m : rd.messages_after_persist) c.queue().push_back(m);
      for (auto& e : rd.committed_entries) t.applied.push_back(e);
      c.node(3).Advance(rd);
    }
    if (!busy) {
      c.Deliver();
      c.Process(1);
      c.Deliver();
    }
  }
  REQUIRE(busy);
  REQUIRE(!busy->committed_entries.empty());
  REQUIRE(busy->committed_entries.back().data == "d");  // committed, not yet durable here
  REQUIRE(c.node(3).TakeCommitted().empty());
  REQUIRE(t.storage->Append(busy->entries).ok());
  if (busy->hard_state) t.storage->SetHardState(*busy->hard_state);
  for (auto& e : busy->committed_entries) t.applied.push_back(e);
  c.node(3).Advance(*busy);
  REQUIRE(c.node(3).TakeCommitted().empty());  // the Ready applied them: nothing repeats
}

TEST_CASE("PauseCommitted holds committed entries back; the leader then refuses proposals",
          "[durability][flow]") {
  TestCluster c(3, [](Config& cfg) { cfg.max_uncommitted_bytes = 64; });
  c.Elect(1);
  c.Stabilize();
  TestNode& t = c.state(1);
  const std::size_t applied_before = t.applied.size();
  c.node(1).PauseCommitted(true);
  REQUIRE(c.node(1).Propose(std::string(40, 'a')).ok());
  c.Stabilize();  // replicated and committed everywhere, but not handed out on node 1
  REQUIRE(c.node(1).GetStatus().hard_state.commit == c.node(1).GetStatus().last_index);
  REQUIRE(t.applied.size() == applied_before);
  REQUIRE_FALSE(c.node(1).HasReady());  // committed entries alone make no Ready
  REQUIRE(c.node(1).TakeCommitted().empty());
  // Not handed out: they still count as uncommitted at the leader, which pushes back.
  auto refused = c.node(1).Propose(std::string(40, 'b'));
  REQUIRE_FALSE(refused.ok());
  REQUIRE(refused.status().code() == ErrorCode::kProposalDropped);
  // The other nodes applied it; resuming hands it out on node 1, once, in order.
  REQUIRE(c.state(2).applied.back().data == std::string(40, 'a'));
  c.node(1).PauseCommitted(false);
  REQUIRE(c.node(1).HasReady());
  c.Stabilize();
  REQUIRE(t.applied.size() == applied_before + 1);
  REQUIRE(t.applied.back().data == std::string(40, 'a'));
  REQUIRE(c.node(1).Propose(std::string(40, 'b')).ok());
  c.Stabilize();
  REQUIRE(t.applied.back().data == std::string(40, 'b'));
}

TEST_CASE("a commit-only hard state needs no fsync; a lost commit index comes back from applied",
          "[durability]") {
  TestCluster c(3);
  c.Elect(1);
  // Steps 1-5 of the contract for one Ready, by hand (TestCluster::Process does the same).
  auto handle = [&](NodeId id, const Ready& rd) {
    TestNode& t = c.state(id);
    for (auto& m : rd.messages) c.queue().push_back(m);
    REQUIRE(t.storage->Append(rd.entries).ok());
    if (rd.hard_state) t.storage->SetHardState(*rd.hard_state);
    for (auto& m : rd.messages_after_persist) c.queue().push_back(m);
    for (auto& e : rd.committed_entries) t.applied.push_back(e);
    c.node(id).Advance(rd);
  };
  REQUIRE(c.node(1).Propose("y").ok());
  Ready lead = c.node(1).GetReady();
  REQUIRE(!lead.entries.empty());
  REQUIRE(lead.must_sync);  // entries to persist
  handle(1, lead);
  c.Deliver();
  for (NodeId f : {NodeId{2}, NodeId{3}}) {
    Ready rd = c.node(f).GetReady();
    REQUIRE(!rd.entries.empty());
    REQUIRE(rd.must_sync);
    handle(f, rd);
  }
  c.Deliver();
  // The acknowledgements commit "y": only the commit index changed.
  Ready rd = c.node(1).GetReady();
  REQUIRE(rd.hard_state);
  REQUIRE(rd.committed_entries.size() == 1);
  REQUIRE(rd.committed_entries[0].data == "y");
  REQUIRE_FALSE(rd.must_sync);
  REQUIRE(rd.messages_after_persist.empty());
  handle(1, rd);
  c.Stabilize();

  // Node 2 applied "y", but the commit index it wrote without fsync was lost in a crash.
  TestNode& t = c.state(2);
  REQUIRE(t.applied.back().data == "y");
  Index applied = t.applied.back().index;
  HardState hs = t.storage->InitialHardState();
  hs.commit = 1;
  t.storage->SetHardState(hs);
  std::size_t applied_before = t.applied.size();
  c.Restart(2);
  REQUIRE(c.node(2).GetStatus().hard_state.commit == applied);
  c.Stabilize();
  REQUIRE(t.applied.size() == applied_before);  // nothing handed out twice

  // An applied index beyond the log is refused, not trusted.
  Config bad = t.config;
  bad.applied = t.storage->LastIndex() + 1;
  auto r = RawNode::Create(bad, t.storage.get());
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.status().code() == ErrorCode::kCorruption);
}

}  // namespace raft
