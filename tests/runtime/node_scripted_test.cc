// raft::Node against a scripted peer: one real node (threads, files, TCP) whose only
// peer is a runtime::Transport driven by the test's thread, with no core behind it. The
// test decides every message the peer sends (votes, appends, read answers), so each
// scenario takes the same path on every run; only how long the node takes varies.
// Regression tests for the runtime defects of issue 13 (docs/testing.md).
#include <unistd.h>

#include <asio.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "mem_kv.h"
#include "raft/disk_storage.h"
#include "raft/node.h"
#include "runtime/snapshot_store.h"
#include "runtime/transport.h"
#include "runtime_test_util.h"
#include "wire/wire_format.h"

namespace raft::test {
namespace {

using namespace std::chrono_literals;

// How a proposal or read ended: "ok", the error code's name, or "callback lost" when the
// runtime destroyed the callback without running it (the future's promise broke).
std::string Outcome(std::future<Result<std::string>>& f, std::chrono::milliseconds limit = 10s) {
  if (f.wait_for(limit) != std::future_status::ready) return "not completed";
  try {
    auto r = f.get();
    return r.ok() ? "ok" : ErrorCodeName(r.status().code());
  } catch (const std::future_error& e) {
    return std::string("callback lost (") + e.what() + ")";
  }
}

struct Inbox final : runtime::TransportHandler {
  std::deque<Message> messages;
  Status OnMessage(Message m) override {
    messages.push_back(std::move(m));
    return Status::Ok();
  }
  void OnUnreachable(NodeId) override {}
  void OnSnapshotSent(NodeId, bool) override {}
  void OnPeerAddress(NodeId, const std::string&) override {}
};

// The peer: its transport runs only inside RunFor/Step, on the test's thread.
class ScriptedPeer {
 public:
  ScriptedPeer(const std::string& name, const std::filesystem::path& dir)
      : id_(NodeIdFromName(name)) {
    auto store = runtime::SnapshotStore::Open((dir / (name + "-snap")).string());
    REQUIRE(store.ok());
    store_ = std::move(store).value();
    runtime::TransportOptions o;
    o.self = id_;
    o.listen_addr = "127.0.0.1:0";
    o.cluster_id = "raft";
    transport_ = std::make_unique<runtime::Transport>(io_, o, &inbox_, store_.get());
    REQUIRE(transport_->Listen().ok());
    info_ = MemberInfo{id_, name, "127.0.0.1:" + std::to_string(transport_->port()), ""};
  }
  ~ScriptedPeer() { transport_->Stop(); }

  const MemberInfo& info() const { return info_; }
  NodeId id() const { return id_; }
  void Connect(const MemberInfo& node) { transport_->SetPeerAddress(node.id, node.raft_addr); }

  void Send(Message m) {
    m.from = id_;
    transport_->Send(std::move(m));
    Step();
  }
  // Runs the transport for a few milliseconds.
  void Step() {
    io_.restart();
    io_.run_for(5ms);
  }
  // Steps until `done()`, calling `each()` every 20 ms (the peer's periodic part: a
  // heartbeat, vote grants). False if `done()` still fails after `limit`.
  template <typename Done, typename Each>
  bool RunUntil(Done done, Each each, std::chrono::milliseconds limit = 15s) {
    auto end = std::chrono::steady_clock::now() + limit;
    auto next = std::chrono::steady_clock::now();
    while (!done()) {
      auto now = std::chrono::steady_clock::now();
      if (now >= end) return false;
      if (now >= next) {
        each();
        next = now + 20ms;
      }
      Step();
    }
    return true;
  }
  // Removes and returns the first received message of `type`.
  std::optional<Message> Take(MessageType type) {
    for (auto it = inbox_.messages.begin(); it != inbox_.messages.end(); ++it) {
      if (it->type != type) continue;
      Message m = std::move(*it);
      inbox_.messages.erase(it);
      return m;
    }
    return std::nullopt;
  }
  void Clear() { inbox_.messages.clear(); }
  // Grants every pre-vote and vote request received so far.
  void GrantVotes() {
    for (MessageType t : {MessageType::kPreVote, MessageType::kVote}) {
      while (auto m = Take(t)) {
        Message r;
        r.type =
            t == MessageType::kVote ? MessageType::kVoteResponse : MessageType::kPreVoteResponse;
        r.to = m->from;
        r.term = m->term;
        Send(r);
      }
    }
  }
  // A heartbeat as the leader of `term`.
  void Heartbeat(NodeId to, Term term, Index commit) {
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = to;
    m.term = term;
    m.commit = commit;
    Send(m);
  }

 private:
  NodeId id_;
  MemberInfo info_;
  // Destroyed in reverse: connections still held by pending handlers (in io_) outlive
  // the transport and use the store and the inbox until io_ is gone.
  std::unique_ptr<runtime::SnapshotStore> store_;
  Inbox inbox_;
  asio::io_context io_;
  std::unique_ptr<runtime::Transport> transport_;
};

// A temporary directory, the node under test ("a") and one scripted peer ("b").
struct Fixture {
  std::filesystem::path root =
      std::filesystem::temp_directory_path() /
      ("raft-scripted-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  MemberInfo a;
  std::optional<ScriptedPeer> b;
  static inline int counter = 0;

  Fixture() {
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root);
    a = MemberInfo{NodeIdFromName("a"), "a", "127.0.0.1:" + std::to_string(FreePort()), ""};
    b.emplace("b", root);
    b->Connect(a);
  }
  ~Fixture() {
    b.reset();
    std::filesystem::remove_all(root);
  }

  std::string DataDir() const { return (root / "a").string(); }

  // a's log as a member of the two-voter cluster {a, b} would hold it: entries 1 and 2
  // add the voters (term 1), committed. a starts from it as a follower that knows b's
  // address.
  void SeedLog() {
    std::filesystem::create_directories(DataDir());
    auto d = DiskStorage::Open(DataDir() + "/log", DiskStorageOptions{});
    INFO(d.status().ToString());
    REQUIRE(d.ok());
    std::vector<Entry> ents;
    for (const MemberInfo* m : {static_cast<const MemberInfo*>(&a), &b->info()}) {
      Index i = ents.size() + 1;
      ents.push_back(Entry{
          1, i, EntryType::kConfChange,
          EncodeConfChange(ConfChange{ConfChangeType::kAddVoter, m->id, EncodeMemberInfo(*m)})});
    }
    REQUIRE((*d)->Append(ents).ok());
    REQUIRE((*d)->SetHardState(HardState{1, kNoNode, 2}).ok());
    REQUIRE((*d)->Sync().ok());
  }

  NodeOptions Options(int election_ticks) const {
    NodeOptions o;
    o.self = a;
    o.data_dir = DataDir();
    o.tick_ms = 10;
    o.core.election_ticks = election_ticks;
    return o;
  }
};

Message ReadIndexResponse(NodeId to, Term term, Index index, const std::string& ctx) {
  Message m;
  m.type = MessageType::kReadIndexResponse;
  m.to = to;
  m.term = term;
  m.index = index;
  m.context = ctx;
  return m;
}

}  // namespace

// safety.md finding 2. A read index is a valid linearization point only for barriers
// issued before the leader fixed it. The leader's answer to a barrier of a previous
// incarnation can arrive after a restart (it waited in a PeerConn queue); it must not
// complete a barrier of the new incarnation, whose counter starts again from 1.
TEST_CASE("runtime: a read answer addressed to an earlier incarnation does not complete a barrier",
          "[runtime][read]") {
  Fixture f;
  f.SeedLog();
  // b leads term 2 and a never campaigns (an election timeout of 10 s or more).
  const NodeOptions opts = f.Options(/*election_ticks=*/1000);
  const Term term = 2;
  ScriptedPeer& b = *f.b;

  // First incarnation: a barrier reaches the leader, which fixes its read index (say 1)
  // but has not answered when a stops.
  std::string old_ctx;
  {
    MemKv sm;
    auto n = Node::Start(opts, &sm);
    REQUIRE(n.ok());
    auto read = (*n)->ReadBarrier(20s);
    std::optional<Message> req;
    // Commit 0: a has acknowledged nothing in term 2, so an honest leader's heartbeat
    // commits nothing (the core refuses more: docs/core.md, "Message validation").
    REQUIRE(b.RunUntil([&] { return (req = b.Take(MessageType::kReadIndex)).has_value(); },
                       [&] { b.Heartbeat(f.a.id, term, 0); }));
    old_ctx = req->context;
    (*n)->Stop();
    CHECK(Outcome(read) == "Shutdown");
  }

  // Second incarnation, same term and leader: a new barrier.
  MemKv sm;
  auto n = Node::Start(opts, &sm);
  REQUIRE(n.ok());
  b.Clear();
  auto read = (*n)->ReadBarrier(20s);
  std::optional<Message> req;
  // Since the restart a does not know what it acknowledged in term 2: up to its last index.
  REQUIRE(b.RunUntil([&] { return (req = b.Take(MessageType::kReadIndex)).has_value(); },
                     [&] { b.Heartbeat(f.a.id, term, 2); }));
  REQUIRE(WaitFor([&] { return (*n)->GetStatus().applied >= 2; }));
  INFO("old context " << old_ctx << ", new context " << req->context);
  CHECK(req->context != old_ctx);

  // The answer to the old request arrives first, then the one to the new request.
  b.Send(ReadIndexResponse(f.a.id, term, 1, old_ctx));
  b.Send(ReadIndexResponse(f.a.id, term, 2, req->context));
  b.RunUntil([&] { return read.wait_for(0s) == std::future_status::ready; }, [] {}, 10s);
  auto r = read.get();
  REQUIRE(r.ok());
  CHECK(*r == "2");  // "1" would be the old answer: a read index fixed before this barrier
}

// safety.md finding 5. Proposals are tracked by log index. An index can be reused: a
// newer leader's entries replace this node's uncommitted ones, and when this node leads
// again its next proposals land on the same indexes. The proposal displaced from the
// map must fail (kProposalDropped) instead of losing its callback and its
// max_pending_requests slot.
TEST_CASE("runtime: a proposal whose index a later term reuses fails instead of vanishing",
          "[runtime]") {
  Fixture f;
  f.SeedLog();
  NodeOptions opts = f.Options(/*election_ticks=*/10);
  opts.core.check_quorum = false;  // a stays leader although b never acknowledges
  opts.max_pending_requests = 4;
  ScriptedPeer& b = *f.b;
  MemKv sm;
  auto started = Node::Start(opts, &sm);
  REQUIRE(started.ok());
  Node& a = **started;
  auto leads = [&](Term t) {
    auto s = a.GetStatus();
    return s.role == Role::kLeader && s.term == t;
  };

  // a wins term 2 with b's vote: its no-op is entry 3, three proposals take 4, 5 and 6.
  REQUIRE(b.RunUntil([&] { return leads(2); }, [&] { b.GrantVotes(); }));
  auto p4 = a.Propose("p4=x", 60s);
  auto p5 = a.Propose("p5=x", 60s);
  auto p6 = a.Propose("p6=x", 60s);
  REQUIRE(WaitFor([&] { return a.GetStatus().last_index == 6; }));

  // b leads term 3 from a log ending at 2: its entry 3 replaces a's entries 3..6.
  Message app;
  app.type = MessageType::kAppend;
  app.to = a.id();
  app.term = 3;
  app.index = 2;
  app.log_term = 1;
  app.commit = 2;
  app.entries.push_back(Entry{3, 3, EntryType::kNormal, ""});
  b.Send(app);
  REQUIRE(b.RunUntil([&] { return a.GetStatus().last_index == 3; }, [] {}));

  // b falls silent; a wins term 4 (no-op at 4), and its next proposal takes index 5.
  REQUIRE(b.RunUntil([&] { return leads(4); }, [&] { b.GrantVotes(); }));
  auto q5 = a.Propose("q5=y", 60s);
  CHECK(Outcome(p5) == "ProposalDropped");

  // b acknowledges through 5: the no-op and q5 commit. q5 gets its result, and p4,
  // whose index the no-op took, fails too.
  REQUIRE(WaitFor([&] { return a.GetStatus().last_index == 5; }));
  Message ack;
  ack.type = MessageType::kAppendResponse;
  ack.to = a.id();
  ack.term = 4;
  ack.index = 5;
  b.Send(ack);
  b.RunUntil([&] { return q5.wait_for(0s) == std::future_status::ready; }, [] {}, 10s);
  CHECK(Outcome(q5) == "ok");
  CHECK(Outcome(p4) == "ProposalDropped");
  CHECK(sm.Get("q5") == "y");

  // Only p6 is pending now: three more proposals fit under max_pending_requests = 4
  // (a lost callback would keep its slot: the third would be refused with kBusy). The
  // first of them takes index 6 from p6.
  std::vector<std::future<Result<std::string>>> more;
  for (int i = 0; i < 3; ++i) more.push_back(a.Propose("r=z", 60s));
  CHECK(Outcome(p6) == "ProposalDropped");
  a.Stop();
  for (auto& r : more) CHECK(Outcome(r) == "Shutdown");
}

// safety.md finding 9a. The core adds an unknown id named by a kAddVoter change as a new
// voter; PromoteLearner must only ever turn a learner into a voter. Here the id of a
// member that does not exist would make the one-member cluster {a, x}: that change can
// never commit, and no other change may start until it does.
TEST_CASE("runtime: PromoteLearner refuses an id that is not a learner", "[runtime]") {
  Fixture f;
  NodeOptions opts = f.Options(/*election_ticks=*/10);
  opts.bootstrap = true;
  MemKv sm;
  auto started = Node::Start(opts, &sm);
  REQUIRE(started.ok());
  Node& a = **started;
  REQUIRE(WaitFor([&] { return a.role() == Role::kLeader; }));
  REQUIRE(a.Propose("k=1", 5s).get().ok());  // the leader has committed in its term

  auto typo = a.PromoteLearner(NodeIdFromName("no-such-node"), 2s).get();
  CHECK(typo.status().code() == ErrorCode::kInvalidArgument);
  CHECK(typo.status().message().find("not a learner") != std::string::npos);
  auto self = a.PromoteLearner(a.id(), 2s).get();
  CHECK(self.status().code() == ErrorCode::kInvalidArgument);
  CHECK(self.status().message().find("already a voter") != std::string::npos);
  CHECK(a.GetStatus().members.size() == 1);
  // The cluster is not wedged: a write and a membership change still commit.
  // (Promoting a real learner: the joins of node_test.cc.)
  CHECK(a.Propose("k=2", 5s).get().ok());
  CHECK(a.AddLearner(MemberInfo{0, "learner", "127.0.0.1:1", ""}, 5s).get().ok());
}

// safety.md finding 9b. The size limits must agree before the node runs: an entry the
// node accepts must fit in a log record and a frame, an append in a frame and under the
// wire's entry count, and the peer queue must hold the largest append. Otherwise the
// failure comes much later (a leader failing on an entry its log refuses).
TEST_CASE("runtime: Start refuses size limits that disagree, and core.quiesce", "[runtime]") {
  Fixture f;
  const std::uint64_t frame = wire::kFramePayloadBytesMaxDefault;
  const std::uint64_t entry_max = frame - wire::kMessageFixedBytes - wire::kEntryFixedBytes;
  struct Case {
    const char* what;
    std::function<void(NodeOptions&)> set;
    const char* names;  // the option the error must name
  };
  const Case cases[] = {
      {"an entry over the log's record limit",
       [](NodeOptions& o) { o.max_entry_bytes = 100ull << 20; }, "max_entry_bytes"},
      {"an entry that fits a record but not a frame",
       [&](NodeOptions& o) { o.max_entry_bytes = entry_max + 1; }, "max_entry_bytes"},
      {"appends over the frame limit", [](NodeOptions& o) { o.core.max_msg_bytes = 64ull << 20; },
       "max_msg_bytes"},
      {"appends over the wire's entry count",
       [](NodeOptions& o) { o.core.max_msg_bytes = 32ull << 20; }, "max_msg_bytes"},
      {"a peer queue smaller than one append",
       [](NodeOptions& o) { o.peer_queue_bytes_max = 1 << 20; }, "peer_queue_bytes_max"},
      {"snapshot chunks of 0 bytes", [](NodeOptions& o) { o.snapshot_chunk_bytes = 0; },
       "snapshot_chunk_bytes"},
      // Not a size, but refused the same way: a quiesced group needs a host's detector.
      {"quiescence", [](NodeOptions& o) { o.core.quiesce = true; }, "core.quiesce"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    NodeOptions o = f.Options(10);
    o.bootstrap = true;
    c.set(o);
    MemKv sm;
    auto n = Node::Start(o, &sm);
    CHECK_FALSE(n.ok());
    if (n.ok()) continue;
    CHECK(n.status().code() == ErrorCode::kInvalidArgument);
    CHECK(n.status().message().find(c.names) != std::string::npos);
  }

  // The largest entry allowed is accepted.
  {
    NodeOptions o = f.Options(10);
    o.bootstrap = true;
    o.max_entry_bytes = entry_max;
    o.peer_queue_bytes_max = 2 * frame;  // the default is 20 bytes short of that append
    MemKv sm;
    auto n = Node::Start(o, &sm);
    REQUIRE(n.ok());
  }
  // An entry over max_entry_bytes is refused at Propose with an error value, a membership
  // change counting its encoded entry, and the node keeps serving.
  NodeOptions o = f.Options(10);
  o.max_entry_bytes = 1024;
  MemKv sm;
  auto started = Node::Start(o, &sm);
  REQUIRE(started.ok());
  Node& a = **started;
  REQUIRE(WaitFor([&] { return a.role() == Role::kLeader; }));
  auto big = a.Propose(std::string(1025, 'x'), 5s);
  CHECK(Outcome(big) == "InvalidArgument");
  auto member = a.AddLearner(MemberInfo{0, "m", "127.0.0.1:1", std::string(1024, 'd')}, 5s);
  CHECK(Outcome(member) == "InvalidArgument");
  auto small = a.Propose("k=v", 5s);
  CHECK(Outcome(small) == "ok");
  CHECK(a.GetStatus().failure.empty());
}

// Security review F-12: a state machine that stalls must not let committed entries pile
// up in memory. The apply queue stops at NodeOptions::max_apply_queue_bytes (plus one
// batch); the leader then refuses proposals once core.max_uncommitted_bytes wait; when
// the state machine resumes everything accepted is applied, in order.
TEST_CASE("runtime: a stalled state machine bounds the apply queue and pushes back on proposals",
          "[runtime]") {
  // MemKv whose Apply waits while the gate is closed.
  class GatedKv final : public StateMachine {
   public:
    void Apply(const std::vector<Entry>& entries, std::vector<std::string>* results) override {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return open_; });
      l.unlock();
      kv_.Apply(entries, results);
    }
    Index AppliedIndex() override { return 0; }
    Result<std::unique_ptr<SnapshotSource>> PrepareSnapshot() override {
      return kv_.PrepareSnapshot();
    }
    Status Restore(SnapshotReader* in, const SnapshotMeta& meta) override {
      return kv_.Restore(in, meta);
    }
    void Open() {
      std::lock_guard l(mu_);
      open_ = true;
      cv_.notify_all();
    }
    MemKv kv_;

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool open_ = false;
  };

  Fixture f;
  NodeOptions o = f.Options(10);
  o.bootstrap = true;
  o.max_apply_queue_bytes = 256 << 10;
  o.core.max_committed_bytes_per_ready = 64 << 10;
  o.core.max_uncommitted_bytes = 1 << 20;
  o.snapshot_entries = 1000000;  // no snapshot while the gate is shut
  GatedKv sm;
  auto started = Node::Start(o, &sm);
  REQUIRE(started.ok());
  Node& a = **started;
  REQUIRE(WaitFor([&] { return a.role() == Role::kLeader; }));
  // Leadership commits an empty entry that the apply thread now waits on: the gate holds
  // everything after it.
  const std::string value(16 << 10, 'v');
  std::vector<std::future<Result<std::string>>> all, accepted;
  std::uint64_t peak = 0;
  for (int i = 0; i < 200; ++i) {
    all.push_back(
        a.Propose(std::string("k").append(std::to_string(i)).append("=").append(value), 60s));
    std::this_thread::sleep_for(1ms);
    peak = std::max(peak, a.GetMetrics().apply_queue_bytes);
  }
  std::this_thread::sleep_for(500ms);
  // Refusals complete at once (on the io thread); accepted proposals wait for the gate.
  std::size_t refused = 0;
  for (auto& fut : all) {
    if (fut.wait_for(0s) == std::future_status::ready) {
      auto r = fut.get();
      INFO(r.status().ToString());
      CHECK(r.status().code() == ErrorCode::kProposalDropped);
      ++refused;
    } else {
      accepted.push_back(std::move(fut));
    }
  }
  // The leader stops admitting once 1 MiB waits uncommitted or not handed out (about 64
  // proposals of 16 KiB beyond what the queue holds).
  CHECK(refused > 0);
  CHECK(accepted.size() < 120);
  peak = std::max(peak, a.GetMetrics().apply_queue_bytes);
  INFO("peak apply queue bytes " << peak << ", accepted " << accepted.size());
  CHECK(peak > 0);
  CHECK(peak <= (256u << 10) + (64u << 10) + value.size() + 64);
  CHECK(a.GetMetrics().apply_pauses >= 1);

  sm.Open();
  for (auto& fut : accepted) CHECK(Outcome(fut, 30s) == "ok");
  CHECK(WaitFor([&] { return a.GetMetrics().apply_queue_bytes == 0; }));
  auto after = a.Propose("after=1", 10s);
  CHECK(Outcome(after) == "ok");
  CHECK(sm.kv_.Get("after") == "1");
  CHECK(sm.kv_.Get("k0") == value);
}

}  // namespace raft::test
