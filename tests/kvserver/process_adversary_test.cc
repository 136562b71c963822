// A hostile peer on the Raft port of real kvserver processes (issue 14, "Every peer
// message validated"; docs/operations.md "Security"). A 3-node cluster runs with
// -peer-secret-file while a writer thread keeps writing; the test plays a peer that knows
// the secret (a compromised member, the strongest attacker the handshake admits) and one
// that does not, with tests/runtime/raw_peer:
// - after a valid handshake, crafted frames: a heartbeat with term 2^64-1, an append with
//   non-contiguous entries, a snapshot with no file behind it, an append acknowledgement
//   beyond anything the leader sent;
// - a captured handshake replayed on a new connection, a wrong secret, bytes that are not
//   a frame, an oversized frame before the handshake (each closed well before the 5 s
//   handshake deadline).
// Each crafted message is refused and its connection closed (kv_raft_messages_refused_total,
// kv_raft_peer_conns_closed_total); no term moves; the cluster keeps committing; every
// acknowledged write is then on every node, which all restart. A peer with a certificate of
// another CA is process_tls_test's case.
//
//   build/tests/kvserver/process_adversary_test
#include <fmt/format.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "process_harness.h"
#include "raft/node.h"
#include "raw_peer.h"
#include "wire/frame.h"

namespace kvtest {
namespace {

namespace fs = std::filesystem;
using raft::testing::RawPeer;

const std::string kSecret = "adversary-test-peer-secret";
const std::string kCluster = "adversary-test";  // every node's -cluster-id

// Writes keys w<i> through any node until stopped; remembers what was acknowledged.
class Writer {
 public:
  explicit Writer(std::vector<KvClient> clients) : clients_(std::move(clients)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Writer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> acked() {
    std::lock_guard<std::mutex> l(mu_);
    return acked_;
  }

 private:
  void Run() {
    for (int i = 0; !stop_; ++i) {
      const std::string key = fmt::format("w{}", i);
      HttpReply r = clients_[static_cast<std::size_t>(i) % clients_.size()].Put(key, key);
      if (r.status == 200) {
        std::lock_guard<std::mutex> l(mu_);
        acked_.push_back(key);
      } else {
        std::this_thread::sleep_for(50ms);
      }
    }
  }

  std::vector<KvClient> clients_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> acked_;
  std::thread thread_;
};

raft::NodeId Id(std::size_t i) { return raft::NodeIdFromName(fmt::format("node{}", i)); }

double Counter(NodeProcess& n, const std::string& name) {
  return MetricSample(n.Client().Metrics().body, name);
}

// A connection to node `to` that passed the handshake as node `from` with `secret`.
std::unique_ptr<RawPeer> Member(NodeProcess& to, std::size_t to_index, std::size_t from_index) {
  auto peer = RawPeer::Connect("127.0.0.1", to.raft_port());
  REQUIRE(peer);
  raft::Status s = peer->Handshake(Id(from_index), Id(to_index), kCluster, kSecret);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return peer;
}

// Sends `m` on an authenticated connection from node `from` to node `to`, and requires
// that `to` refuses it: the connection closes and both counters move by one.
void RequireRefused(ProcessCluster& cluster, std::size_t to, std::size_t from, raft::Message m,
                    const char* what) {
  INFO(what);
  NodeProcess& n = cluster.node(to);
  const double refused = Counter(n, "kv_raft_messages_refused_total");
  const double closed = Counter(n, "kv_raft_peer_conns_closed_total");
  const std::uint64_t term = JsonU64(n.StatusJson(), "term");
  auto peer = Member(n, to, from);
  m.from = Id(from);
  m.to = Id(to);
  REQUIRE(peer->SendPayload(raft::wire::Payload(m)));
  REQUIRE(peer->WaitClosed(5s));
  REQUIRE(WaitUntil(5s, [&] {
    return Counter(n, "kv_raft_messages_refused_total") >= refused + 1 &&
           Counter(n, "kv_raft_peer_conns_closed_total") >= closed + 1;
  }));
  REQUIRE(n.Alive());
  // An honest election may move the term meanwhile, by one or two, never by a jump.
  const std::uint64_t after = JsonU64(n.StatusJson(), "term");
  REQUIRE(after >= term);
  REQUIRE(after <= term + 3);
}

TEST_CASE("a hostile peer on the Raft port is refused; the cluster serves and loses nothing",
          "[adversary]") {
  ProcessCluster cluster;
  const fs::path secret = cluster.root() / "peer-secret";
  {
    std::ofstream out(secret);
    out << kSecret << "\n";
  }
  fs::permissions(secret, fs::perms::owner_read | fs::perms::owner_write);
  for (int i = 0; i < 3; ++i)
    cluster.AddNode({"-peer-secret-file", secret.string(), "-cluster-id", kCluster});
  cluster.node(0).Start();
  cluster.node(0).WaitServing();
  cluster.WaitLeader();
  for (std::size_t i = 1; i < 3; ++i) {
    cluster.node(i).Start(cluster.node(0).http_addr());
    cluster.node(i).WaitServing();
    cluster.WaitVoters(i + 1);
  }

  Writer writer(
      {cluster.node(0).Client(2s), cluster.node(1).Client(2s), cluster.node(2).Client(2s)});
  REQUIRE(WaitUntil(10s, [&] { return writer.acked().size() >= 20; }));

  const std::size_t leader = cluster.WaitLeader();
  const std::size_t follower = cluster.Follower(leader);
  const std::size_t other = 3 - leader - follower;
  const std::uint64_t term = JsonU64(cluster.node(follower).StatusJson(), "term");

  {  // A heartbeat "from the leader" with the largest term: past kTermMax, refused outright.
    raft::Message m;
    m.type = raft::MessageType::kHeartbeat;
    m.term = ~raft::Term{0};
    RequireRefused(cluster, follower, leader, m, "term 2^64-1");
  }
  {  // An append from the leader, at its term, with entries 2 and 4 after entry 1.
    const std::uint64_t t = JsonU64(cluster.node(follower).StatusJson(), "term");
    raft::Message m;
    m.type = raft::MessageType::kAppend;
    m.term = t;
    m.index = 0;
    m.log_term = 0;
    m.entries.push_back(raft::Entry{t, 2, raft::EntryType::kNormal, "x"});
    m.entries.push_back(raft::Entry{t, 4, raft::EntryType::kNormal, "y"});
    RequireRefused(cluster, follower, leader, m, "non-contiguous entries");
  }
  {  // A snapshot far past the commit index with no file received for it: the node would
     // drop its log for it. Refused before the core.
    const nlohmann::json st = cluster.node(other).StatusJson();
    raft::Message m;
    m.type = raft::MessageType::kSnapshot;
    m.term = JsonU64(st, "term");
    m.snapshot.index = JsonU64(st, "commit_index") + 100000;
    m.snapshot.term = m.term;
    m.snapshot.conf.voters = {Id(0), Id(1), Id(2)};
    RequireRefused(cluster, other, leader, m, "snapshot without a file");
    REQUIRE(JsonU64(cluster.node(other).StatusJson(), "snapshot_index") < m.snapshot.index);
  }
  {  // The leader hears "node <follower> has everything up to last + 100000": an index it
     // never sent. Accepting it would commit what no majority holds.
    const std::size_t l = cluster.WaitLeader();
    const nlohmann::json st = cluster.node(l).StatusJson();
    raft::Message m;
    m.type = raft::MessageType::kAppendResponse;
    m.term = JsonU64(st, "term");
    m.index = JsonU64(st, "last_index") + 100000;
    RequireRefused(cluster, l, cluster.Follower(l), m, "forged append acknowledgement");
    const nlohmann::json after = cluster.node(l).StatusJson();
    REQUIRE(JsonU64(after, "commit_index") <= JsonU64(after, "last_index"));
  }

  NodeProcess& target = cluster.node(follower);
  {  // A captured handshake, replayed: the listener's fresh nonce makes the old proof wrong.
    auto honest = RawPeer::Connect("127.0.0.1", target.raft_port());
    REQUIRE(honest);
    REQUIRE(honest->Handshake(Id(leader), Id(follower), kCluster, kSecret).ok());
    const std::string captured = honest->sent();
    auto replay = RawPeer::Connect("127.0.0.1", target.raft_port());
    REQUIRE(replay);
    (void)replay->Send(captured);
    REQUIRE(replay->WaitClosed(5s));
    // Nothing but the listener's HandshakeAck (with its own nonce) and HandshakeReject.
    CHECK(replay->frames_discarded() <= 2);
  }
  {  // The right protocol with the wrong secret.
    auto peer = RawPeer::Connect("127.0.0.1", target.raft_port());
    REQUIRE(peer);
    // We find the listener's proof wrong first; our own (wrong) proof is refused too.
    REQUIRE_FALSE(peer->Handshake(Id(leader), Id(follower), kCluster, "not-the-secret").ok());
    raft::wire::HandshakeFinish fin;
    fin.proof = std::string(32, 'x');
    REQUIRE(peer->SendPayload(fin));
    REQUIRE(peer->WaitClosed(5s));
  }
  {  // Bytes that are not a frame, and a valid header announcing a 64 KiB Handshake (the
     // first frame on a connection may carry 4 KiB): closed at once, before any payload.
    const std::string big(64 * 1024, '\0');
    auto header = raft::wire::EncodeFrameHeader(raft::wire::FrameType::kHandshake, big, 1u << 20);
    REQUIRE(header.ok());
    for (const std::string& junk : {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                                    std::string(header->data(), header->size())}) {
      auto peer = RawPeer::Connect("127.0.0.1", target.raft_port());
      REQUIRE(peer);
      (void)peer->Send(junk);
      CHECK(peer->WaitClosed(3s));
    }
  }

  // The cluster kept committing while it was attacked, and keeps going.
  const std::size_t before = writer.acked().size();
  REQUIRE(WaitUntil(15s, [&] { return writer.acked().size() >= before + 20; }));
  writer.Stop();
  for (std::size_t i = 0; i < 3; ++i) {
    INFO("node" << i);
    REQUIRE(cluster.node(i).Alive());
    // No crafted term was adopted: a few honest elections at most.
    CHECK(JsonU64(cluster.node(i).StatusJson(), "term") <= term + 3);
  }

  // Every acknowledged write on every node, before and after a restart of all three.
  const std::vector<std::string> acked = writer.acked();
  INFO(acked.size() << " acknowledged writes");
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      for (std::size_t i = 0; i < 3; ++i) cluster.node(i).Terminate();
      for (std::size_t i = 0; i < 3; ++i) cluster.node(i).Start();
      for (std::size_t i = 0; i < 3; ++i) cluster.node(i).WaitServing();
      cluster.WaitLeader(20s);
    }
    for (std::size_t i = 0; i < 3; ++i) {
      cluster.WaitCaughtUp(i);
      KvClient c = cluster.node(i).Client();
      for (const std::string& key : acked) RequireValue(c, key, key, /*stale=*/true);
    }
  }
}

}  // namespace
}  // namespace kvtest
