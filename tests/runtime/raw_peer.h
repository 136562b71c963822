// RawPeer: one end of a raft peer connection written with the wire codecs and
// runtime/peer_auth only, over a blocking POSIX socket with timeouts. Tests play an
// honest, replaying or hostile dialer (or listener) with it. Not thread-safe: one thread
// owns a RawPeer.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "raft/status.h"
#include "raft/types.h"
#include "wire/frame.h"
#include "wire/payload.h"

namespace raft::testing {

class RawPeer {
 public:
  ~RawPeer();
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;

  // A connection to host:port (numeric IPv4), or null when refused.
  static std::unique_ptr<RawPeer> Connect(const std::string& host, std::uint16_t port);
  // A listening socket on 127.0.0.1, port 0; its fd and port. -1 on failure.
  static int Listen(std::uint16_t* port);
  // The next connection on `listen_fd`, or null after `timeout`.
  static std::unique_ptr<RawPeer> Accept(int listen_fd, std::chrono::milliseconds timeout);

  // Sends all bytes and appends them to sent(); false when the peer closed or reset.
  bool Send(std::string_view bytes);
  // Frames and sends one payload (at most 64 MiB), with the version the handshake
  // negotiated (this implementation's, before one).
  bool SendPayload(const wire::Payload& p);
  // The next frame; nullopt at end of stream, on a malformed frame or after `timeout`.
  std::optional<wire::Frame> Read(std::chrono::milliseconds timeout = std::chrono::seconds(3));
  // True when the other end closes (or resets) within `timeout`; frames that arrive
  // meanwhile are discarded and counted in frames_discarded().
  bool WaitClosed(std::chrono::milliseconds timeout = std::chrono::seconds(3));
  int frames_discarded() const { return frames_discarded_; }

  // The version-2 dialer handshake (docs/wire-protocol.md 4.1) as `from` to `to`: sends
  // the Handshake, checks the listener's HandshakeAck (its proof, when `secret` is set)
  // and sends the HandshakeFinish. The listener's nonce is stored in listener_nonce().
  // `address` is the Raft address the dialer claims (none when empty); `version_max` the
  // highest protocol version it offers.
  Status Handshake(NodeId from, NodeId to, const std::string& cluster_id, const std::string& secret,
                   const std::string& address = "",
                   std::uint8_t version_max = wire::kProtocolVersionMax);
  const std::string& listener_nonce() const { return listener_nonce_; }
  std::uint8_t version() const { return version_; }  // negotiated; 0 before

  // Every byte sent so far, for replaying.
  const std::string& sent() const { return sent_; }

 private:
  explicit RawPeer(int fd) : fd_(fd) {}

  int fd_;
  wire::FrameDecoder decoder_;
  std::string sent_;
  std::string listener_nonce_;
  int frames_discarded_ = 0;
  std::uint8_t version_ = 0;
};

}  // namespace raft::testing
