// raft::Node end to end: several nodes in one process over loopback TCP, with real
// files in a temporary directory.
#include "raft/node.h"

#include <unistd.h>

#include <asio.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "mem_kv.h"
#include "raw_peer.h"
#include "runtime/snapshot_store.h"
#include "runtime_test_util.h"

namespace raft::test {
namespace {
using namespace std::chrono_literals;

// "k<i>". Built by appending: GCC 12 at -O3 reports a false -Wrestrict inside
// `"k" + std::to_string(i)` (GCC bug 105329).
std::string Key(int i) {
  std::string key = "k";
  key += std::to_string(i);
  return key;
}

struct TestNode {
  std::string name;
  std::string addr;
  std::string dir;
  std::unique_ptr<MemKv> sm = std::make_unique<MemKv>();
  std::unique_ptr<Node> node;
};

class Cluster {
 public:
  explicit Cluster(std::uint64_t snapshot_entries = 100000)
      : root_(std::filesystem::temp_directory_path() /
              ("raft-node-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))),
        snapshot_entries_(snapshot_entries) {
    std::filesystem::remove_all(root_);
  }
  ~Cluster() {
    for (auto& [n, t] : nodes_)
      if (t.node) t.node->Stop();
    nodes_.clear();
    std::filesystem::remove_all(root_);
  }

  NodeOptions Options(TestNode& t, bool bootstrap) {
    NodeOptions o;
    o.self.name = t.name;
    o.self.id = NodeIdFromName(t.name);
    o.self.raft_addr = t.addr;
    o.data_dir = t.dir;
    o.bootstrap = bootstrap;
    o.tick_ms = 10;
    o.core.election_ticks = 10;
    o.snapshot_entries = snapshot_entries_;
    o.snapshot_trailing_entries = 5;
    o.snapshot_chunk_bytes = 1024;  // many chunks even for small states
    return o;
  }

  TestNode& Add(const std::string& name, bool bootstrap,
                const std::function<void(NodeOptions&)>& tweak = {}) {
    TestNode& t = nodes_[name];
    t.name = name;
    t.addr = "127.0.0.1:" + std::to_string(FreePort());
    t.dir = (root_ / name).string();
    Start(name, bootstrap, tweak);
    return t;
  }

  // `tweak` changes the options of this start (e.g. force_new_cluster, cluster_id).
  void Start(const std::string& name, bool bootstrap = false,
             const std::function<void(NodeOptions&)>& tweak = {}) {
    TestNode& t = nodes_.at(name);
    t.sm = std::make_unique<MemKv>();
    NodeOptions o = Options(t, bootstrap);
    if (tweak) tweak(o);
    auto n = Node::Start(o, t.sm.get());
    if (!n.ok()) FAIL("Node::Start(" + name + "): " + n.status().ToString());
    t.node = std::move(n).value();
  }
  void Stop(const std::string& name) {
    nodes_.at(name).node->Stop();
    nodes_.at(name).node.reset();
  }

  TestNode& at(const std::string& name) { return nodes_.at(name); }

  // Name of the node all running nodes agree is leader, or "".
  std::string Leader() {
    for (auto& [n, t] : nodes_) {
      if (!t.node) continue;
      auto s = t.node->GetStatus();
      if (s.role == Role::kLeader) return n;
    }
    return "";
  }
  std::string WaitLeader() {
    std::string l;
    REQUIRE(WaitFor([&] { return !(l = Leader()).empty(); }));
    return l;
  }

  // n1 bootstraps; n2 and n3 join as voters.
  void StartThree() {
    Add("n1", true);
    WaitLeader();
    Add("n2", false);
    Add("n3", false);
    Join("n2");
    Join("n3");
  }

  // Adds `name` as a learner through the leader.
  void AddLearner(const std::string& name) {
    MemberInfo mi{NodeIdFromName(name), name, nodes_.at(name).addr, ""};
    for (int attempt = 0; attempt < 50; ++attempt) {
      auto r = at(WaitLeader()).node->AddLearner(mi, 5s).get();
      if (r.ok()) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL("could not add " + name);
  }

  // Adds `name` as a learner through the leader, then promotes it.
  void Join(const std::string& name) {
    TestNode& t = nodes_.at(name);
    MemberInfo mi{NodeIdFromName(name), name, t.addr, ""};
    AddLearner(name);
    REQUIRE(WaitFor(
        [&] { return t.node->GetStatus().applied >= at(Leader()).node->GetStatus().commit; }));
    for (int attempt = 0; attempt < 50; ++attempt) {
      auto r = at(WaitLeader()).node->PromoteLearner(mi.id, 5s).get();
      if (r.ok()) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL("could not promote " + name);
  }

  Result<std::string> Put(const std::string& k, const std::string& v) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string l = Leader();
      if (l.empty()) {
        std::this_thread::sleep_for(20ms);
        continue;
      }
      auto r = at(l).node->Propose(k + "=" + v, 5s).get();
      if (r.ok() || r.status().code() == ErrorCode::kTimeout) return r;
      std::this_thread::sleep_for(20ms);
    }
    return Status(ErrorCode::kTimeout, "no leader accepted the write");
  }

 private:
  static inline int counter_ = 0;
  std::filesystem::path root_;
  std::uint64_t snapshot_entries_;
  std::map<std::string, TestNode> nodes_;
};

}  // namespace

TEST_CASE("runtime: a bootstrapped node elects itself and commits", "[runtime]") {
  Cluster c;
  c.Add("n1", true);
  REQUIRE(c.WaitLeader() == "n1");
  auto r = c.Put("a", "1");
  REQUIRE(r.ok());
  REQUIRE(c.at("n1").sm->Get("a") == "1");
  auto read = c.at("n1").node->ReadBarrier(5s).get();
  REQUIRE(read.ok());
}

TEST_CASE("runtime: three nodes join, replicate, survive a restart, transfer leadership",
          "[runtime]") {
  Cluster c;
  c.StartThree();
  auto st = c.at("n1").node->GetStatus();
  REQUIRE(st.members.size() == 3);
  for (int i = 0; i < 50; ++i) REQUIRE(c.Put(Key(i), std::to_string(i)).ok());
  for (auto n : {"n1", "n2", "n3"}) {
    REQUIRE(WaitFor([&] { return c.at(n).sm->Get("k49") == "49"; }));
  }
  // A follower answers a linearizable read barrier via the leader.
  std::string follower = c.Leader() == "n2" ? "n3" : "n2";
  auto rb = c.at(follower).node->ReadBarrier(5s).get();
  REQUIRE(rb.ok());
  REQUIRE(c.at(follower).sm->Get("k49") == "49");

  // Stop a follower, write more, restart it from its directory: it catches up.
  c.Stop(follower);
  for (int i = 50; i < 80; ++i) REQUIRE(c.Put(Key(i), "x").ok());
  c.Start(follower);
  REQUIRE(WaitFor([&] { return c.at(follower).sm->Get("k79") == "x"; }));
  REQUIRE(c.at(follower).sm->Get("k10") == "10");

  // Leadership transfer to the restarted node.
  std::string leader = c.WaitLeader();
  auto target = NodeIdFromName(follower);
  auto ts = c.at(leader).node->TransferLeadership(target, 5s).get();
  REQUIRE(ts.ok());
  REQUIRE(WaitFor([&] { return c.Leader() == follower; }));
  REQUIRE(c.Put("after", "transfer").ok());
}

TEST_CASE("runtime: a new node is caught up by snapshot after compaction", "[runtime][snapshot]") {
  Cluster c(/*snapshot_entries=*/20);
  c.Add("n1", true);
  c.WaitLeader();
  c.Add("n2", false);
  c.Join("n2");
  for (int i = 0; i < 120; ++i) REQUIRE(c.Put(Key(i), std::string(100, 'v')).ok());
  REQUIRE(WaitFor([&] { return c.at("n1").node->GetMetrics().snapshots_taken >= 1; }));
  c.Add("n3", false);
  c.Join("n3");
  REQUIRE(WaitFor([&] { return c.at("n3").sm->Size() >= 120; }));
  REQUIRE(c.at("n3").sm->restores() >= 1);
  REQUIRE(c.at("n3").node->GetMetrics().snapshots_installed >= 1);
  // And it restarts from its own snapshot + log tail.
  c.Stop("n3");
  c.Start("n3");
  REQUIRE(WaitFor([&] { return c.at("n3").sm->Size() >= 120; }));
  REQUIRE(c.Put("z", "last").ok());
  REQUIRE(WaitFor([&] { return c.at("n3").sm->Get("z") == "last"; }));
}

// Files below a snapshot this node installs (an older snapshot, a receive that never
// completed or was never installed) are removed once the install is durable, as after a
// local snapshot: they would otherwise stay until this node takes a snapshot of its own.
TEST_CASE("runtime: installing a received snapshot removes the snapshot files below it",
          "[runtime][snapshot]") {
  Cluster c(/*snapshot_entries=*/20);
  c.Add("n1", true);
  c.WaitLeader();
  // Writes until n1's latest snapshot is within 8 entries of what it applied: n2, sent
  // that snapshot, then applies too few entries (those and its join's) to take one of its
  // own. (A snapshot still being written when n2 joined left n2 20 entries to apply.)
  bool recent = false;
  for (int i = 0; i < 300 && !recent; ++i) {
    REQUIRE(c.Put(Key(i), std::string(100, 'v')).ok());
    const auto st = c.at("n1").node->GetStatus();
    recent = i >= 59 && st.snapshot_index > 0 && st.applied - st.snapshot_index <= 8;
  }
  REQUIRE(recent);
  c.Add("n2", false);
  c.Stop("n2");
  const std::string snap_dir = c.at("n2").dir + "/snap";
  {
    auto store = runtime::SnapshotStore::Open(snap_dir);
    REQUIRE(store.ok());
    runtime::SnapshotHeader h;
    h.meta = SnapshotMeta{2, 1, ConfState{{NodeIdFromName("n1")}, {}}};
    auto w = (*store)->Create(h);
    REQUIRE(w.ok());
    REQUIRE((*w)->Commit().ok());
  }
  c.Start("n2");
  c.Join("n2");
  REQUIRE(WaitFor([&] { return c.at("n2").node->GetMetrics().snapshots_installed >= 1; }));
  REQUIRE(c.at("n2").node->GetMetrics().snapshots_taken == 0);  // no local snapshot's cleanup
  auto store = runtime::SnapshotStore::Open(snap_dir);
  REQUIRE(store.ok());
  CHECK(WaitFor([&] { return !(*store)->Exists(2, 1); }, 5s));
}

// Safety review 4: complete received snapshot files whose install never happened (the
// sender lost leadership, the final message was lost, ...) sit in snap/ above the node's
// own snapshots. Cleanup after the next local snapshot must not delete the file the log's
// snapshot metadata names (the node would refuse to restart); it drops files below it.
TEST_CASE("runtime: orphan received snapshots above the local one survive cleanup harmlessly",
          "[runtime][snapshot]") {
  Cluster c(/*snapshot_entries=*/20);
  c.Add("n1", true);
  c.WaitLeader();
  c.Stop("n1");
  const std::string snap_dir = c.at("n1").dir + "/snap";
  {
    auto store = runtime::SnapshotStore::Open(snap_dir);
    REQUIRE(store.ok());
    for (Index index : {Index{3}, Index{1000}, Index{1001}}) {
      runtime::SnapshotHeader h;
      h.meta = SnapshotMeta{index, 1, ConfState{{NodeIdFromName("n1")}, {}}};
      auto w = (*store)->Create(h);
      REQUIRE(w.ok());
      REQUIRE((*w)->Commit().ok());
    }
  }
  c.Start("n1");
  for (int i = 0; i < 30; ++i) REQUIRE(c.Put(Key(i), "v").ok());
  REQUIRE(WaitFor([&] { return c.at("n1").node->GetMetrics().snapshots_taken >= 1; }));
  c.Stop("n1");
  c.Start("n1");  // the log's snapshot file is still there
  c.WaitLeader();
  CHECK(c.at("n1").sm->Get("k29") == "v");
  REQUIRE(c.Put("after", "restart").ok());
  c.Stop("n1");
  auto store = runtime::SnapshotStore::Open(snap_dir);
  REQUIRE(store.ok());
  CHECK_FALSE((*store)->Exists(3, 1));  // below the log's snapshot: dropped
}

TEST_CASE("runtime: garbage on the Raft port is refused and the node keeps serving", "[runtime]") {
  Cluster c;
  c.Add("n1", true);
  c.WaitLeader();
  for (const std::string& junk :
       {std::string("GET / HTTP/1.1\r\n\r\n"), std::string(100000, '\xff'),
        // A well-formed magic but a header that fails its checksum.
        std::string("RAFT\x01\x04\x00\x00\xff\xff\xff\xff"
                    "\x00\x00\x00\x00\x00\x00\x00\x00",
                    20),
        // An incomplete header: cut by the handshake deadline.
        std::string("RAFT\x01\x04", 6)}) {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    auto port = static_cast<std::uint16_t>(std::stoi(c.at("n1").addr.substr(10)));
    s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    asio::error_code ec;
    asio::write(s, asio::buffer(junk), ec);
    char buf[16];
    s.read_some(asio::buffer(buf), ec);  // the node closes the connection
    REQUIRE(ec);
  }
  REQUIRE(c.Put("still", "alive").ok());
}

// Issue 14 step 2 (F-1 a): a message the core refuses (a term of 2^64-1) closes the
// connection it came on, is counted, and changes nothing.
TEST_CASE("runtime: a message the core refuses closes its connection", "[runtime]") {
  Cluster c;
  c.Add("n1", true);
  c.WaitLeader();
  REQUIRE(c.Put("before", "1").ok());
  const Term term = c.at("n1").node->GetStatus().term;
  auto port = static_cast<std::uint16_t>(std::stoi(c.at("n1").addr.substr(10)));
  auto peer = testing::RawPeer::Connect("127.0.0.1", port);
  REQUIRE(peer);
  const NodeId self = NodeIdFromName("n1");
  REQUIRE(peer->Handshake(77, self, "raft", "").ok());
  Message m;
  m.type = MessageType::kHeartbeat;
  m.from = 77;
  m.to = self;
  m.term = ~Term{0};
  REQUIRE(peer->SendPayload(wire::Payload(m)));
  CHECK(peer->WaitClosed());
  REQUIRE(WaitFor([&] { return c.at("n1").node->GetMetrics().peer_conns_closed == 1; }));
  CHECK(c.at("n1").node->GetMetrics().messages_refused == 1);
  CHECK(c.at("n1").node->GetStatus().term == term);
  REQUIRE(c.Put("after", "2").ok());

  // F-1 (b): a kSnapshot message with no received file behind it never reaches the core
  // (which would drop the log for it); the node keeps serving and restarts.
  auto peer2 = testing::RawPeer::Connect("127.0.0.1", port);
  REQUIRE(peer2);
  REQUIRE(peer2->Handshake(77, self, "raft", "").ok());
  Message snap;
  snap.type = MessageType::kSnapshot;
  snap.from = 77;
  snap.to = self;
  snap.term = term + 1;  // a new term: the core itself would not refuse it
  snap.snapshot.index = c.at("n1").node->GetStatus().commit + 1000;
  snap.snapshot.term = term + 1;
  snap.snapshot.conf.voters = {self};
  REQUIRE(peer2->SendPayload(wire::Payload(snap)));
  CHECK(peer2->WaitClosed());
  REQUIRE(WaitFor([&] { return c.at("n1").node->GetMetrics().peer_conns_closed == 2; }));
  CHECK(c.at("n1").node->GetMetrics().messages_refused == 2);
  CHECK(c.at("n1").node->GetStatus().snapshot_index < snap.snapshot.index);
  REQUIRE(c.Put("after-snapshot", "3").ok());
  c.Stop("n1");
  c.Start("n1");
  c.WaitLeader();
  REQUIRE(c.Put("after-restart", "4").ok());
}

TEST_CASE("runtime: proposals on a follower fail naming the leader; stop fails pending ones",
          "[runtime]") {
  Cluster c;
  c.Add("n1", true);
  c.WaitLeader();
  c.Add("n2", false);
  c.Join("n2");
  auto r = c.at("n2").node->Propose("x=1", 2s).get();
  REQUIRE(r.status().code() == ErrorCode::kNotLeader);
  REQUIRE(r.status().message().find(std::to_string(NodeIdFromName("n1"))) != std::string::npos);
  c.Stop("n2");  // the leader can no longer commit (2 voters, 1 up)
  auto pending = c.at("n1").node->Propose("y=2", 30s);
  c.Stop("n1");
  auto res = pending.get();
  REQUIRE(res.status().code() == ErrorCode::kShutdown);
}

}  // namespace raft::test

namespace raft::test {

// NodeOptions::force_new_cluster: after losing a majority for good, a survivor starts as
// the only voter with every entry it had; a later start with the flag is a no-op; an
// empty data_dir is refused.
TEST_CASE("runtime: force_new_cluster: a survivor of a lost majority starts alone",
          "[runtime][recovery]") {
  Cluster c;
  c.StartThree();
  for (int i = 0; i < 30; ++i) REQUIRE(c.Put(Key(i), std::to_string(i)).ok());
  REQUIRE(WaitFor([&] { return c.at("n3").sm->Get("k29") == "29"; }));
  for (auto n : {"n1", "n2", "n3"}) c.Stop(n);

  auto force = [](NodeOptions& o) { o.force_new_cluster = true; };
  c.Start("n3", false, force);
  REQUIRE(c.WaitLeader() == "n3");
  auto st = c.at("n3").node->GetStatus();
  REQUIRE(st.members.size() == 1);
  CHECK(st.members[0].info.name == "n3");
  REQUIRE(WaitFor([&] { return c.at("n3").sm->Get("k29") == "29"; }));
  CHECK(c.at("n3").sm->Get("k0") == "0");
  REQUIRE(c.Put("after", "force").ok());
  // Again with the flag: already alone, nothing to remove; the data stays.
  c.Stop("n3");
  c.Start("n3", false, force);
  REQUIRE(c.WaitLeader() == "n3");
  REQUIRE(WaitFor([&] { return c.at("n3").sm->Get("after") == "force"; }));
  CHECK(c.at("n3").node->GetStatus().members.size() == 1);
  // A new member joins the recovered cluster and gets everything.
  c.Add("n4", false);
  c.Join("n4");
  REQUIRE(WaitFor([&] { return c.at("n4").sm->Get("after") == "force"; }));
  CHECK(c.at("n4").sm->Get("k15") == "15");

  // Nothing to start from.
  MemKv sm;
  NodeOptions empty;
  empty.self.name = "n9";
  empty.self.raft_addr = "127.0.0.1:" + std::to_string(FreePort());
  empty.data_dir = (std::filesystem::path(c.at("n3").dir).parent_path() / "n9").string();
  empty.force_new_cluster = true;
  auto refused = Node::Start(empty, &sm);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == ErrorCode::kInvalidArgument);
  CHECK(refused.status().message().find("holds no state") != std::string::npos);
}

// Node::SetClusterId: a node that does not know its cluster's id yet is refused by it
// (it gets no entry) until it takes the cluster's id.
TEST_CASE("runtime: SetClusterId: a node is refused until it takes the cluster's id", "[runtime]") {
  Cluster c;
  c.Add("n1", true, [](NodeOptions& o) { o.cluster_id = "cluster-a"; });
  c.WaitLeader();
  REQUIRE(c.Put("a", "1").ok());
  c.Add("n2", false, [](NodeOptions& o) { o.cluster_id = "not-known-yet"; });
  c.AddLearner("n2");
  std::this_thread::sleep_for(500ms);
  CHECK(c.at("n2").node->GetStatus().applied == 0);
  CHECK(c.at("n2").sm->Get("a").empty());
  c.at("n2").node->SetClusterId("cluster-a");
  REQUIRE(WaitFor([&] { return c.at("n2").sm->Get("a") == "1"; }));
}

// Security review F-11: the transport keeps connections to members and to ids heard from
// lately, no others. An insider that passed the handshake claims id 99 and an address;
// the node dials it to answer, and forgets it after peer_reap_ms of silence. A removed
// member is forgotten the same way.
TEST_CASE("runtime: peers outside the membership are forgotten after peer_reap_ms of silence",
          "[runtime]") {
  Cluster c;
  c.Add("n1", true, [](NodeOptions& o) { o.peer_reap_ms = 1000; });
  c.WaitLeader();
  REQUIRE(c.Put("a", "1").ok());
  const NodeId self = NodeIdFromName("n1");
  const Term term = c.at("n1").node->GetStatus().term;
  REQUIRE(term >= 2);
  const auto port = static_cast<std::uint16_t>(std::stoi(c.at("n1").addr.substr(10)));
  std::uint16_t back_port = 0;
  const int back_fd = testing::RawPeer::Listen(&back_port);
  REQUIRE(back_fd >= 0);
  // A pre-vote of an older term is answered (rejected with our term) whoever sends it.
  auto stale_prevote = [&](const std::string& address) {
    auto peer = testing::RawPeer::Connect("127.0.0.1", port);
    REQUIRE(peer);
    REQUIRE(peer->Handshake(99, self, "raft", "", address).ok());
    Message m;
    m.type = MessageType::kPreVote;
    m.from = 99;
    m.to = self;
    m.term = term - 1;
    REQUIRE(peer->SendPayload(wire::Payload(m)));
    return peer;
  };
  {
    auto peer = stale_prevote("127.0.0.1:" + std::to_string(back_port));
    auto dialed = testing::RawPeer::Accept(back_fd, 3s);
    CHECK(dialed);  // the claimed address was learned and dialed
    // F-1 d: a snapshot stream from anyone but the leader is refused before it reaches
    // the disk (the first chunk's ack aborts it).
    wire::SnapshotChunk chunk;
    chunk.snapshot_index = 1000;
    chunk.snapshot_term = term;
    chunk.data = std::string(512, 's');
    REQUIRE(peer->SendPayload(wire::Payload(chunk)));
    auto f = peer->Read();
    REQUIRE(f);
    REQUIRE(f->type == wire::FrameType::kSnapshotChunkAck);
    auto ack = wire::DecodeSnapshotChunkAck(f->payload);
    REQUIRE(ack.ok());
    CHECK(ack->abort);
    for (const auto& e : std::filesystem::directory_iterator(c.at("n1").dir + "/snap"))
      CHECK(e.path().string().find(".recv.tmp") == std::string::npos);
  }
  REQUIRE(WaitFor([&] { return c.at("n1").node->GetMetrics().peers_reaped == 1; }, 5s));
  {
    // Forgotten: the same question without an address goes unanswered.
    auto peer = stale_prevote("");
    CHECK_FALSE(testing::RawPeer::Accept(back_fd, 1500ms));
  }
  ::close(back_fd);
  CHECK(c.at("n1").node->GetMetrics().messages_refused == 0);

  // A removed member (stopped) is forgotten too; the members stay.
  c.Add("n2", false);
  c.AddLearner("n2");
  REQUIRE(WaitFor([&] { return c.at("n2").sm->Get("a") == "1"; }));
  REQUIRE(c.at("n1").node->RemoveMember(NodeIdFromName("n2"), 5s).get().ok());
  c.Stop("n2");
  REQUIRE(WaitFor([&] { return c.at("n1").node->GetMetrics().peers_reaped == 2; }, 5s));
  REQUIRE(c.Put("b", "2").ok());
}

}  // namespace raft::test

namespace raft::test {

// The value the backup test writes at Key(i).
std::string BackupValue(int i) { return std::string("v").append(std::to_string(i)); }

// Node::Backup and NodeOptions::restore_from (issue 15): a backup of a three-node
// cluster's state seeds a new one-member cluster that others join; the file is checked
// end to end; a restore refuses a data_dir that holds state.
TEST_CASE("runtime: a backup seeds a new cluster; damaged backups and used data_dirs are refused",
          "[runtime][backup]") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("raft-backup-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string backup = (dir / "backup.snap").string();
  Index backed_up = 0;
  {
    Cluster c;
    c.StartThree();
    for (int i = 0; i < 50; ++i) REQUIRE(c.Put(Key(i), BackupValue(i)).ok());
    // From a follower, after a barrier: it holds every write acknowledged before.
    const std::string follower = c.Leader() == "n2" ? "n3" : "n2";
    REQUIRE(c.at(follower).node->ReadBarrier(5s).get().ok());
    auto info = c.at(follower).node->Backup(backup).get();
    REQUIRE(info.ok());
    backed_up = info->meta.index;
    CHECK(backed_up > 50);  // the writes, after the membership changes
    CHECK(info->meta.conf.voters.size() == 3);
    CHECK(info->members.size() == 3);
    CHECK_FALSE(std::filesystem::exists(backup + ".tmp"));
    auto verified = VerifyBackupFile(backup);
    REQUIRE(verified.ok());
    CHECK(verified->meta == info->meta);
    CHECK(verified->bytes == info->bytes);
    CHECK(verified->bytes == std::filesystem::file_size(backup));
    CHECK(c.at(follower).node->GetStatus().snapshot_index == 0);  // the log's are untouched
  }
  // One flipped byte in the body, or a cut file: refused.
  const std::string damaged = (dir / "damaged.snap").string();
  std::filesystem::copy_file(backup, damaged);
  {
    std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(damaged) / 2));
    f.put('\x5a');
  }
  CHECK(VerifyBackupFile(damaged).status().code() == ErrorCode::kCorruption);
  std::filesystem::resize_file(damaged, std::filesystem::file_size(backup) - 3);
  CHECK_FALSE(VerifyBackupFile(damaged).ok());

  Cluster c;
  auto& m1 = c.Add("m1", false, [&](NodeOptions& o) { o.restore_from = backup; });
  c.WaitLeader();
  CHECK(m1.node->GetStatus().snapshot_index == backed_up);
  for (int i = 0; i < 50; ++i) CHECK(m1.sm->Get(Key(i)) == BackupValue(i));
  REQUIRE(c.Put("after", "restore").ok());
  c.Add("m2", false);
  c.Join("m2");
  REQUIRE(WaitFor([&] { return c.at("m2").sm->Get("k49") == "v49"; }));
  REQUIRE(WaitFor([&] { return c.at("m2").sm->Get("after") == "restore"; }));
  const auto members = m1.node->Members();
  CHECK(members.size() == 2);  // m1 and m2: none of the old cluster's

  // The same option on a data_dir that holds state: refused, nothing changed.
  c.Stop("m1");
  NodeOptions again = c.Options(c.at("m1"), false);
  again.restore_from = backup;
  MemKv sm;
  auto refused = Node::Start(again, &sm);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == ErrorCode::kInvalidArgument);
  c.Start("m1");
  c.WaitLeader();
  REQUIRE(c.Put("still", "one cluster").ok());
  std::filesystem::remove_all(dir);
}

}  // namespace raft::test
