// SimNetwork: the full-node simulator's network. It stands in for TCP between the nodes
// of one run, and SimTransport stands in for the Asio Transport (runtime/transport.h)
// behind the runtime::MessageTransport seam (runtime/env.h).
//
// What is real: every frame carries the bytes the Asio transport would put on the wire
// (wire/frame.h around wire/message_codec.h or wire/snapshot_chunk.h payloads), encoded
// with the sender's frame_bytes_max and decoded with the receiver's, so codec limits and
// decode errors are exercised; snapshots stream from SnapshotStore::OpenView in chunks of
// snapshot_chunk_bytes with a window of snapshot_window_chunks unacknowledged chunks, into
// SnapshotStore::Receive's SnapshotReceiver, and the kSnapshot message follows the last
// acknowledged chunk, as PeerConn and InboundConn do.
//
// What is modelled:
//   - Addresses. A transport registers its advertised address (options.self_addr, and
//     listen_addr if different) when it Listens; Stop, destruction and Crash(slot)
//     unregister it. A connection attempt to an unregistered address, or across a
//     partition, is refused: the sender goes into backoff (50 ms doubling to 2 s, reset
//     when the peer connects to us, as PeerConn) and learns it by OnUnreachable, once
//     per failed attempt; messages sent during the backoff are dropped, each reported
//     unreachable (PeerConn's kBackoff).
//   - Connections. One per (sender transport, peer), made on demand, identified by a
//     number never reused (its epoch). Frames on it arrive in order, each after a delay
//     drawn from the Rng; chunk acks travel back on the same connection. A connection
//     ends when it is cut (Cut, a partition, the random cut fault, a peer address
//     change) or either end stops or dies: frames in flight on it are lost, the sender's
//     snapshot stream on it fails (OnSnapshotSent(peer, false)), the sender goes into
//     backoff and, if frames were in flight, reports the peer unreachable; the receiver
//     abandons its partial snapshot receive and, if the connection had delivered a frame
//     (the real handshake), gets OnPeerLost(sender).
//   - Faults (SimNetworkFaults, settable at any time): drop, duplicate, reorder (a frame
//     held back so that later ones overtake it, as across a reconnection) and corrupt
//     (the receiver drops the frame and counts it) apply to raft message frames only; the delay,
//     the extra delay and the random cut apply to every frame. A lost or reordered chunk on real
//     TCP means a broken connection, which the cut fault models; chunks are otherwise reliable.
//   - Hosts (TransportOptions::host): group frames of protocol version 4 (SendGroupFrame;
//     decoded on arrival, the sender of a GroupMessage checked against the connection,
//     then OnGroupMessage, OnHostBeat or OnHostBeatAck), with the message faults. A host
//     and a node never connect (the real handshake refuses: no common version), and a
//     frame of the other kind closes the connection.
//
// Callbacks. Every TransportHandler callback runs on the owning node's io lane through
// SimWorld::Post(slot, incarnation, Lane::kIo, ...), never synchronously inside a
// transport call; a closure finds its transport through the network by a number never
// reused, at run time, so nothing runs for a transport that was stopped or destroyed.
// The network's own state (connections, backoff, snapshot views and receivers) changes
// at the moment of the event (a cut drops the receiver's partial file at once).
//
// Deterministic: every choice comes from the world's Rng, containers are ordered.
// Not thread-safe: everything runs on the simulator's thread. The network should outlive
// its transports (a transport that outlives it is inert) and must outlive the world's
// queued work that runs (closures hold a pointer to it).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/env.h"
#include "runtime/snapshot_store.h"
#include "runtime/transport.h"
#include "sim_world.h"
#include "wire/frame.h"

namespace raft::nodesim {

struct SimNetworkFaults {
  // Every frame's delay, uniform in [delay_min, delay_max].
  std::chrono::microseconds delay_min{100};
  std::chrono::microseconds delay_max{2000};
  // Added to every frame's delay, uniform in [0, extra_delay_max] (a slow link).
  std::chrono::microseconds extra_delay_max{0};
  // Raft message frames only (see the top comment).
  double drop_probability = 0;
  double duplicate_probability = 0;  // the copy arrives later, out of order
  double reorder_probability = 0;    // held back up to reorder_delay_max after the last one
  std::chrono::microseconds reorder_delay_max{5000};
  double corrupt_probability = 0;  // one byte flipped: the receiver's frame check fails
  // Every frame: the connection breaks as this frame is sent (it and those in flight
  // are lost).
  double cut_probability = 0;
};

struct SimNetworkStats {
  std::uint64_t frames_sent = 0;          // put on a connection: handshakes, messages, chunks, acks
  std::uint64_t frames_delivered = 0;     // reached the receiver's transport
  std::uint64_t frames_dropped = 0;       // the drop fault, or lost on a connection that ended
  std::uint64_t frames_duplicated = 0;    // extra copies made by the duplicate fault
  std::uint64_t frames_reordered = 0;     // held back by the reorder fault
  std::uint64_t frames_corrupted = 0;     // damaged by the corrupt fault
  std::uint64_t frames_undecodable = 0;   // delivered but refused: bad frame or payload, forged
  std::uint64_t messages_unsendable = 0;  // the sender could not encode or frame a message
  std::uint64_t connects = 0;             // connections made
  std::uint64_t connects_refused = 0;     // attempts refused (down, unknown, partitioned)
  std::uint64_t connections_cut = 0;      // connections ended by a fault, stop or crash
  std::uint64_t unreachable_reports = 0;  // OnUnreachable callbacks posted
  std::uint64_t snapshot_streams_started = 0;    // kSnapshot sends accepted
  std::uint64_t snapshot_streams_completed = 0;  // OnSnapshotSent(true)
  std::uint64_t snapshot_streams_failed = 0;     // OnSnapshotSent(false)
  // Chunks a stream could not read from its open SnapshotView. The view keeps its file
  // open, so this stays 0 unless something breaks that (the simulator checks it).
  std::uint64_t snapshot_chunks_unreadable = 0;
};

// "sent=… delivered=… …", one line for a run's report.
std::string ToString(const SimNetworkStats& s);

class SimTransport;

class SimNetwork {
 public:
  explicit SimNetwork(SimWorld* world);
  ~SimNetwork();
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // The transport of the node in `slot`, incarnation `incarnation` (its callbacks are
  // posted to that incarnation's io lane). `handler` and `snapshots` are borrowed and
  // must outlive the transport (or its Stop).
  std::unique_ptr<SimTransport> NewTransport(int slot, std::uint64_t incarnation,
                                             const runtime::TransportOptions& options,
                                             runtime::TransportHandler* handler,
                                             runtime::SnapshotStore* snapshots);

  // The process in `slot` died: its transports stop at once (no callback of theirs runs
  // again), their addresses are freed and their connections end (see the top comment).
  // Call it before tearing down the node's file system: open snapshot views and
  // receivers are closed here.
  void Crash(int slot);

  // Ends every connection between slots a and b, both directions.
  void Cut(int a, int b);
  // Slots in the same group reach each other; slots named in no group form one more
  // group together. Connections across groups end at once. Replaces the partition.
  void SetPartition(const std::vector<std::vector<int>>& groups);
  // `slot` alone on one side, every other slot on the other.
  void Isolate(int slot);
  void Heal();
  bool Reachable(int a, int b) const;

  void SetFaults(const SimNetworkFaults& faults) { faults_ = faults; }
  // The raft-message fault probabilities and the extra delay bound, the rest unchanged.
  void SetFaults(double drop, double duplicate, double reorder, int extra_delay_ms) {
    faults_.drop_probability = drop;
    faults_.duplicate_probability = duplicate;
    faults_.reorder_probability = reorder;
    faults_.extra_delay_max = std::chrono::milliseconds(extra_delay_ms);
  }
  const SimNetworkFaults& faults() const { return faults_; }
  const SimNetworkStats& stats() const { return stats_; }
  // Sees every raft message a transport accepts to send (before faults), with the
  // sender's slot: the simulator checks what a node announced against what it recovers.
  void SetSendObserver(std::function<void(int slot, const Message& m)> observer) {
    send_observer_ = std::move(observer);
  }
  SimWorld* world() const { return world_; }

 private:
  friend class SimTransport;
  enum class Dir { kForward, kBack };  // sender -> peer (frames), peer -> sender (acks)

  struct Conn {
    std::uint64_t from = 0;  // transport ids (SimTransport::id_)
    std::uint64_t to = 0;
    int from_slot = -1;
    int to_slot = -1;
    NodeId peer = kNoNode;                // the NodeId the sender dialed
    std::uint64_t in_flight = 0;          // forward frames scheduled and not yet arrived
    std::uint64_t lost = 0;               // frames lost on it (it broke under them)
    bool broken = false;                  // the cut fault hit it; EndConn is on its way
    Clock::time_point last_arrival[2]{};  // per Dir: FIFO delivery times
  };

  // Transport lifecycle.
  std::uint64_t Register(SimTransport* t);
  Status Bind(SimTransport* t);  // the addresses of t, at Listen
  void Unregister(SimTransport* t);
  SimTransport* Live(std::uint64_t transport_id) const;
  // Runs fn(t) on t's io lane, if t is still live then.
  void PostTo(std::uint64_t transport_id, std::function<void(SimTransport*)> fn);

  // A connection from `from` to the transport at `addr` (dialing `peer`); 0 if refused.
  std::uint64_t Connect(SimTransport* from, NodeId peer, const std::string& addr);
  bool ConnAlive(std::uint64_t conn_id) const { return conns_.count(conn_id) > 0; }
  void EndConn(std::uint64_t conn_id);
  // Puts one encoded frame on the connection. `raft_message`: the message faults apply.
  void Transmit(std::uint64_t conn_id, Dir dir, std::string frame, bool raft_message);
  // `damaged`: the corrupt fault hit the frame (its refusal is silent, see HandleForward).
  void Schedule(std::uint64_t conn_id, Dir dir, std::string frame, bool damaged,
                Clock::time_point at);
  void Arrive(std::uint64_t conn_id, Dir dir, std::string frame, bool damaged);
  std::chrono::microseconds Delay();
  int GroupOf(int slot) const;

  SimWorld* world_;
  SimNetworkFaults faults_;
  std::function<void(int, const Message&)> send_observer_;
  SimNetworkStats stats_;
  std::uint64_t next_transport_id_ = 1;
  std::uint64_t next_conn_id_ = 1;
  std::map<std::uint64_t, SimTransport*> transports_;  // live (not stopped) transports
  std::map<std::string, std::uint64_t> addrs_;         // bound address -> transport id
  std::map<std::uint64_t, Conn> conns_;                // live connections
  std::map<int, int> group_;                           // partition; absent: group -1
};

// The simulated MessageTransport of one node incarnation. io lane only (the simulator's
// thread). See SimNetwork for the model.
class SimTransport final : public runtime::MessageTransport {
 public:
  ~SimTransport() override;  // stops (as a process death) unless stopped

  Status Listen() override;
  void SetPeerAddress(NodeId id, const std::string& addr) override;
  void SetPeerName(NodeId, const std::string&) override {}  // the simulator logs ids
  void SetClusterId(const std::string&) override {}         // one cluster per simulation
  bool HasPeer(NodeId id) const override { return peers_.count(id) > 0; }
  std::vector<NodeId> PeerIds() const override;
  void RemovePeer(NodeId id) override;
  void Send(Message m) override;
  // A host's transport (options.host): one group frame of protocol version 4. The
  // message faults apply to it as to a raft message frame.
  void SendGroupFrame(NodeId peer, wire::FrameType type, const std::string& payload) override;
  // A host's group snapshot stream: as a Node's, in GroupSnapshotChunk frames, the
  // kSnapshot message then as a GroupMessage (runtime/env.h).
  void SendGroupSnapshot(std::uint64_t group, Message m, runtime::SnapshotStore* store) override;
  void Stop() override;

  int slot() const { return slot_; }
  std::uint64_t incarnation() const { return incarnation_; }
  const runtime::TransportOptions& options() const { return options_; }

 private:
  friend class SimNetwork;
  struct SnapshotSend {
    Message msg;
    std::uint64_t group = 0;                      // 0: a Node's stream
    std::unique_ptr<runtime::SnapshotView> file;  // open for the whole stream
    std::uint64_t size = 0;                       // of the file
    std::uint64_t sent = 0;                       // bytes put on the connection; <= size
    std::uint64_t acked = 0;                      // the peer's highest acknowledged offset
  };
  struct Peer {
    std::string addr;
    std::uint64_t conn = 0;  // live connection id, or 0
    Clock::time_point backoff_until{};
    int backoff_ms = 50;
    std::optional<SnapshotSend> snap;  // at most one stream per peer, on `conn`
  };
  struct Inbound {  // a connection a peer made to us
    NodeId peer = kNoNode;
    bool handshaken = false;  // a frame arrived: the real handshake has happened
    std::unique_ptr<runtime::SnapshotReceiver> receiver;
    std::uint64_t receiver_group = 0;
  };

  SimTransport(SimNetwork* net, int slot, std::uint64_t incarnation,
               runtime::TransportOptions options, runtime::TransportHandler* handler,
               runtime::SnapshotStore* snapshots);

  // Our live connection to `peer`, dialing if there is none; 0 when refused or in
  // backoff (then the peer is reported unreachable if `report_unreachable`).
  std::uint64_t Connection(NodeId peer, bool report_unreachable);
  void StartSnapshot(const Message& m, std::uint64_t group, runtime::SnapshotStore* store);
  void ReportSent(NodeId peer, std::uint64_t group, bool ok);  // posted to the handler
  void PumpSnapshot(NodeId peer);
  void FinishSnapshot(NodeId peer, bool ok);
  void EnterBackoff(Peer& p);
  void ReportUnreachable(NodeId peer);

  // Called by the network.
  void OutboundEnded(NodeId peer, std::uint64_t conn_id, bool had_traffic);
  void InboundEnded(std::uint64_t conn_id);
  // A frame that fails to decode (or a forged message) is dropped and counted; unless the
  // corrupt fault made it so, the connection then ends, as InboundConn closes it (a
  // snapshot stream on it fails instead of waiting forever for an ack).
  void HandleForward(std::uint64_t conn_id, const std::string& bytes, bool damaged);
  void HandleChunk(std::uint64_t conn_id, Inbound& in, const wire::Frame& f);
  void HandleAck(NodeId peer, std::uint64_t conn_id, const std::string& bytes);
  void PeerIsUp(NodeId peer);
  void Post(std::function<void(SimTransport*)> fn) { net_->PostTo(id_, std::move(fn)); }
  void Log(LogLevel level, std::string_view msg, std::vector<LogField> fields) const;

  SimNetwork* net_;
  std::uint64_t id_ = 0;
  int slot_;
  std::uint64_t incarnation_;
  runtime::TransportOptions options_;
  runtime::TransportHandler* handler_;
  runtime::SnapshotStore* snapshots_;
  bool stopped_ = false;
  std::map<NodeId, Peer> peers_;
  std::map<std::uint64_t, Inbound> inbound_;  // by connection id
};

}  // namespace raft::nodesim
