// Env: everything raft::Node takes from the world outside its own code: time, the
// scheduling of its four kinds of work, the file system and the network. It is the
// seam that lets the same Node::Impl run in production (ThreadEnv: one thread per lane,
// Asio sockets, POSIX files, the steady clock) and in the full-node simulator
// (tests/nodesim: one thread, a seeded scheduler that interleaves the lanes of every
// node, a simulated disk and network, a virtual clock), deterministically from a seed.
//
// Lanes. Work posted to one lane runs in posting order, one item at a time, never
// concurrently with another item of the same lane; items of different lanes may run in
// any interleaving (concurrently on threads, in a seeded order in simulation). That is
// exactly what Node::Impl may rely on, and all it may rely on: each lane's state is
// owned by the lane's base::ThreadChecker, shared state by mutexes. Work posted to a
// lane after it was shut down is dropped (destroyed, never run).
//
// Thread safety: Now, Random64, Post, file_system may be called from any lane (and from
// application threads: Post(kIo) is how the public API enters the node). Start, StartTicker,
// NewTransport and Shutdown are called by Node::Impl's Open/Run/Stop, which run alone.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "raft/logger.h"
#include "raft/message.h"
#include "raft/status.h"
#include "wire/wire_format.h"

namespace raft::base {
class FileSystem;
class ThreadChecker;
}  // namespace raft::base

namespace raft::runtime {

using Clock = std::chrono::steady_clock;

class SnapshotStore;
struct TransportOptions;
class TransportHandler;

// What Node::Impl needs of a transport (runtime/transport.h has the contract of each
// call; the Asio Transport is the production one). Every call is made on the io lane,
// and every TransportHandler callback is delivered on it.
class MessageTransport {
 public:
  virtual ~MessageTransport() = default;
  // Binds and starts accepting. kIOError naming the address on failure.
  virtual Status Listen() = 0;
  virtual void SetPeerAddress(NodeId id, const std::string& addr) = 0;
  // The member's name, for log lines only (they name a peer by it instead of its id).
  virtual void SetPeerName(NodeId id, const std::string& name) = 0;
  // Node::SetClusterId: the id sent and checked in handshakes from now on.
  virtual void SetClusterId(const std::string& cluster_id) = 0;
  virtual bool HasPeer(NodeId id) const = 0;
  // The ids that have an address (SetPeerAddress), in increasing order.
  virtual std::vector<NodeId> PeerIds() const = 0;
  // Closes our connection to `id` and forgets its address and name (a later
  // SetPeerAddress starts afresh). A snapshot stream to it is dropped without an
  // OnSnapshotSent. Node::Impl reaps so the ids outside the membership (ReapPeers).
  virtual void RemovePeer(NodeId id) = 0;
  // Never blocks. kSnapshot messages stream the snapshot file first.
  virtual void Send(Message m) = 0;
  // A host's transport (TransportOptions::host, protocol version 4): one group frame
  // (kGroupMessage, kHostBeat, kHostBeatAck) with its encoded payload. Never blocks.
  // The default aborts: a transport of a Node never gets one (thread_env.cc).
  virtual void SendGroupFrame(NodeId peer, wire::FrameType type, const std::string& payload);
  // A host's transport: streams the snapshot that `m` (a kSnapshot of group `group`)
  // names, read from `store` (borrowed; it outlives the stream: the host keeps a removed
  // group's store until the io lane stops), to m.to as GroupSnapshotChunk frames, then `m`
  // as a GroupMessage; the handler hears OnGroupSnapshotSent(m.to, group, ok). One stream
  // per peer process: an offer for another group while one runs fails at once. The
  // default aborts, as SendGroupFrame's.
  virtual void SendGroupSnapshot(std::uint64_t group, Message m, SnapshotStore* store);
  // Closes every connection; no handler callback runs afterwards.
  virtual void Stop() = 0;
};

enum class Lane { kIo = 0, kDisk = 1, kApply = 2, kSnapshot = 3 };
inline constexpr int kLanes = 4;

class Env {
 public:
  virtual ~Env() = default;

  virtual Clock::time_point Now() = 0;
  // Seeds and nonces (the core's seed, ReadIndex context nonces). Production: from
  // std::random_device; simulation: from the run's seed.
  virtual std::uint64_t Random64() = 0;
  virtual base::FileSystem* file_system() = 0;

  // Starts running the lanes. `checkers` (indexed by Lane) are bound to the lane's
  // thread for as long as it runs (in simulation, the one thread runs every lane).
  virtual void Start(base::ThreadChecker* const checkers[kLanes]) = 0;
  virtual void Post(Lane lane, std::function<void()> work) = 0;
  // Calls `tick` on the io lane every `period` until Shutdown(kIo).
  virtual void StartTicker(std::chrono::milliseconds period, std::function<void()> tick) = 0;
  // Stops a lane: kIo runs `last` on the io lane (after the work already posted to it)
  // and then stops it, dropping what is posted later; the other lanes run what was
  // posted before the call, then stop (`last` runs after it, on the caller's thread).
  // Returns when the lane has stopped. Node::Impl::Stop shuts down io, snapshot, disk,
  // apply, in that order.
  virtual void Shutdown(Lane lane, std::function<void()> last) = 0;

  virtual std::unique_ptr<MessageTransport> NewTransport(const TransportOptions& options,
                                                         TransportHandler* handler,
                                                         SnapshotStore* snapshots) = 0;
};

// Production: one thread per lane (named raft-io, raft-disk, raft-apply, raft-snapshot),
// an asio::io_context for the io lane and the Asio Transport, POSIX files, steady_clock.
std::unique_ptr<Env> NewThreadEnv();

}  // namespace raft::runtime
