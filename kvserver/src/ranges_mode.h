// Ranges mode (-shards N >= 2; docs/multi-raft.md, "kvserver: ranges"): the node is one
// process of a raft::Host. Group 1 is the meta range (MetaStateMachine: the processes,
// the range directory and the split orders); each data range is a group whose state
// machine is a RocksStateMachine of its own (<data>/ranges/<id>, format 2), every range
// replicated on every node:
//
// - Bootstrap: group 1 with this process as its only voter; its leader then proposes
//   its own process record and the directory of `-shards` ranges (Reconcile, from the
//   number stored in <data>/shards, so a crash between the steps is finished later).
// - Every node's Reconcile (the upkeep thread, every 100 ms) makes the host follow the
//   meta range: peers are the processes of the table (SetPeer), every range of the
//   directory is hosted (HostRange), and on each group this node leads, a process of the
//   table that is not a member is added as a learner and promoted once its log has caught
//   up, one change at a time per group; a node leading more than its share of the data
//   ranges hands one to the node leading fewest.
// - Splits ("Splits as built" there): the meta range's leader orders them, a range's
//   leader proposes them, every replica hosts the new range from the state the split left
//   and routes by it at once, the meta range's leader publishes them (HostSplits,
//   ExecuteSplits, OrderSplits, PublishSplits).
// - Joining is /join on any member, forwarded to the meta range's leader, which proposes
//   the joiner's process record (AddProcess); the rest is Reconcile on every node.
// - Leaving is /leave, forwarded likewise: the meta range's leader marks the process
//   leaving (Leave); the leader of each group removes it (a leader that is leaving hands
//   its leadership to another voter first); once it is a member of no group, the meta
//   range's leader removes its record, and every node forgets it (RemovePeer).
//
// Not built yet: placement on 3 of N nodes, backups (docs/multi-raft.md, "Placement").
// Choices not made: one shared RocksDB for all ranges (format 3, specified in
// docs/state-format.md): splits move no data with a DB per range either (a checkpoint of
// hard links, then range deletions), and a DB per range reuses the proven state machine.
//
// Thread safety: every method may be called from any thread; Reconcile from one thread
// at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "logger.h"
#include "meta_state.h"
#include "raft/host.h"
#include "range_map.h"
#include "rocks_state_machine.h"

namespace kv {

// The meta range's state machine. In memory: AppliedIndex is 0, so the host replays the
// meta range's whole log at every start (its log is never compacted in this version).
class MetaStateMachine final : public raft::StateMachine {
 public:
  // Each entry's result is MetaState::Apply's: "" when applied, else why it changed
  // nothing; "" for no-ops and configuration changes; a malformed command is refused.
  void Apply(const std::vector<raft::Entry>& entries, std::vector<std::string>* results) override;
  // In memory: a restart restores the meta range's snapshot, then replays its log.
  raft::Index AppliedIndex() override { return 0; }
  raft::Result<std::unique_ptr<raft::SnapshotSource>> PrepareSnapshot() override;
  raft::Status Restore(raft::SnapshotReader* in, const raft::SnapshotMeta& meta) override;

  // Copies of the state, taken under the lock.
  std::map<raft::NodeId, ProcessRecord> Processes() const;
  std::vector<RangeDescriptor> Ranges() const;
  std::map<RangeId, SplitOrder> SplitOrders() const;
  std::uint64_t applied() const { return applied_.load(); }

 private:
  mutable std::mutex mu_;
  MetaState state_;  // guarded by mu_
  std::atomic<std::uint64_t> applied_{0};
};

struct RangesOptions {
  ProcessRecord self;  // id, name, advertised addresses
  std::string data;    // -data
  int shards = 0;      // bootstrap: the number of ranges; 0: a joiner
  RocksOptions rocks;
  raft::HostOptions host;  // data_dir is set to <data>/host
  StructuredLogger* logger = nullptr;
  // Each range state machine's applied listener (RocksStateMachine::SetAppliedListener).
  std::function<void(raft::Index)> on_applied;
  // A data range whose keys and values pass this many bytes (RocksDB's estimate of its
  // span, RocksStateMachine::SpanSizeBytes) is split at its middle key
  // (-range-max-bytes; 0: no automatic splits).
  std::uint64_t range_max_bytes = 64ull << 20;
  // A data range applying at least this many client writes in each of the last 10
  // seconds is split where they part in halves (RocksStateMachine::LoadSplitKey; needs
  // rocks.track_write_load; -range-max-writes; 0: no splits by load).
  std::uint64_t range_max_writes = 0;
  // A ranges backup (ranges_backup.h) to seed a new cluster from, on an empty data
  // directory (-restore): this node its only member, each range started from its part.
  std::string restore_from;
};

// kInvalidArgument when the data directory `data` holds a ranges restore that did not
// finish (<data>/restoring; RangesOptions::restore_from): it is started again on an
// empty directory.
raft::Status RestoreCutShort(const std::string& data);

class RangesMode {
 public:
  // Starts the host and hosts group 1: bootstraps it (shards > 0 and nothing on disk),
  // resumes it, or creates it empty for a join.
  static raft::Result<std::unique_ptr<RangesMode>> Start(RangesOptions options);
  ~RangesMode();  // Stop()
  // Stops the host, then closes the range DBs. Idempotent; blocks.
  void Stop();
  // Shutdown, before Stop (the upkeep stopped: it would balance leaders back): every
  // group this node leads, the meta range included, is handed to its most up-to-date
  // other voter, all at once, waiting at most `limit`, so that the cluster does not wait
  // an election timeout for them. Returns how many of the groups led were handed over
  // and how many it led.
  std::pair<std::size_t, std::size_t> HandOverLeaderships(std::chrono::milliseconds limit);

  raft::Host& host() { return *host_; }
  const MetaStateMachine& meta() const { return meta_; }
  raft::NodeId self() const { return opts_.self.id; }
  // True when <data>/host held nothing at Start.
  bool fresh() const { return fresh_; }

  // A range as this node routes it: its id and state machine (null: not hosted here yet).
  struct Route {
    RangeId id = 0;
    RocksStateMachine* sm = nullptr;  // valid until Stop
  };
  // The range holding `key`; nullopt while the directory is not known here.
  std::optional<Route> RouteKey(std::string_view key);
  // The directory as this node knows it (key order).
  std::vector<RangeDescriptor> Directory() const;
  RocksStateMachine* StateMachine(RangeId id) const;
  // A process's HTTP address from the meta table, "" if unknown.
  std::string HttpAddrOf(raft::NodeId p) const;
  std::string NameOf(raft::NodeId p) const;

  // Host::SetPeer, and the peers written to <data>/peers (read again at the next start).
  raft::Status SetPeer(raft::NodeId p, const std::string& raft_addr);

  // One pass of upkeep (see the top of this file). Never blocks on Raft.
  void Reconcile();
  // On the meta range's leader: proposes `p`'s record; `done` as Host::Propose's, with
  // MetaState::Apply's reason ("" applied) as the value.
  void AddProcess(const ProcessRecord& p, std::chrono::milliseconds timeout,
                  raft::Host::Callback done);
  // On the meta range's leader: marks process `p` leaving; `done` as AddProcess's.
  void Leave(raft::NodeId p, std::chrono::milliseconds timeout, raft::Host::Callback done);
  // On the meta range's leader: orders the split of the range holding `key` at `key`
  // (docs/multi-raft.md, "Splits and leader balance"); `done` as AddProcess's. The split
  // itself follows: its range's leader proposes it, this leader publishes it.
  void OrderSplit(const std::string& key, std::chrono::milliseconds timeout,
                  raft::Host::Callback done);
  // Brings the routes up to date with the splits this node applied (before the meta
  // range publishes them). Any thread.
  void RefreshRoutes();
  // Bumped whenever the routes (Directory) change: a watch looks for new ranges then.
  std::uint64_t RoutesVersion() const { return routes_version_.load(); }

  // The sum of the ranges' RocksDB sizes (the quota's measure).
  std::uint64_t ApproximateSizeBytes() const;
  // ApproximateSizeBytes as of the last Reconcile (cheap: for each write's quota check).
  std::uint64_t SizeBytesSeen() const { return size_seen_.load(); }
  // The host's failure, else the first range's whose state machine cannot apply; "".
  std::string Failure() const;

 private:
  explicit RangesMode(RangesOptions options) : opts_(std::move(options)) {}
  void Log(raft::LogLevel level, std::string_view msg, std::vector<raft::LogField> fields) const {
    if (opts_.logger) opts_.logger->Log(level, "ranges", msg, fields);
  }
  // Peers follow the table: new or readdressed processes are set; those the previous
  // table had and `processes` has not are removed.
  void SyncPeers(const std::map<raft::NodeId, ProcessRecord>& processes);
  void HostRanges(const std::vector<RangeDescriptor>& ds);
  // Opens range d's state machine and hosts its group: resumed from the log, started
  // from the state a split left here (its voters' replicas), bootstrapped (a static
  // range, on the node that bootstrapped the cluster), or else joined empty (its leader
  // adds it and sends it a snapshot).
  void HostRange(const RangeDescriptor& d);
  // Range `id`'s state machine in <data>/ranges/<id>, opened (created if new) with this
  // node's listeners; null after logging why.
  std::unique_ptr<RocksStateMachine> OpenRange(RangeId id);
  // Start with restore_from: each part's state restored and its group started from it,
  // this node the only voter; the directory is published by Bootstrap (bootstrap_ranges_).
  raft::Status RestoreRanges();
  // Splits (docs/multi-raft.md, "Splits and leader balance"). Every node: the new range
  // of every split applied here is hosted and routed, and both halves compacted outside
  // their spans (HostSplits); the leader of an ordered range proposes its split (ExecuteSplits).
  // The meta range's leader: orders the split of a range past range_max_bytes (at its middle
  // key) or range_max_writes (where its writes part in halves), cancels an order not
  // carried out within kSplitOrderTimeout, and publishes every split applied here in the directory
  // (OrderSplits, PublishSplits).
  void HostSplits();
  void ExecuteSplits(const std::vector<RangeDescriptor>& directory);
  void OrderSplits(const std::vector<RangeDescriptor>& directory);
  void PublishSplits(const std::vector<RangeDescriptor>& directory);
  // Compacts range `id` outside its span once per run if it is a split's half
  // (RocksStateMachine::CompactOutsideSpan): the disk space of what the split moved out.
  void Settle(RangeId id, RocksStateMachine* sm);
  // Proposes `c` to the meta range (this node leads it), one at a time (proposing_);
  // logs what did not apply.
  void ProposeMeta(const MetaCommand& c, const char* what);
  void Bootstrap(const std::map<raft::NodeId, ProcessRecord>& processes, bool have_directory);
  void ReconcileMembers(const std::map<raft::NodeId, ProcessRecord>& processes);
  // Leaving processes: removed from the groups this node leads, then from the table.
  void ReconcileLeaving(const std::map<raft::NodeId, ProcessRecord>& processes);
  // Starts one membership change or transfer on group `g` unless one is in flight there.
  bool StartChange(RangeId g, const char* what, raft::NodeId p,
                   const std::function<void(raft::Host::Callback)>& start);
  // Leaders are spread: a node leading more data ranges than its share (ceil(ranges /
  // voters)) hands one to the voter leading fewest, one transfer at a time.
  void BalanceLeaders(const std::map<raft::NodeId, ProcessRecord>& processes);
  std::vector<RangeId> HostedGroups() const;  // the meta range, then the data ranges
  raft::Status SavePeers();                   // host_->Peers() into <data>/peers

  RangesOptions opts_;
  std::unique_ptr<raft::Host> host_;
  MetaStateMachine meta_;
  bool fresh_ = false;
  // What Bootstrap publishes as the directory on a fresh cluster: the static ranges of
  // -shards, or the ranges of a restored backup; then <data>/restoring is removed.
  std::vector<RangeDescriptor> bootstrap_ranges_;
  std::atomic<bool> stopped_{false};
  std::atomic<std::uint64_t> size_seen_{0};
  std::atomic<bool> proposing_{false};     // a bootstrap step in flight
  std::atomic<bool> transferring_{false};  // a leadership transfer in flight
  std::atomic<std::uint64_t> routes_version_{1};
  std::mutex changing_mu_;
  std::set<RangeId> changing_;  // groups with a membership change in flight; changing_mu_

  mutable std::shared_mutex mu_;
  RangeMap map_;                                               // guarded by mu_
  std::map<RangeId, std::unique_ptr<RocksStateMachine>> sms_;  // guarded by mu_
  std::map<raft::NodeId, ProcessRecord> processes_;            // guarded by mu_
  std::uint64_t seen_applied_ = 0;                             // Reconcile's thread
  // Reconcile's thread: the splits whose halves were compacted (by new range); when
  // this node, leading the meta range, first saw each order; when it last proposed each
  // order's split, leading the range.
  std::set<RangeId> compacted_;
  std::map<RangeId, std::pair<std::uint64_t, std::chrono::steady_clock::time_point>> orders_seen_;
  std::map<RangeId, std::pair<std::uint64_t, std::chrono::steady_clock::time_point>>
      split_proposed_;
};

}  // namespace kv
