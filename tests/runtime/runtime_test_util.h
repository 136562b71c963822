// Helpers shared by the runtime tests (real threads, files and loopback TCP).
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>

namespace raft::test {

// A loopback port free at the time of the call (the acceptor closes before it returns).
inline std::uint16_t FreePort() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

// Polls `cond` every `step` until it holds or `limit` passes; returns its last value.
template <typename F>
bool WaitFor(F cond, std::chrono::milliseconds limit = std::chrono::seconds(15),
             std::chrono::milliseconds step = std::chrono::milliseconds(10)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(step);
  }
  return cond();
}

// Bytes received on the loopback interface so far (/proc/net/dev: every packet on lo,
// TCP/IP headers and acks included), or -1. For the benchmarks' traffic per pair.
inline double LoopbackBytes() {
  std::FILE* f = std::fopen("/proc/net/dev", "r");
  if (f == nullptr) return -1;
  char line[512];
  double bytes = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    const char* lo = std::strstr(line, "lo:");
    unsigned long long rx = 0;
    if (lo != nullptr && std::sscanf(lo + 3, "%llu", &rx) == 1) bytes = static_cast<double>(rx);
  }
  std::fclose(f);
  return bytes;
}

}  // namespace raft::test
