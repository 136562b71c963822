// Transport: Raft messages over TCP with the framing of docs/wire-protocol.md, inside
// TLS when TransportOptions::tls is set (every connection's PeerStream, peer_stream.h).
//
// One outbound connection per peer (dialed on demand, handshake first, reconnect with
// backoff) carries our messages and snapshot chunks to it; the peer's own outbound
// connection carries its messages to us. Inbound connections are accepted, must open
// with a valid handshake (cluster id, target node, and with a cluster secret a mutual
// challenge-response proof of it: docs/wire-protocol.md 4.1, peer_auth.h), and
// are closed on the first malformed, oversized or unexpected frame: bad input never
// reaches the core and never allocates beyond the frame limit.
//
// Memory: each peer's send queue is bounded in bytes; a message that does not fit is
// dropped and the peer reported unreachable (the core falls back to probing). Snapshots
// stream in chunks with a window of unacknowledged chunks, so memory stays bounded
// whatever the snapshot size.
//
// Thread safety: every method, and every handler callback, runs on the io_context's
// single thread (checked when TransportOptions::io_thread is set: every entry point and
// every Asio completion of the Transport, PeerConn and InboundConn calls CheckThread()).
// Connection objects are shared_ptr-owned because Asio completion handlers must keep
// them alive; nothing else shares them. PeerConn (peer_conn.h) is our dialed connection
// to one peer, InboundConn (inbound_conn.h) one a peer dialed to us.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/thread_checker.h"
#include "raft/logger.h"
#include "raft/message.h"
#include "raft/status.h"
#include "runtime/env.h"
#include "runtime/snapshot_store.h"
#include "wire/group_frames.h"
#include "wire/wire_format.h"

namespace raft::runtime {

class TlsContextHolder;

struct TransportOptions {
  NodeId self = kNoNode;
  std::string self_addr;  // advertised in the handshake
  std::string listen_addr;
  std::string cluster_id;
  std::string cluster_secret;
  std::uint64_t peer_queue_bytes_max = 64ull << 20;
  std::uint32_t frame_bytes_max = 64u << 20;
  std::uint32_t snapshot_chunk_bytes = 256 * 1024;
  std::uint32_t snapshot_window_chunks = 4;  // NodeOptions::snapshot_window_chunks
  // A received snapshot stream longer than this is aborted and its file removed
  // (NodeOptions::max_snapshot_bytes); 0: no limit.
  std::uint64_t snapshot_bytes_max = 0;
  // Connections peers dialed to us, open at once; one over it is closed at accept
  // (security review F-11). A member keeps one; the rest are reconnects in flight.
  std::size_t inbound_conns_max = 256;
  Logger* logger = nullptr;
  // TLS on every connection, with the holder's current context at the time the
  // connection opens (tls_context.h; borrowed, thread-safe); nullptr: plain TCP.
  const TlsContextHolder* tls = nullptr;
  // The io_context's thread, bound while it runs (borrowed); nullptr: unchecked.
  const base::ThreadChecker* io_thread = nullptr;
  // Speak protocol version 4 alone, a host of many groups' (docs/wire-protocol.md 4.4):
  // group frames (SendGroupFrame; handler OnGroupMessage, OnHostBeat, OnHostBeatAck)
  // instead of RaftMessage and snapshot frames. false: versions 2-3 (raft::Node). The
  // two never talk: the handshake refuses with kVersionUnsupported.
  bool host = false;
};

class TransportHandler {
 public:
  virtual ~TransportHandler() = default;
  // A message from an authenticated peer. Not ok: the node refused it (impossible from an
  // honest peer: malformed, wrong sender, rejected by the core's validation); the
  // transport then closes the connection it came on (OnPeerConnClosed).
  virtual Status OnMessage(Message m) = 0;
  virtual void OnUnreachable(NodeId peer) = 0;
  virtual void OnSnapshotSent(NodeId peer, bool ok) = 0;
  // A snapshot stream from `peer` starts (its first chunk). Not ok: it is refused (the
  // chunk's ack aborts the stream; no file is created). The node takes one only from the
  // leader it follows (security review F-1 d).
  virtual Status AcceptSnapshot(NodeId /*peer*/) { return Status::Ok(); }
  // A peer dialed us from `addr` (its advertised address): learn it if unknown.
  virtual void OnPeerAddress(NodeId peer, const std::string& addr) = 0;
  // The connection `peer` dialed to us ended with an error or EOF (the peer's process
  // died, or the connection was reset).
  virtual void OnPeerLost(NodeId /*peer*/) {}
  // Version 4 (TransportOptions::host): a group frame from an authenticated peer,
  // decoded (grammar only; a GroupMessage's `from` and `to` checked against the
  // connection). Not ok: refused, and the connection closes (as OnMessage). A handler
  // that is not a host's never sees them: its transport does not speak version 4.
  virtual Status OnGroupMessage(NodeId peer, wire::GroupMessage gm);
  virtual Status OnHostBeat(NodeId peer, wire::HostBeat hb);
  virtual Status OnHostBeatAck(NodeId peer, wire::HostBeatAck ha);
  // Version 4: a group snapshot stream from `peer` for `group` starts (its first chunk).
  // The store to receive it into (borrowed; it outlives the receive), or why it is
  // refused: the chunk's ack aborts the stream and no file is created. The default
  // refuses.
  virtual Result<SnapshotStore*> AcceptGroupSnapshot(NodeId peer, std::uint64_t group);
  // Version 4: the stream SendGroupSnapshot started ended: ok once the whole snapshot is
  // durable at the peer and the kSnapshot message is on its way.
  virtual void OnGroupSnapshotSent(NodeId /*peer*/, std::uint64_t /*group*/, bool /*ok*/) {}
  // The transport closed a connection `peer` dialed to us, after its handshake, because
  // of bad input on it: a malformed or unexpected frame, a forged sender, a message
  // the node refused. For a counter.
  virtual void OnPeerConnClosed(NodeId /*peer*/) {}
};

class PeerConn;
class InboundConn;
class PeerStream;

class Transport final : public MessageTransport {
 public:
  Transport(asio::io_context& io, TransportOptions options, TransportHandler* handler,
            SnapshotStore* snapshots);
  ~Transport() override;

  // Binds and starts accepting. kIOError naming the address on failure.
  Status Listen() override;
  // The bound port (useful with port 0 in tests).
  std::uint16_t port() const { return port_; }

  void SetPeerAddress(NodeId id, const std::string& addr) override;
  void SetPeerName(NodeId id, const std::string& name) override;
  void SetClusterId(const std::string& cluster_id) override;
  // How log lines name a peer: its member name when known, else its id.
  std::string PeerLabel(NodeId id) const;
  bool HasPeer(NodeId id) const override { return peers_.count(id) > 0; }
  std::vector<NodeId> PeerIds() const override;
  void RemovePeer(NodeId id) override;
  // Sends one message. kSnapshot messages start a snapshot stream to the peer; the
  // message itself follows the last chunk. Never blocks. Versions 2-3 only (not host).
  void Send(Message m) override;
  // TransportOptions::host: queues one group frame (kGroupMessage, kHostBeat,
  // kHostBeatAck) with its encoded payload to `peer`. Never blocks; like Send, a frame
  // that does not fit the peer's queue is dropped and OnUnreachable(peer) called.
  void SendGroupFrame(NodeId peer, wire::FrameType type, const std::string& payload) override;
  void SendGroupSnapshot(std::uint64_t group, Message m, SnapshotStore* store) override;
  // The protocol versions this transport speaks.
  std::uint8_t version_min() const {
    return options_.host ? wire::kProtocolVersionHost : wire::kProtocolVersionMin;
  }
  std::uint8_t version_max() const {
    return options_.host ? wire::kProtocolVersionHost : wire::kProtocolVersionMax;
  }
  void Stop() override;

  // Internal, used by connections.
  const TransportOptions& options() const { return options_; }
  TransportHandler* handler() const { return handler_; }
  SnapshotStore* snapshots() const { return snapshots_; }
  void Log(LogLevel level, std::string_view msg, std::vector<LogField> fields) const;
  // Logs a warning about a connection closed for bad input, at most once per
  // kBadInputLogInterval; the next line counts those not logged meanwhile (a peer that
  // floods bad input cannot flood the log).
  void LogBadInput(std::string_view msg, std::vector<LogField> fields);
  void PeerIsUp(NodeId id);
  // `conn` starts receiving a snapshot of `group` (0: a Node's) from `peer`: a receive of
  // the same group still open on any other connection (a stream its sender gave up with
  // that connection, or one from an earlier leader) is dropped, its partial file removed.
  // At most one snapshot per group in flight on disk (issue 16: the receiver never holds
  // more than the state plus one snapshot).
  void ClaimReceive(NodeId peer, std::uint64_t group, const std::shared_ptr<InboundConn>& conn);
  // A new stream to dial on: TLS with the current context when options().tls is set.
  std::shared_ptr<PeerStream> NewStream();
  bool stopped() const { return stopped_; }
  // Aborts unless called on the io thread (or no io thread is running).
  void CheckThread() const {
    if (options_.io_thread != nullptr) options_.io_thread->Check();
  }

 private:
  void Accept();

  asio::io_context& io_;
  TransportOptions options_;
  TransportHandler* handler_;
  SnapshotStore* snapshots_;
  asio::ip::tcp::acceptor acceptor_;
  // After an accept error (EMFILE, ENFILE, ENOBUFS...), accepting resumes after a pause
  // instead of failing again at once in a busy loop.
  asio::steady_timer accept_backoff_;
  std::uint64_t refused_conns_ = 0;  // refused over inbound_conns_max since accepting last
  static constexpr std::chrono::seconds kBadInputLogInterval{1};
  std::optional<std::chrono::steady_clock::time_point> bad_input_logged_at_;
  std::uint64_t bad_input_unlogged_ = 0;
  std::uint16_t port_ = 0;
  std::map<NodeId, std::shared_ptr<PeerConn>> peers_;
  std::map<NodeId, std::string> names_;  // SetPeerName; for logs
  std::map<InboundConn*, std::weak_ptr<InboundConn>> inbound_;
  std::map<std::uint64_t, std::weak_ptr<InboundConn>> receiving_;  // by group; ClaimReceive
  bool stopped_ = false;

  friend class InboundConn;
};

// "host:port" (or "[v6]:port") -> host and port; kInvalidArgument naming the address.
Status SplitHostPort(const std::string& addr, std::string* host, std::uint16_t* port);
// "host:port" -> endpoint. Hostnames are resolved, blocking: for Listen at startup only.
// Dialing resolves asynchronously (PeerConn::Connect), off the io thread.
Result<asio::ip::tcp::endpoint> ParseEndpoint(const std::string& addr);

}  // namespace raft::runtime
