#include "partition_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

namespace kvtest {
namespace {

// Bytes of a Raft stream up to the end of the Handshake's `from`: the 20-byte frame
// header, version_min, version_max, from:u64 (little-endian).
constexpr std::size_t kFromOffset = 22;
constexpr std::size_t kPrefix = kFromOffset + 8;

int Connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

void Partitions::Isolate(std::uint64_t node) {
  std::lock_guard<std::mutex> l(mu_);
  isolated_.insert(node);
}

void Partitions::Heal() {
  std::lock_guard<std::mutex> l(mu_);
  isolated_.clear();
}

bool Partitions::Blocked(std::uint64_t from, std::uint64_t to) const {
  std::lock_guard<std::mutex> l(mu_);
  return isolated_.count(from) > 0 || isolated_.count(to) > 0;
}

PartitionProxy::PartitionProxy(std::uint16_t listen_port, std::uint16_t target_port,
                               std::uint64_t owner, const Partitions* partitions)
    : target_port_(target_port), owner_(owner), partitions_(partitions) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(listen_port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("partition proxy: cannot listen on port " +
                             std::to_string(listen_port) + ": " + std::strerror(errno));
  }
  accept_ = std::thread([this] { AcceptLoop(); });
}

PartitionProxy::~PartitionProxy() {
  stop_ = true;
  accept_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> l(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

void PartitionProxy::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    std::lock_guard<std::mutex> l(mu_);
    threads_.emplace_back([this, client] { Serve(client); });
  }
}

void PartitionProxy::Serve(int client) {
  // The dialer's first bytes, held until its id is known (a stream that is not a plain
  // Raft handshake, TLS say, is forwarded with the dialer unknown: id 0).
  std::string head;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (head.size() < kPrefix && !stop_ && std::chrono::steady_clock::now() < deadline) {
    if (head.size() >= 4 && head.compare(0, 4, "RAFT") != 0) break;
    pollfd p{client, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[kPrefix];
    ssize_t n = ::recv(client, buf, kPrefix - head.size(), 0);
    if (n <= 0) break;
    head.append(buf, static_cast<std::size_t>(n));
  }
  std::uint64_t from = 0;
  if (head.size() >= kPrefix && head.compare(0, 4, "RAFT") == 0)
    for (int i = 7; i >= 0; --i)
      from =
          (from << 8) | static_cast<unsigned char>(head[kFromOffset + static_cast<std::size_t>(i)]);
  int server = -1;
  if (!head.empty() && !stop_ && !partitions_->Blocked(from, owner_))
    server = Connect(target_port_);
  if (server < 0 || !WriteAll(server, head.data(), head.size())) {
    if (server >= 0) ::close(server);
    ::close(client);
    return;
  }
  char buf[64 * 1024];
  while (!stop_) {
    if (partitions_->Blocked(from, owner_)) {
      ++cut_;
      break;
    }
    pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (::poll(p, 2, 50) < 0) break;
    bool closed = false;
    for (int i = 0; i < 2 && !closed; ++i) {
      if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
      closed = n <= 0 || !WriteAll(p[1 - i].fd, buf, static_cast<std::size_t>(n));
    }
    if (closed) break;
  }
  ::close(server);
  ::close(client);
}

}  // namespace kvtest
