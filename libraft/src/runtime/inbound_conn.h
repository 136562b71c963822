// InboundConn: a connection a peer dialed to us (see transport.h for the contract).
//
// With TLS, the TLS handshake comes first (a dialer without a certificate from our CA is
// refused there). Then it must open with a valid handshake, both within kHandshakeTimeout:
// the dialer's Handshake (cluster id, target node, nonce), our HandshakeAck (our nonce
// and, with a cluster secret, our proof), the dialer's HandshakeFinish (its proof), as in
// docs/wire-protocol.md 4.1. Only then does it carry the peer's raft messages to the
// TransportHandler and its snapshot chunks to a SnapshotReceiver, answering each chunk
// with an ack. The first malformed, oversized or unexpected frame closes it. Our
// answers (handshake ack or reject, chunk acks) go out in order through out_.
//
// io thread only (checked with Transport::CheckThread). Every Asio completion first checks
// closed_: after Close() it touches nothing.
#pragma once

#include <asio.hpp>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "runtime/peer_stream.h"
#include "runtime/transport.h"
#include "wire/frame.h"
#include "wire/handshake.h"

namespace raft::runtime {

class InboundConn : public std::enable_shared_from_this<InboundConn> {
 public:
  // `stream`: accepted, its TLS handshake (if TLS) not run yet: Start() runs it.
  InboundConn(Transport* t, std::shared_ptr<PeerStream> stream);
  void Start();
  void Close();
  // Abandons the snapshot receive of `group` (0: a Node's) in progress, if any (its file
  // is removed); later chunks of that stream are answered with an abort. See
  // Transport::ClaimReceive.
  void DropReceive(std::uint64_t group, const std::string& why);

 private:
  void StartRead();
  bool HandleFrame(wire::Frame f);  // false: close the connection
  // Bad input from the authenticated peer: logged (rate-limited), counted
  // (OnPeerConnClosed); the caller closes. Returns false.
  bool CloseForBadInput(std::string_view why, const std::string& detail);
  bool HandleHandshake(const wire::Frame& f);
  bool HandleFinish(const wire::Frame& f);
  // Logs, sends HandshakeReject and closes after it; false.
  bool Reject(wire::RejectCode code, const std::string& reason);
  bool HandleChunk(const wire::Frame& f);  // SnapshotChunk or GroupSnapshotChunk
  // Version 4: GroupMessage, HostBeat, HostBeatAck to the handler.
  bool HandleGroupFrame(const wire::Frame& f);
  // Queues one answer; an answer that cannot be framed closes the connection (false).
  bool SendFrame(wire::FrameType type, const Result<std::string>& payload, bool close_after);
  void StartWrite();

  Transport* t_;
  std::shared_ptr<PeerStream> stream_;
  // A dialer that never completes its handshakes (TLS, then ours) is cut.
  asio::steady_timer handshake_timer_;
  std::string remote_;
  std::vector<char> read_buf_;
  wire::FrameDecoder decoder_;
  // Handshake progress: the Handshake arrived and was answered (hello_ holds its payload,
  // listener_nonce_ our nonce, version_ the chosen version, peer_ the claimed dialer),
  // then the HandshakeFinish verified (handshaken_: peer_ is authenticated).
  bool hello_answered_ = false;
  bool handshaken_ = false;
  std::string hello_;
  std::string listener_nonce_;
  std::uint8_t version_ = 0;
  std::string peer_address_;
  NodeId peer_ = kNoNode;
  std::deque<std::string> out_;
  std::vector<std::string> writing_;  // non-empty only while write_active_
  bool write_active_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
  // The receive in progress (a dialer streams one snapshot at a time) and its group.
  std::unique_ptr<SnapshotReceiver> receiver_;
  std::uint64_t receiver_group_ = 0;
};

}  // namespace raft::runtime
