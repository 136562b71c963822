// Network partitions between real kvserver processes on loopback, with no privileges:
// a PartitionProxy in front of each node's Raft port (the node advertises the proxy's
// port with -advertise-raddr, so every peer dials through it).
//
// A Raft connection carries messages one way, from its dialer to the node it dials
// (docs/wire-protocol.md; the reply travels on the other node's own connection), and
// opens with a Handshake frame naming the dialer (`from`, at byte 22 of the stream). So
// the proxy of node `to` knows each connection's pair (from, to), and a shared
// Partitions table decides: a blocked pair's connections are closed at once and new ones
// refused after their handshake. Isolate(x) blocks every pair with x on either end: x
// hears nothing and nothing it sends arrives, as with a pulled cable.
//
// Thread safety: Partitions may be changed from any thread; each proxy runs an accept
// thread and one thread per open connection, all joined by its destructor.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace kvtest {

class Partitions {
 public:
  void Isolate(std::uint64_t node);
  void Heal();  // every pair open again
  bool Blocked(std::uint64_t from, std::uint64_t to) const;

 private:
  mutable std::mutex mu_;
  std::set<std::uint64_t> isolated_;
};

class PartitionProxy {
 public:
  // Listens on 127.0.0.1:`listen_port`, forwards to 127.0.0.1:`target_port`, the Raft
  // port of node `owner` (its raft::NodeId).
  PartitionProxy(std::uint16_t listen_port, std::uint16_t target_port, std::uint64_t owner,
                 const Partitions* partitions);
  ~PartitionProxy();
  PartitionProxy(const PartitionProxy&) = delete;
  PartitionProxy& operator=(const PartitionProxy&) = delete;

  std::uint64_t connections_cut() const { return cut_.load(); }

 private:
  void AcceptLoop();
  void Serve(int client);

  std::uint16_t target_port_;
  std::uint64_t owner_;
  const Partitions* partitions_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> cut_{0};
  std::mutex mu_;
  std::vector<std::thread> threads_;  // guarded by mu_
  std::thread accept_;
};

}  // namespace kvtest
