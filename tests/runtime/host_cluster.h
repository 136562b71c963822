// HostCluster: processes 1..n, each a runtime::HostCore hosting groups over
// MemoryStorage, joined by an in-memory network. Every output crosses it as the frames a
// version-4 transport would write (wire/group_frames.h, with the 20-byte frame header
// counted), decoded again on arrival, so traffic is measured in real bytes and every
// frame round-trips through the codec. Deterministic: no threads, no clocks.
//
// Used by host_core_test and host_idle_bench. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/storage.h"
#include "runtime/host_core.h"

namespace raft::testing {

using runtime::GroupId;

struct HostClusterOptions {
  std::size_t processes = 3;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  bool quiesce = true;
  // The failure detector's timeout, in ticks; 0: election_ticks.
  std::int64_t liveness_timeout_ticks = 0;
};

// Frames and bytes sent from one process to another.
struct Traffic {
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  std::uint64_t beat_frames = 0;  // HostBeat frames (liveness included)
  std::uint64_t beats = 0;
  std::uint64_t ack_frames = 0;
  std::uint64_t acks = 0;
  std::uint64_t message_frames = 0;
};

class HostCluster {
 public:
  explicit HostCluster(HostClusterOptions options);
  ~HostCluster();

  // A group with a replica on every process, all voters (bootstrapped).
  void AddGroup(GroupId g);
  // Removes the group's replica on process p (its storage too).
  void RemoveReplica(GroupId g, NodeId p);

  // One tick of every process (an isolated one too: frames to or from it are dropped),
  // then Readies and frames are handled until quiet.
  void Tick();
  void Run(int ticks) {
    for (int i = 0; i < ticks; ++i) Tick();
  }
  // Handles Readies and delivers frames until nothing is left (bounded rounds).
  void Quiet();

  void Isolate(NodeId p) { isolated_.insert(p); }
  void Heal(NodeId p) { isolated_.erase(p); }

  runtime::HostCore& host(NodeId p) { return *procs_.at(p).host; }
  // The leader of `g` in the highest term among the processes not isolated, or kNoNode.
  NodeId Leader(GroupId g) const;
  // Proposes on the group's replica on process p (through HostCore::With).
  Status Propose(NodeId p, GroupId g, const std::string& data);
  Status ReadIndex(NodeId p, GroupId g, const std::string& context);
  // Normal entries with data applied on p for g, in order.
  const std::vector<std::string>& Applied(NodeId p, GroupId g);
  std::vector<ReadState> TakeReadStates(NodeId p, GroupId g);

  const Traffic& traffic(NodeId from, NodeId to) { return traffic_[{from, to}]; }
  void ResetTraffic() { traffic_.clear(); }
  // CPU seconds (this thread) spent in p's work: ticks, Readies, encoding its frames,
  // decoding and receiving what arrives at it.
  double cpu_seconds(NodeId p) const { return procs_.at(p).cpu; }
  void ResetCpu();

 private:
  struct Replica {
    std::unique_ptr<MemoryStorage> storage;
    std::vector<std::string> applied;
    std::vector<ReadState> reads;
  };
  struct Proc {
    std::unique_ptr<runtime::HostCore> host;
    std::map<GroupId, Replica> replicas;
    double cpu = 0;
  };
  struct Wire {
    NodeId from;
    NodeId to;
    std::uint8_t type;  // wire::GroupFrameType
    std::string payload;
  };

  void HandleReady(NodeId p);
  void Flush(NodeId p);
  void Deliver(const Wire& w);

  HostClusterOptions options_;
  std::map<NodeId, Proc> procs_;
  std::set<NodeId> isolated_;
  std::deque<Wire> net_;
  std::map<std::pair<NodeId, NodeId>, Traffic> traffic_;
};

}  // namespace raft::testing
