// HostCluster: processes 1..n, each a runtime::HostCore hosting groups over
// MemoryStorage, joined by an in-memory network. Every output crosses it as the frames a
// version-4 transport would write (wire/group_frames.h, with the 20-byte frame header
// counted), decoded again on arrival, so traffic is measured in real bytes and every
// frame round-trips through the codec. Deterministic: no threads, no clocks.
//
// Faults (HostClusterOptions): frames lost, duplicated and delayed (so reordered),
// processes isolated and crashed (a crash keeps what was persisted: each replica's
// MemoryStorage is written before the messages that depend on it leave, as the
// durability contract says; the state machine restarts empty and replays). Safety is
// checked as it runs, per group: at most one leader per term, and one entry per index
// over every replica's applies and all time; a violation throws std::runtime_error.
//
// Storage: MemoryStorage per replica, or (shared_log_dir set) one storage::SharedLog
// per process, as a host keeps: each process then handles a round of Readies as a
// host's disk lane will, all touched groups' writes first, one Sync for all of them,
// then every group's messages_after_persist and Advance. A crash drops the process's
// SharedLog without a Sync and Restart reopens it (recovery).
//
// Used by host_core_test, host_sim_test and host_idle_bench. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "raft/storage.h"
#include "runtime/host_core.h"
#include "storage/shared_log.h"
#include "wire/wire_format.h"

namespace raft::testing {

using runtime::GroupId;

struct HostClusterOptions {
  std::size_t processes = 3;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  bool quiesce = true;
  // The failure detector's timeout, in ticks; 0: election_ticks.
  std::int64_t liveness_timeout_ticks = 0;
  // Faults on every frame: lost, delivered twice, delayed by 0..max_delay_ticks ticks.
  std::uint64_t seed = 1;
  double drop_rate = 0;
  double duplicate_rate = 0;
  int max_delay_ticks = 0;
  // Non-empty: one SharedLog per process in <dir>/<process> (the directory must exist
  // and is left behind); empty: MemoryStorage per replica.
  std::string shared_log_dir;
  // Account each process's CPU time (cpu_seconds): a clock_gettime syscall around every
  // step, which the benchmarks want and the tests do not.
  bool measure_cpu = false;
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
  // Stops process p: its host and state machines are gone, its storage stays; frames to
  // it are lost. Restart builds a new host over the same storage.
  void Crash(NodeId p);
  void Restart(NodeId p);
  bool crashed(NodeId p) const { return !procs_.at(p).host; }
  std::int64_t now() const { return now_; }
  // Entries known committed (applied somewhere), over all groups.
  std::uint64_t committed_entries() const;

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
  // With a shared log: Readies handled and Syncs made by process p so far.
  std::uint64_t readies(NodeId p) const { return procs_.at(p).readies; }
  std::uint64_t syncs(NodeId p) const { return procs_.at(p).syncs; }

 private:
  struct Replica {
    std::unique_ptr<MemoryStorage> memory;  // without a shared log
    Storage* storage = nullptr;             // memory, or the shared log's view
    std::vector<std::string> applied;
    std::vector<ReadState> reads;
  };
  struct Proc {
    std::unique_ptr<runtime::HostCore> host;
    std::unique_ptr<storage::SharedLog> log;
    std::map<GroupId, Replica> replicas;
    double cpu = 0;
    std::uint64_t readies = 0;
    std::uint64_t syncs = 0;
  };
  struct Wire {
    std::int64_t due;  // the tick it arrives
    NodeId from;
    NodeId to;
    wire::FrameType type;
    std::string payload;
  };

  Config MakeConfig(GroupId g, NodeId p) const;
  void OpenLog(NodeId p);
  // Persists one Ready of g on p (no sync with a shared log: the caller syncs).
  void Persist(Proc& proc, GroupId g, Replica& r, const Ready& rd);
  // Safety checks of one replica after a Ready (see the top of this file).
  void CheckLeader(GroupId g, NodeId p, const RawNode& core);
  void CheckApply(GroupId g, NodeId p, const Entry& e);
  void HandleReady(NodeId p);
  void Flush(NodeId p);
  void Deliver(const Wire& w);

  HostClusterOptions options_;
  std::map<NodeId, Proc> procs_;
  std::set<NodeId> isolated_;
  std::deque<Wire> net_;
  std::map<std::pair<NodeId, NodeId>, Traffic> traffic_;
  std::mt19937_64 rng_;
  std::int64_t now_ = 0;
  std::map<std::pair<GroupId, Term>, NodeId> leaders_;  // election safety
  std::map<GroupId, std::map<Index, std::pair<Term, std::string>>> committed_;
};

}  // namespace raft::testing
