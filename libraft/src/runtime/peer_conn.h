// PeerConn: our dialed connection to one peer (see transport.h for the contract). Raft
// messages and snapshot chunks go out; the handshake answer and chunk acks come in.
//
// States (state_):
//
//                 SendMessage / StartSnapshot: Connect()
//       kIdle ──────────────────────────────────────────> kConnecting
//         ^                                                    │ connected: the Handshake
//         │ backoff timer fires,                               │ frame is written alone
//         │ or PeerIsUp() (the peer dialed us)                 v
//         │                                              kHandshaking
//         │                                                    │ HandshakeAck verified: the
//         │                                                    │ HandshakeFinish goes first
//         │                                                    v in queue_
//     kBackoff <──────────── Fail() <────────────────────── kReady
//                 (connect, write or read error, bad frame,    (also from kConnecting,
//                  refused handshake, address change,           kHandshaking)
//                  no HandshakeAck within kHandshakeTimeout)
//
//   kIdle        no socket; nothing queued.
//   kConnecting  the connect (and with TLS, the TLS handshake) in flight; messages
//                queue up behind the handshake.
//   kHandshaking our Handshake (with our nonce, hello_) is out; waiting for the
//                listener's HandshakeAck, whose proof must verify before anything else
//                is sent (docs/wire-protocol.md 4.1). Messages keep queuing up.
//   kReady       writes drain queue_; reads take acks. The only state that writes
//                queue_.
//   kBackoff     the peer failed moments ago: new messages are dropped and the peer
//                reported unreachable (the core probes again later); a snapshot offer
//                fails at once. Lasts backoff_ms_ (50 ms doubling to 2 s, reset by a
//                successful write or PeerIsUp()).
//   Close() is final from any state (closed_).
//
// Invariants (CheckInvariants() asserts the cheap ones after every entry point and
// completion):
//   - queued_bytes_ == the frame bytes in queue_ plus writing_ (asserted: 0 when both
//     are empty).
//   - write_active_ implies state_ == kReady; writing_ is non-empty only while
//     write_active_ (one gather write at a time).
//   - queue_ and writing_ are empty in kIdle and kBackoff: Fail() drops them and reports
//     the peer unreachable if they held traffic.
//   - The byte cap (peer_queue_bytes_max) bounds raft messages: one that does not fit
//     is dropped (Enqueue with force = false, kBusy) and the peer reported unreachable.
//     Frames whose loss would stall a protocol bypass it (force = true): the handshake,
//     snapshot chunks (bounded by the snapshot window instead: at most
//     snapshot_window_chunks unacknowledged) and the snapshot's install message.
//   - A frame that cannot be built (over frame_bytes_max, or a field over its wire
//     limit) is never queued: a message is dropped and the peer reported unreachable;
//     a snapshot stream fails (OnSnapshotSent(false)); a handshake fails the connection.
//   - Every Asio completion first checks that it still applies: not closed_, its socket
//     generation g == gen_ (Fail() replaces the socket and bumps gen_), and for connect
//     and read the state it was started in. A stale completion touches nothing.
//
// io thread only (checked with Transport::CheckThread). shared_ptr-owned so that Asio
// completions keep it alive.
#pragma once

#include <asio.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/peer_stream.h"
#include "runtime/transport.h"
#include "wire/frame.h"

namespace raft::runtime {

class PeerConn : public std::enable_shared_from_this<PeerConn> {
 public:
  PeerConn(Transport* t, asio::io_context& io, NodeId id, std::string addr);
  void SetAddress(const std::string& addr);
  // The peer just dialed us: it is up, so stop waiting out a reconnect backoff.
  void PeerIsUp();
  void SendMessage(const Message& m);
  // A group frame (protocol version 4; Transport::SendGroupFrame).
  void SendPayload(wire::FrameType type, const std::string& payload);
  // A group's snapshot stream (protocol version 4; Transport::SendGroupSnapshot).
  void SendGroupSnapshot(std::uint64_t group, const Message& m, SnapshotStore* store);
  void Close();

 private:
  // Frames and queues `payload` (or reports the peer unreachable: in backoff, a full
  // queue, or a payload that could not be encoded); `what` names it in the error log.
  void QueueFrame(wire::FrameType type, const Result<std::string>& payload, const char* what);
  enum class State { kIdle, kConnecting, kHandshaking, kReady, kBackoff };
  struct SnapshotSend {
    Message msg;
    std::uint64_t group = 0;         // 0: a Node's stream (versions 2-3)
    SnapshotStore* store = nullptr;  // where the file is: the group's, or the transport's
    // The file, open for the whole stream: a snapshot cleaned up meanwhile still streams.
    std::unique_ptr<SnapshotView> file;
    std::uint64_t size = 0;    // of the file
    std::uint64_t sent = 0;    // bytes queued as chunks; <= size
    std::uint64_t acked = 0;   // the peer's highest acknowledged offset
    bool form_chosen = false;  // layout form or not: decided at the first chunk
  };

  void Connect();  // resolves a name first (asynchronously), then ConnectTo
  void ConnectTo(const asio::ip::tcp::endpoint& ep);
  // Frames `payload` and queues it at the back. kInvalidArgument when it cannot be
  // framed (nothing queued); kBusy when it does not fit under the byte cap and !force.
  Status Enqueue(wire::FrameType type, const std::string& payload, bool force);
  Status EnqueueFrame(std::string frame, bool force);  // an encoded frame
  void StartWrite();
  void StartRead();
  void HandleFrame(wire::Frame f);
  // The listener's answer to our Handshake: verifies it, queues our HandshakeFinish and
  // enters kReady; or fails the connection.
  void HandleAck(const wire::Frame& f);
  void HandleChunkAck(const wire::Frame& f);  // SnapshotChunkAck or GroupSnapshotChunkAck
  void Fail(const std::string& why);
  void StartSnapshot(const Message& m, std::uint64_t group, SnapshotStore* store);
  void PumpSnapshot();
  void FinishSnapshot(bool ok);
  void ReportSent(std::uint64_t group, bool ok);  // the handler's OnSnapshotSent of `group`
  void CheckInvariants() const;

  Transport* t_;
  asio::io_context& io_;
  NodeId id_;
  std::string addr_;
  std::shared_ptr<PeerStream> stream_;  // replaced by Fail(); TLS when the transport's is on
  asio::steady_timer backoff_timer_;
  asio::steady_timer handshake_timer_;  // bounds kHandshaking
  asio::ip::tcp::resolver resolver_;    // names in addr_ are resolved asynchronously
  int backoff_ms_ = 50;
  // The protocol version negotiated on the current connection (0 before a handshake).
  // Frames queued before it was known take it when they are written.
  std::uint8_t version_ = 0;
  State state_ = State::kIdle;
  std::deque<std::string> queue_;  // frames waiting for the next write
  std::uint64_t queued_bytes_ = 0;
  std::vector<std::string> writing_;  // frames of the write in flight
  bool write_active_ = false;
  std::vector<char> read_buf_;
  std::optional<wire::FrameDecoder> decoder_;  // replaced with each new socket
  // The Handshake frame of the current socket (alive while its write is) and its payload
  // and our nonce, which the listener's proof covers.
  std::string hello_frame_;
  std::string hello_;
  std::string nonce_;
  std::optional<SnapshotSend> snap_;   // at most one stream per peer
  bool reported_unreachable_ = false;  // logged once per outage
  bool closed_ = false;
  std::uint64_t gen_ = 0;  // bumped when the socket is replaced
};

}  // namespace raft::runtime
