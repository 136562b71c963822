// raft::Node against a scripted peer: one real node (threads, files, TCP) whose only
// peer is a runtime::Transport driven by the test's thread, with no core behind it. The
// test decides every message the peer sends (votes, appends, read answers), so each
// scenario takes the same path on every run; only how long the node takes varies.
// Regression tests for the runtime defects of issue 13 (docs/testing.md).
#include <unistd.h>

#include <asio.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>

#include "mem_kv.h"
#include "raft/disk_storage.h"
#include "raft/node.h"
#include "runtime/snapshot_store.h"
#include "runtime/transport.h"
#include "wire/wire_format.h"

namespace raft::test {
namespace {

using namespace std::chrono_literals;

std::uint16_t FreePort() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

template <typename F>
bool WaitFor(F cond, std::chrono::milliseconds limit = 15s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

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
  void OnMessage(Message m) override { messages.push_back(std::move(m)); }
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
    REQUIRE(b.RunUntil([&] { return (req = b.Take(MessageType::kReadIndex)).has_value(); },
                       [&] { b.Heartbeat(f.a.id, term, 2); }));
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

}  // namespace raft::test
