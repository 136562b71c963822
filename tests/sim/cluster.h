// Cluster: N real RawNode instances over a simulated network and simulated disks, in
// virtual time. Used directly by the scenario tests and driven randomly by swarm.h.
//
// One tick: every running, unpaused node ticks; every message due is delivered; every
// fsync due completes. These events run in an order shuffled by the Rng (so ties reorder),
// and after each event the affected node's Ready loop runs (node_runtime.cc) and the
// checker looks at every node's role. Everything is single-threaded and deterministic: the
// same seed and the same calls give the same run.
//
// The node runtime follows the durability contract of raw_node.h exactly:
//   GetReady -> send rd.messages -> hand snapshot/entries/hard_state to the disk (durable
//   after the node's fsync delay) -> then send rd.messages_after_persist, apply
//   rd.committed_entries, serve rd.read_states -> Advance. While a write is in flight the
//   node keeps ticking and stepping, and RawNode::TakeMessages() lets its appends and
//   heartbeats leave (a slow disk must not stall replication or check-quorum).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "checker.h"
#include "network.h"
#include "raft/config.h"
#include "runtime/process_liveness.h"
#include "sim_node.h"
#include "sim_rng.h"
#include "trace.h"

namespace raft::sim {

class Clients;

struct ClusterOptions {
  int voters = 3;  // founding members n1..nV
  int spares = 2;  // n(V+1).. n(V+spares): started only when added by a membership change
  int election_ticks = 10;
  int heartbeat_ticks = 2;
  bool pre_vote = true;
  bool check_quorum = true;
  bool lease_reads = false;  // ReadOnlyOption::kLeaseBased on every node
  // Config::quiesce on every node, with a host's failure detector beside each core
  // (Cluster::WatchProcesses): what raft::Host will run, one heartbeat per pair of
  // processes, modelled as "p's process runs and the link p -> n is up".
  bool quiesce = false;
  std::uint64_t max_msg_bytes = 1 << 20;
  std::uint32_t max_inflight_msgs = 256;
  bool shuffle_events = true;     // random order of the events of one tick
  bool use_take_messages = true;  // let appends/heartbeats leave during a slow fsync
  // Like the runtime (node_io.cc): apply a Ready's committed entries that are already
  // durable here before its fsync completes, and entries committed during a slow fsync
  // at once (RawNode::TakeCommitted).
  bool apply_durable_early = true;
  // Run Checker::CheckElectability after every event (only valid while the voter set is
  // the founding one: runs and scenarios without membership changes).
  bool check_electability = false;
  // A refused message fails the run (honest runs never refuse one), except, when set, a
  // refusal for a term more than kTermJumpMax ahead: the byzantine harness's lying member
  // can move an honest node that far up (RaftCore::StepTowardsTerm), and that node's
  // honest messages are then refused by the others until they have caught up.
  bool allow_term_jump_refusals = false;
};

class Cluster {
 public:
  Cluster(const ClusterOptions& options, std::uint64_t seed, const Trace* trace);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // --- time ---
  void Tick();
  void RunTicks(int n);
  // Ticks until `pred` holds (checked after each tick), at most max_ticks. Returns pred().
  bool RunUntil(const std::function<bool()>& pred, int max_ticks);
  std::int64_t now() const { return now_; }

  // --- nodes ---
  std::vector<NodeId> ids() const;   // every node that has durable state
  std::set<NodeId> all_ids() const;  // founding members and spares
  SimNode& node(NodeId id) { return nodes_.at(id); }
  const SimNode& node(NodeId id) const { return nodes_.at(id); }
  bool Running(NodeId id) const;
  // Crash: drop the RawNode and everything not yet durable. torn: a prefix of the entries
  // of the write in flight reaches the disk (the hard state does not).
  void Crash(NodeId id, bool torn = false);
  void Restart(NodeId id);
  void Pause(NodeId id, int ticks);
  void SetDiskDelay(NodeId id, int min_ticks, int max_ticks);
  // Starts a spare with empty storage (it joins through the leader's appends or snapshot).
  void StartSpare(NodeId id);
  // Snapshot at the applied index, then compact keeping `keep` trailing entries.
  bool TakeSnapshot(NodeId id, Index keep);
  // Runs the Ready loop of a node (after a client or scenario called into its RawNode).
  void Kick(NodeId id);

  // --- observations ---
  // The running leader with the highest term, or kNoNode.
  NodeId Leader() const;
  // Number of running nodes that believe they are leader.
  int LeaderCount() const;
  // Proposes `data` at the current leader until an entry with it is applied by the
  // leader (committed), at most max_ticks. Returns its index, or 0 on timeout.
  Index ProposeAndCommit(const std::string& data, int max_ticks);
  // Index at which an entry with `data` was applied anywhere, 0 if none.
  Index AppliedIndexOf(const std::string& data) const;
  Result<LogPosition> Propose(NodeId id, std::string data);
  // Propose for load that may hit a node mid-election or mid-transfer: a refusal is
  // expected and dropped. The tests judge what committed, never what was offered.
  void Offer(NodeId id, std::string data);

  Network& net() { return net_; }
  Checker& checker() { return checker_; }
  Rng& rng() { return rng_; }
  const Trace& trace() const { return *trace_; }
  void Log(const std::string& line) const { trace_->Log(now_, line); }
  const ClusterOptions& options() const { return options_; }
  // Optional client workload; Cluster forwards applies, read states and crashes to it.
  void set_clients(Clients* c) { clients_ = c; }
  // Count of messages sent by nodes since the last reset (message-count scenarios).
  std::uint64_t messages_sent() const { return net_.counters().sent; }
  // Ticks of running nodes, and of those the node spent quiesced (Config::quiesce).
  std::uint64_t node_ticks() const { return node_ticks_; }
  std::uint64_t quiesced_node_ticks() const { return quiesced_node_ticks_; }

 private:
  // node_runtime.cc: the durability contract, message delivery, applying.
  void ProcessReady(SimNode& n);
  void CompleteWrite(SimNode& n);
  void TornWrite(SimNode& n);
  void SendFromNode(SimNode& n, const Message& m);
  void Deliver(Envelope e);
  // known_commit: a commit index the core reported outside a Ready's hard state.
  void ApplyEntry(SimNode& n, const Entry& e, Index known_commit = 0);
  // Applies a committed entry before the outstanding Ready's fsync completes, checking
  // first that it is durable in n's storage.
  void ApplyDurableEntry(SimNode& n, const Entry& e, const char* via);
  void TakeCommitted(SimNode& n);
  void RestoreSnapshot(SimNode& n, const SnapshotMeta& meta, const std::string& data);
  void FlushEarlyMessages(SimNode& n);
  void ObserveRoles();
  // options_.quiesce: each running node's host detector (runtime::ProcessLiveness) hears
  // the processes that run, are not paused and whose link towards it is up, and wakes the
  // sleeping core as runtime::ShouldWake says: its leader's process (a follower) or some
  // voter's process (a leader) not heard for an election timeout.
  void WatchProcesses();
  Config NodeConfig(NodeId id, Index applied);

  ClusterOptions options_;
  Rng rng_;
  const Trace* trace_;
  Trace silent_;
  Network net_;
  Checker checker_;
  Clients* clients_ = nullptr;
  std::map<NodeId, SimNode> nodes_;
  std::set<NodeId> founding_;
  std::int64_t now_ = 0;
  std::map<NodeId, std::pair<Role, Term>> last_role_;
  std::map<NodeId, runtime::ProcessLiveness> detectors_;  // each node's host's detector
  std::uint64_t node_ticks_ = 0;
  std::uint64_t quiesced_node_ticks_ = 0;
};

}  // namespace raft::sim
