// InboundConn: a connection a peer dialed to us (see transport.h for the contract).
//
// With TLS, the TLS handshake comes first (a dialer without a certificate from our CA is
// refused there); then it must open with a valid handshake, both within kHandshakeTimeout (cluster
// id, target node, proof of the cluster secret); then it carries the peer's raft messages to the
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

namespace raft::runtime {

class InboundConn : public std::enable_shared_from_this<InboundConn> {
 public:
  // `stream`: accepted, its TLS handshake (if TLS) not run yet: Start() runs it.
  InboundConn(Transport* t, std::shared_ptr<PeerStream> stream);
  void Start();
  void Close();

 private:
  void StartRead();
  bool HandleFrame(wire::Frame f);  // false: close the connection
  bool HandleHandshake(const wire::Frame& f);
  bool HandleChunk(const wire::Frame& f);
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
  bool handshaken_ = false;
  NodeId peer_ = kNoNode;
  std::deque<std::string> out_;
  std::vector<std::string> writing_;  // non-empty only while write_active_
  bool write_active_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
  std::unique_ptr<SnapshotReceiver> receiver_;
};

}  // namespace raft::runtime
