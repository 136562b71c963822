// The simulated network: messages in flight, ordered by (delivery tick, send sequence),
// per-message faults (drop, duplicate, delay, long delay) and per-link connectivity.
//
// Links are directed: Block(a, b) cuts a -> b only (asymmetric partitions). A message is
// dropped when its link is cut at send time or at delivery time (the cluster checks the
// latter). Only ordered containers; all randomness comes from the caller's Rng.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "raft/message.h"
#include "sim_rng.h"

namespace raft::sim {

// A message plus what the transport carries beside it: for kSnapshot, the leader's
// snapshot bytes (the core only hands out SnapshotMeta).
struct Envelope {
  Message msg;
  std::string snapshot_data;
  std::int64_t deliver_tick = 0;
  std::uint64_t seq = 0;
};

struct NetFaults {
  double drop = 0;       // probability a message is lost
  double duplicate = 0;  // probability a message is delivered twice
  int delay_min_ticks = 0;
  int delay_max_ticks = 1;
  double long_delay = 0;  // probability of a long delay (stale delivery)
  int long_delay_max_ticks = 0;
};

struct NetCounters {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
  std::uint64_t bytes = 0;  // payload bytes of entries and snapshots sent
};

class Network {
 public:
  void set_faults(const NetFaults& f) { faults_ = f; }
  const NetFaults& faults() const { return faults_; }

  // Queues `m` (and a duplicate, maybe). Returns false when it was dropped at once.
  bool Send(Message m, std::string snapshot_data, std::int64_t now, Rng& rng);
  // Removes and returns every envelope due at or before `now`, in delivery order.
  std::vector<Envelope> TakeDue(std::int64_t now);
  // Puts an envelope back (e.g. its receiver is paused until `tick`).
  void Requeue(Envelope e, std::int64_t tick);
  std::size_t in_flight() const { return queue_.size(); }

  void Block(NodeId from, NodeId to) { blocked_.insert({from, to}); }
  void Unblock(NodeId from, NodeId to) { blocked_.erase({from, to}); }
  void BlockBoth(NodeId a, NodeId b) { Block(a, b), Block(b, a); }
  void HealAll() { blocked_.clear(); }
  bool Connected(NodeId from, NodeId to) const { return !blocked_.count({from, to}); }
  // Cuts every link between `group` and the nodes of `all` outside it, both directions.
  void Isolate(const std::set<NodeId>& group, const std::set<NodeId>& all);
  const std::set<std::pair<NodeId, NodeId>>& blocked() const { return blocked_; }

  void NoteDropped() { ++counters_.dropped; }
  void NoteDelivered() { ++counters_.delivered; }
  const NetCounters& counters() const { return counters_; }
  void ResetCounters() { counters_ = {}; }

 private:
  NetFaults faults_;
  std::set<std::pair<NodeId, NodeId>> blocked_;
  std::map<std::pair<std::int64_t, std::uint64_t>, Envelope> queue_;
  std::uint64_t next_seq_ = 0;
  NetCounters counters_;
};

}  // namespace raft::sim
