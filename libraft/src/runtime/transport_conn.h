// The two connection kinds of the Transport (see transport.h for the contract).
#pragma once

#include <asio.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/transport.h"
#include "wire/frame.h"
#include "wire/snapshot_chunk.h"

namespace raft::runtime {

// Our dialed connection to one peer: handshake, then raft messages and snapshot chunks
// out; handshake answer and snapshot chunk acks in.
class PeerConn : public std::enable_shared_from_this<PeerConn> {
 public:
  PeerConn(Transport* t, asio::io_context& io, NodeId id, std::string addr);
  void SetAddress(const std::string& addr);
  // The peer just dialed us: it is up, so stop waiting out a reconnect backoff.
  void PeerIsUp();
  void SendMessage(const Message& m);
  void Close();

 private:
  enum class State { kIdle, kConnecting, kReady, kBackoff };
  struct SnapshotSend {
    Message msg;
    std::uint64_t size = 0;
    std::uint64_t sent = 0;
    std::uint64_t acked = 0;
  };

  void Connect();
  bool Enqueue(std::string frame, bool force);
  void StartWrite();
  void StartRead();
  void HandleFrame(wire::Frame f);
  void Fail(const std::string& why);
  void StartSnapshot(const Message& m);
  void PumpSnapshot();
  void FinishSnapshot(bool ok);

  Transport* t_;
  asio::io_context& io_;
  NodeId id_;
  std::string addr_;
  asio::ip::tcp::socket sock_;
  asio::steady_timer backoff_timer_;
  int backoff_ms_ = 50;
  State state_ = State::kIdle;
  std::deque<std::string> queue_;
  std::uint64_t queued_bytes_ = 0;
  std::vector<std::string> writing_;
  bool write_active_ = false;
  std::vector<char> read_buf_;
  std::optional<wire::FrameDecoder> decoder_;  // replaced with each new socket
  std::optional<SnapshotSend> snap_;
  bool reported_unreachable_ = false;
  bool closed_ = false;
  std::uint64_t gen_ = 0;  // bumped when the socket is replaced
};

// A connection a peer dialed to us.
class InboundConn : public std::enable_shared_from_this<InboundConn> {
 public:
  InboundConn(Transport* t, asio::ip::tcp::socket sock);
  void Start();
  void Close();

 private:
  void StartRead();
  bool HandleFrame(wire::Frame f);  // false: close the connection
  bool HandleHandshake(const wire::Frame& f);
  bool HandleChunk(const wire::Frame& f);
  void SendFrame(wire::FrameType type, const std::string& payload, bool close_after);
  void StartWrite();

  Transport* t_;
  asio::ip::tcp::socket sock_;
  asio::steady_timer handshake_timer_;  // a dialer that never completes its handshake is cut
  std::string remote_;
  std::vector<char> read_buf_;
  wire::FrameDecoder decoder_;
  bool handshaken_ = false;
  NodeId peer_ = kNoNode;
  std::deque<std::string> out_;
  std::vector<std::string> writing_;
  bool write_active_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
  std::unique_ptr<SnapshotReceiver> receiver_;
};

}  // namespace raft::runtime
