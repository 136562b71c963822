#include "raw_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/peer_auth.h"
#include "wire/handshake.h"

namespace raft::testing {
namespace {

using Clock = std::chrono::steady_clock;

int MsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

RawPeer::~RawPeer() {
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<RawPeer> RawPeer::Connect(const std::string& host, std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return nullptr;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<RawPeer>(new RawPeer(fd));
}

int RawPeer::Listen(std::uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 4) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

std::unique_ptr<RawPeer> RawPeer::Accept(int listen_fd, std::chrono::milliseconds timeout) {
  pollfd p{listen_fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return nullptr;
  int fd = ::accept(listen_fd, nullptr, nullptr);
  if (fd < 0) return nullptr;
  return std::unique_ptr<RawPeer>(new RawPeer(fd));
}

bool RawPeer::Send(std::string_view bytes) {
  sent_.append(bytes);
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool RawPeer::SendPayload(const wire::Payload& p) {
  auto frame = wire::EncodePayloadFrame(p);
  if (frame.ok() && version_ != 0) wire::SetFrameVersion(&*frame, version_);
  return frame.ok() && Send(*frame);
}

std::optional<wire::Frame> RawPeer::Read(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (auto f = decoder_.Pop()) return f;
    if (decoder_.failed()) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, MsLeft(deadline)) <= 0) return std::nullopt;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    (void)decoder_.Feed(std::string_view(buf, static_cast<std::size_t>(n)));  // failed() above
  }
}

bool RawPeer::WaitClosed(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (decoder_.Pop()) ++frames_discarded_;
  while (true) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, MsLeft(deadline)) <= 0) return false;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    (void)decoder_.Feed(std::string_view(buf, static_cast<std::size_t>(n)));
    while (decoder_.Pop()) ++frames_discarded_;
  }
}

Status RawPeer::Handshake(NodeId from, NodeId to, const std::string& cluster_id,
                          const std::string& secret, const std::string& address,
                          std::uint8_t version_max) {
  auto nonce = runtime::MakeHandshakeNonce();
  if (!nonce.ok()) return nonce.status();
  wire::Handshake hs;
  hs.from = from;
  hs.to = to;
  hs.cluster_id = cluster_id;
  hs.auth = *nonce;
  hs.address = address;
  hs.version_max = version_max;
  auto hello = wire::EncodeHandshake(hs);
  if (!hello.ok()) return hello.status();
  auto frame = wire::EncodeFrame(wire::FrameType::kHandshake, *hello);
  if (!frame.ok()) return frame.status();
  if (!Send(*frame)) return Status(ErrorCode::kIOError, "raw peer: cannot send the handshake");
  auto answer = Read();
  if (!answer) return Status(ErrorCode::kIOError, "raw peer: no answer to the handshake");
  if (answer->type == wire::FrameType::kHandshakeReject) {
    auto rej = wire::DecodeHandshakeReject(answer->payload);
    std::string why("raw peer: handshake refused: ");
    if (rej.ok()) {
      why += wire::RejectCodeName(rej->code);
      why += ": ";
      why += rej->reason;
    }
    return Status(ErrorCode::kInvalidArgument, why);
  }
  if (answer->type != wire::FrameType::kHandshakeAck)
    return Status(ErrorCode::kCorruption, "raw peer: the answer is not a HandshakeAck");
  auto ack = wire::DecodeHandshakeAck(answer->payload);
  if (!ack.ok()) return ack.status();
  if (ack->auth.size() < wire::kNonceBytes)
    return Status(ErrorCode::kCorruption, "raw peer: the ack carries no nonce");
  listener_nonce_ = ack->auth.substr(0, wire::kNonceBytes);
  version_ = ack->version;
  wire::HandshakeFinish fin;
  if (!secret.empty()) {
    auto expected = runtime::HandshakeProof(secret, wire::kRoleListener, *hello, ack->version,
                                            ack->from, listener_nonce_);
    if (!expected.ok()) return expected.status();
    if (!runtime::ProofEquals(ack->auth.substr(wire::kNonceBytes), *expected))
      return Status(ErrorCode::kInvalidArgument, "raw peer: the listener's proof is wrong");
    auto ours = runtime::HandshakeProof(secret, wire::kRoleDialer, *hello, ack->version, ack->from,
                                        listener_nonce_);
    if (!ours.ok()) return ours.status();
    fin.proof = *ours;
  }
  if (!SendPayload(fin)) return Status(ErrorCode::kIOError, "raw peer: cannot send the finish");
  return Status::Ok();
}

}  // namespace raft::testing
