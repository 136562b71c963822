// SimNetwork / SimTransport: real frames and codecs between simulated nodes, faults,
// and snapshots streamed between real SnapshotStores.
#include "sim_network.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/file_system.h"

namespace raft::nodesim {
namespace {

using namespace std::chrono_literals;

// Records every callback, and that it ran from the world's lanes (not inside a call).
struct Recorder final : runtime::TransportHandler {
  bool* in_call = nullptr;  // set while the test is inside a transport call
  int synchronous_callbacks = 0;
  std::vector<Message> messages;
  std::vector<NodeId> unreachable;
  std::vector<std::pair<NodeId, bool>> snapshots_sent;
  std::vector<std::pair<NodeId, std::string>> addresses;
  std::vector<NodeId> lost;

  void Note() { synchronous_callbacks += (in_call != nullptr && *in_call) ? 1 : 0; }
  Status OnMessage(Message m) override {
    Note();
    messages.push_back(std::move(m));
    return Status::Ok();
  }
  void OnUnreachable(NodeId peer) override {
    Note();
    unreachable.push_back(peer);
  }
  void OnSnapshotSent(NodeId peer, bool ok) override {
    Note();
    snapshots_sent.emplace_back(peer, ok);
  }
  void OnPeerAddress(NodeId peer, const std::string& addr) override {
    Note();
    addresses.emplace_back(peer, addr);
  }
  void OnPeerLost(NodeId peer) override {
    Note();
    lost.push_back(peer);
  }
  std::vector<Message> From(NodeId id) const {
    std::vector<Message> out;
    for (const auto& m : messages)
      if (m.from == id) out.push_back(m);
    return out;
  }
};

std::string Addr(NodeId id) { return "n" + std::to_string(id) + ":4000"; }

// N nodes with ids 1..N in slots 0..N-1, all listening and knowing each other.
struct Cluster {
  explicit Cluster(int n, std::uint64_t seed = 1, std::vector<runtime::SnapshotStore*> stores = {},
                   runtime::TransportOptions base = {})
      : world(seed), net(&world), handlers(n) {
    for (int i = 0; i < n; ++i) {
      NodeId id = static_cast<NodeId>(i + 1);
      runtime::TransportOptions o = base;
      o.self = id;
      o.self_addr = o.listen_addr = Addr(id);
      o.cluster_id = "sim";
      handlers[i].in_call = &in_call;
      auto* store = i < static_cast<int>(stores.size()) ? stores[i] : nullptr;
      transports.push_back(net.NewTransport(i, world.Incarnation(i), o, &handlers[i], store));
      REQUIRE(transports.back()->Listen().ok());
    }
    for (auto& t : transports)
      for (int j = 0; j < n; ++j) t->SetPeerAddress(j + 1, Addr(j + 1));
  }
  ~Cluster() {
    for (auto& t : transports)
      if (t) t->Stop();
  }
  void Send(NodeId from, Message m) {
    in_call = true;
    transports[from - 1]->Send(std::move(m));
    in_call = false;
  }
  Recorder& H(NodeId id) { return handlers[id - 1]; }
  // Runs for `d` of virtual time (the clock reaches now + d even if all is idle).
  void Run(std::chrono::milliseconds d = 1000ms) {
    auto until = world.Now() + d;
    world.At(until, [] {});
    world.RunUntil(until);
  }

  bool in_call = false;
  SimWorld world;
  SimNetwork net;
  std::vector<Recorder> handlers;
  std::vector<std::unique_ptr<SimTransport>> transports;
};

Message Msg(NodeId from, NodeId to, int i) {
  Message m;
  m.from = from;
  m.to = to;
  m.term = 3;
  switch (i % 3) {
    case 0:
      m.type = MessageType::kAppend;
      m.index = static_cast<Index>(i);
      m.log_term = 2;
      m.commit = static_cast<Index>(i / 2);
      m.entries.push_back(
          Entry{3, static_cast<Index>(i + 1), EntryType::kNormal, "payload-" + std::to_string(i)});
      break;
    case 1:
      m.type = MessageType::kHeartbeat;
      m.read_seq = static_cast<std::uint64_t>(i);
      break;
    default:
      m.type = MessageType::kReadIndex;
      m.context = "ctx-" + std::to_string(i);
  }
  return m;
}

}  // namespace

TEST_CASE("messages arrive decoded, equal and in order, on the io lane", "[nodesim][network]") {
  Cluster c(3);
  std::vector<Message> from1, from3;
  for (int i = 0; i < 60; ++i) {
    from1.push_back(Msg(1, 2, i));
    from3.push_back(Msg(3, 2, i + 1000));
    c.Send(1, from1.back());
    c.Send(3, from3.back());
  }
  REQUIRE(c.H(2).messages.empty());  // nothing is delivered inside Send
  c.Run();
  REQUIRE(c.H(2).From(1) == from1);
  REQUIRE(c.H(2).From(3) == from3);
  REQUIRE(c.H(2).synchronous_callbacks == 0);
  // The handshake told node 2 who dialed, once per connection.
  auto addrs = c.H(2).addresses;
  std::sort(addrs.begin(), addrs.end());
  REQUIRE(addrs == std::vector<std::pair<NodeId, std::string>>{{1, Addr(1)}, {3, Addr(3)}});
  REQUIRE(c.H(1).unreachable.empty());
  const auto& s = c.net.stats();
  REQUIRE(s.frames_sent == 122);  // 120 messages and 2 handshakes
  REQUIRE(s.frames_delivered == 122);
  REQUIRE(s.frames_dropped == 0);
  REQUIRE(s.connects == 2);
  REQUIRE(ToString(s).rfind("sent=122 delivered=122 dropped=0 ", 0) == 0);
}

TEST_CASE("partitions, unknown peers and crashes drop frames and report unreachable",
          "[nodesim][network]") {
  Cluster c(3);
  c.Send(1, Msg(1, 2, 0));
  c.Run();
  REQUIRE(c.H(2).messages.size() == 1);

  // A partition ends the connection: the receiver hears that its peer is lost, and the
  // next send is refused and reported, once per attempt.
  c.net.Isolate(0);
  c.Run(10ms);
  REQUIRE(c.H(2).lost == std::vector<NodeId>{1});
  // The ended connection put node 1 in backoff: sends are dropped and reported.
  c.Send(1, Msg(1, 2, 1));
  c.Run(100ms);
  // After the backoff a new attempt is refused by the partition, and reported.
  c.Send(1, Msg(1, 2, 2));
  c.Run(10ms);
  REQUIRE(c.H(2).messages.size() == 1);
  REQUIRE(c.H(1).unreachable == std::vector<NodeId>{2, 2});
  REQUIRE(c.net.stats().connects_refused == 1);
  // Nodes on the same side still talk.
  c.Send(3, Msg(3, 2, 3));
  c.Run(10ms);
  REQUIRE(c.H(2).From(3).size() == 1);

  // Healed: after the backoff, a new connection carries traffic again.
  c.net.Heal();
  c.Run(100ms);
  c.Send(1, Msg(1, 2, 4));
  c.Run();
  REQUIRE(c.H(2).From(1).size() == 2);
  REQUIRE(c.H(2).From(1).back() == Msg(1, 2, 4));

  // A peer nobody told us about.
  c.Send(1, Msg(1, 9, 5));
  c.Run(10ms);
  REQUIRE(c.H(1).unreachable.back() == 9);

  // Node 2 crashes: node 1's connection to it ends (node 1 had nothing in flight: no
  // report), node 3's frames in flight are lost and reported, node 2 hears nothing more.
  c.Send(3, Msg(3, 2, 6));
  c.net.Crash(1);
  c.world.Kill(1);
  c.Run(10ms);
  REQUIRE(c.H(2).From(3).size() == 1);
  REQUIRE(c.H(3).unreachable == std::vector<NodeId>{2});
  std::size_t before = c.H(1).unreachable.size();
  c.Run(3000ms);
  c.Send(1, Msg(1, 2, 7));  // refused: nobody listens at n2 any more
  c.Run(10ms);
  REQUIRE(c.H(1).unreachable.size() == before + 1);
  REQUIRE(c.H(2).synchronous_callbacks + c.H(1).synchronous_callbacks == 0);
}

TEST_CASE("faults: drop is silent, duplicate delivers twice, the wire limits apply",
          "[nodesim][network]") {
  SECTION("drop") {
    Cluster c(2);
    c.net.SetFaults(SimNetworkFaults{.drop_probability = 1});
    for (int i = 0; i < 10; ++i) c.Send(1, Msg(1, 2, i));
    c.Run();
    REQUIRE(c.H(2).messages.empty());
    REQUIRE(c.H(1).unreachable.empty());
    REQUIRE(c.net.stats().frames_dropped == 10);
  }
  SECTION("duplicate") {
    Cluster c(2);
    c.net.SetFaults(SimNetworkFaults{.duplicate_probability = 1});
    for (int i = 0; i < 10; ++i) c.Send(1, Msg(1, 2, i));
    c.Run();
    REQUIRE(c.H(2).messages.size() == 20);
    REQUIRE(c.net.stats().frames_duplicated == 10);
  }
  SECTION("corrupt frames are refused by the receiver's frame check") {
    Cluster c(2);
    c.net.SetFaults(SimNetworkFaults{.corrupt_probability = 1});
    for (int i = 0; i < 10; ++i) c.Send(1, Msg(1, 2, i));
    c.Run();
    REQUIRE(c.H(2).messages.empty());
    REQUIRE(c.net.stats().frames_undecodable == 10);
  }
  SECTION("a message with a forged sender is refused, as the real one does") {
    Cluster c(3);
    c.Send(1, Msg(3, 2, 0));  // sent by node 1, claims to be from 3
    c.Run();
    REQUIRE(c.H(2).messages.empty());
    REQUIRE(c.net.stats().frames_undecodable == 1);
    REQUIRE(c.H(2).lost == std::vector<NodeId>{1});  // and the connection is closed
    c.Send(1, Msg(1, 2, 2));
    c.Run();
    REQUIRE(c.H(2).messages == std::vector<Message>{Msg(1, 2, 2)});
  }
  SECTION("a message over the sender's frame limit is not sent, and reported") {
    runtime::TransportOptions o;
    o.frame_bytes_max = 256;
    Cluster c(2, 1, {}, o);
    Message big = Msg(1, 2, 0);
    big.entries[0].data = std::string(1000, 'x');
    c.Send(1, big);
    c.Send(1, Msg(1, 2, 1));  // small: fits
    c.Run();
    REQUIRE(c.net.stats().messages_unsendable == 1);
    REQUIRE(c.H(1).unreachable == std::vector<NodeId>{2});
    REQUIRE(c.H(2).messages == std::vector<Message>{Msg(1, 2, 1)});
  }
}

TEST_CASE("reordering and the same seed replaying exactly", "[nodesim][network]") {
  auto run = [](std::uint64_t seed) {
    Cluster c(3, seed);
    c.net.SetFaults(SimNetworkFaults{.extra_delay_max = 3000us,
                                     .drop_probability = 0.1,
                                     .duplicate_probability = 0.1,
                                     .reorder_probability = 0.3,
                                     .cut_probability = 0.01});
    for (int i = 0; i < 200; ++i) {
      c.Send(1 + i % 3, Msg(1 + i % 3, 1 + (i + 1) % 3, i));
      c.Run(1ms);
    }
    c.Run();
    std::vector<std::vector<Message>> got;
    for (NodeId id = 1; id <= 3; ++id) got.push_back(c.H(id).messages);
    auto s = c.net.stats();
    return std::make_tuple(got, s.frames_sent, s.frames_delivered, s.frames_dropped,
                           s.frames_reordered, s.connections_cut);
  };
  auto a = run(7);
  REQUIRE(a == run(7));
  REQUIRE(a != run(8));
  REQUIRE(std::get<4>(a) > 0);  // some frames were reordered
  // Node 1 sends node 2 only kAppends of increasing index: reordering shows as a drop.
  const auto& at2 = std::get<0>(a)[1];
  bool out_of_order = false;
  for (std::size_t i = 1; i < at2.size(); ++i)
    out_of_order |= at2[i].from == 1 && at2[i - 1].from == 1 && at2[i].index < at2[i - 1].index;
  REQUIRE(out_of_order);
}

namespace {

// Two real snapshot stores in a temporary directory (POSIX files: test only).
struct Stores {
  Stores() {
    root =
        std::filesystem::temp_directory_path() / ("raft-nodesim-net-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root);
    for (int i = 0; i < 2; ++i) {
      auto s = runtime::SnapshotStore::Open((root / ("snap" + std::to_string(i))).string(),
                                            base::PosixFileSystem());
      REQUIRE(s.ok());
      stores.push_back(std::move(s).value());
    }
  }
  ~Stores() { std::filesystem::remove_all(root); }
  // A snapshot of `body_bytes` in store 0; returns its message from 1 to 2.
  Message Make(Index index, Term term, std::size_t body_bytes) {
    runtime::SnapshotHeader h;
    h.meta = SnapshotMeta{index, term, ConfState{{1, 2}, {}}};
    auto w = stores[0]->Create(h);
    REQUIRE(w.ok());
    std::string body(body_bytes, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 131 % 251);
    REQUIRE((*w)->Write(body).ok());
    REQUIRE((*w)->Commit().ok());
    Message m;
    m.type = MessageType::kSnapshot;
    m.from = 1;
    m.to = 2;
    m.term = term;
    m.snapshot = h.meta;
    return m;
  }
  std::string Bytes(int store, Index index, Term term) {
    std::ifstream f(stores[store]->PathOf(index, term), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  std::vector<runtime::SnapshotStore*> Ptrs() { return {stores[0].get(), stores[1].get()}; }

  std::filesystem::path root;
  std::vector<std::unique_ptr<runtime::SnapshotStore>> stores;
};

runtime::TransportOptions SmallChunks() {
  runtime::TransportOptions o;
  o.snapshot_chunk_bytes = 4096;
  o.snapshot_window_chunks = 2;
  return o;
}

}  // namespace

TEST_CASE("a snapshot streams in chunks and arrives byte-identical before its message",
          "[nodesim][network][snapshot]") {
  Stores st;
  Cluster c(2, 3, st.Ptrs(), SmallChunks());
  Message m = st.Make(100, 4, 50000);
  c.Send(1, m);
  c.Send(1, Msg(1, 2, 1));  // other traffic interleaves with the stream
  REQUIRE(c.H(1).snapshots_sent.empty());
  c.Run();
  REQUIRE(c.H(1).snapshots_sent == std::vector<std::pair<NodeId, bool>>{{2, true}});
  REQUIRE(st.stores[1]->Exists(100, 4));
  REQUIRE(st.Bytes(1, 100, 4) == st.Bytes(0, 100, 4));
  REQUIRE(c.H(2).From(1).size() == 2);
  REQUIRE(c.H(2).From(1).back() == m);  // the install message follows the last chunk
  const auto& s = c.net.stats();
  REQUIRE(s.snapshot_streams_started == 1);
  REQUIRE(s.snapshot_streams_completed == 1);
  REQUIRE(s.snapshot_streams_failed == 0);
  REQUIRE(s.frames_sent > 2 * (50000 / 4096));  // chunks and their acks
  REQUIRE(c.H(1).synchronous_callbacks == 0);

  // A snapshot whose file is gone fails at once.
  Message missing = m;
  missing.snapshot.index = 7;
  c.Send(1, missing);
  c.Run();
  REQUIRE(c.H(1).snapshots_sent.back() == std::make_pair(NodeId{2}, false));
}

TEST_CASE("a cut mid-snapshot fails the stream and discards the partial file",
          "[nodesim][network][snapshot]") {
  Stores st;
  Cluster c(2, 5, st.Ptrs(), SmallChunks());
  Message m = st.Make(100, 4, 50000);
  c.Send(1, m);
  // Run until some chunks have been written at the receiver, then cut.
  while (c.net.stats().frames_delivered < 6) REQUIRE(c.world.Step());
  c.net.Cut(0, 1);
  c.Run();
  REQUIRE(c.H(1).snapshots_sent == std::vector<std::pair<NodeId, bool>>{{2, false}});
  REQUIRE(c.H(2).lost == std::vector<NodeId>{1});
  REQUIRE(c.H(2).messages.empty());
  REQUIRE_FALSE(st.stores[1]->Exists(100, 4));
  for (const auto& e : std::filesystem::directory_iterator(st.stores[1]->dir()))
    FAIL("left behind: " << e.path());
  REQUIRE(c.net.stats().snapshot_streams_failed == 1);

  // Offered again after the backoff, it completes.
  c.Run(100ms);
  c.Send(1, m);
  c.Run();
  REQUIRE(c.H(1).snapshots_sent.back() == std::make_pair(NodeId{2}, true));
  REQUIRE(st.Bytes(1, 100, 4) == st.Bytes(0, 100, 4));
}

TEST_CASE("a stream outlives the cleanup of its file; a receiver error aborts it",
          "[nodesim][network][snapshot]") {
  Stores st;
  Cluster c(2, 9, st.Ptrs(), SmallChunks());
  Message m = st.Make(100, 4, 50000);
  c.Send(1, m);
  while (c.net.stats().frames_delivered < 4) REQUIRE(c.world.Step());
  // A later local snapshot makes cleanup remove the one being streamed: the open view
  // keeps its bytes, and chunks are read as they are sent.
  st.Make(200, 5, 10);
  st.stores[0]->Cleanup(200, 5);
  REQUIRE_FALSE(st.stores[0]->Exists(100, 4));
  c.Run();
  REQUIRE(c.H(1).snapshots_sent == std::vector<std::pair<NodeId, bool>>{{2, true}});
  REQUIRE(st.stores[1]->Exists(100, 4));

  // The receiver cannot store it (its directory is gone): it answers with an abort, the
  // sender reports the failure, no install message follows.
  Message m2 = st.Make(300, 6, 50000);
  c.Send(1, m2);
  std::filesystem::remove_all(st.stores[1]->dir());
  c.Run();
  REQUIRE(c.H(1).snapshots_sent.back() == std::make_pair(NodeId{2}, false));
  REQUIRE(c.H(2).From(1).size() == 1);  // only the first install message
  REQUIRE(c.net.stats().snapshot_streams_failed == 1);
  REQUIRE(c.H(2).lost.empty());  // the connection itself is fine
}

TEST_CASE("a chunk over the receiver's frame limit fails the stream instead of stalling it",
          "[nodesim][network][snapshot]") {
  Stores st;
  Cluster c(2, 11, st.Ptrs(), SmallChunks());
  runtime::TransportOptions o = c.transports[1]->options();
  c.transports[1]->Stop();
  o.frame_bytes_max = 1024;  // below the sender's 4096-byte chunks
  Recorder h2;
  auto t2 = c.net.NewTransport(1, c.world.Incarnation(1), o, &h2, st.stores[1].get());
  REQUIRE(t2->Listen().ok());
  c.Run(100ms);
  c.Send(1, st.Make(100, 4, 50000));
  c.Run();
  REQUIRE(c.H(1).snapshots_sent == std::vector<std::pair<NodeId, bool>>{{2, false}});
  REQUIRE(h2.messages.empty());
  REQUIRE(h2.lost == std::vector<NodeId>{1});
  REQUIRE_FALSE(st.stores[1]->Exists(100, 4));
  t2->Stop();
}

TEST_CASE("a stopped transport gets no callback and frees its address", "[nodesim][network]") {
  Cluster c(2);
  c.Send(1, Msg(1, 2, 0));
  c.transports[1]->Stop();
  c.Run();
  REQUIRE(c.H(2).messages.empty());
  REQUIRE(c.H(2).addresses.empty());
  REQUIRE(c.H(1).unreachable == std::vector<NodeId>{2});  // its frame was in flight
  // A new incarnation of node 2 can listen at the same address and be reached.
  runtime::TransportOptions o = c.transports[1]->options();
  Recorder h2;
  auto t2 = c.net.NewTransport(1, c.world.Incarnation(1), o, &h2, nullptr);
  REQUIRE(t2->Listen().ok());
  c.Run(100ms);
  c.Send(1, Msg(1, 2, 1));
  c.Run();
  REQUIRE(h2.messages == std::vector<Message>{Msg(1, 2, 1)});
  // The dialer stops: the listener hears that its peer is lost.
  c.transports[0]->Stop();
  c.Run();
  REQUIRE(h2.lost == std::vector<NodeId>{1});
  t2->Stop();
}

}  // namespace raft::nodesim
