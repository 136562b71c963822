// Host::Impl: the lanes and state behind raft::Host (see host.h; the plan is
// docs/multi-raft.md, "The runtime around HostCore").
//
// The lanes are a runtime::Env's, as Node::Impl's (runtime/env.h):
//
//   io     owns the runtime::HostCore (every group's RawNode), the version-4 Transport
//          and the ticker. Every input (group frame, proposal, read, tick) runs here.
//          Pump() collects the Ready of every touched group, sends its messages at once
//          (HostCore::Send: heartbeats coalesced per peer process), and hands the Readies
//          that need durability to the disk lane as one round.
//   disk   writes a round into the SharedLog (every group's entries and hard state, in
//          the order of the round) with one Sync for all, then posts the round back:
//          the io lane releases each group's messages_after_persist and Advances it. One
//          round is in flight at a time; the Readies taken meanwhile form the next, and
//          a group whose Ready waits in either still lets its appends and heartbeats out
//          (RawNode::TakeMessages), so a slow disk does not stall replication.
//   apply  one queue for every group; a task names its group and feeds its
//          StateMachine in that group's log order, completing proposals and reads;
//          restores a received snapshot; decides a group's next snapshot and freezes
//          its state (StateMachine::PrepareSnapshot).
//   snapshot  writes a frozen state into the group's snapshot store, then hands the
//          disk lane the record: the snapshot in the log, the log compacted, the
//          shared log's dead segments reclaimed (host_snapshot.cc).
//
// The io lane reads the log (each core's GroupStorage) while the disk lane writes it:
// SharedLog is one writer and concurrent readers, and a core reads only entries it was
// told are stable (Advance after the round's Sync).
//
// Ownership: io_checker_, disk_checker_ and apply_checker_ guard what only their lane
// touches (RAFT_GUARDED_BY); a Group's fields are owned as its comments say. Before Run
// and after the lanes stopped, Open and Stop run alone.
//
// Locks (leaves; none is held while another is taken, nor while calling user code):
// status_mu_, peers_mu_, Claims::mu, each Group's pending_mu. CreateGroup and RemoveGroup take
// none: their steps run on the lanes in order (a second create of a group finds it in the log and
// then in HostCore, and is refused there).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "base/thread_checker.h"
#include "raft/host.h"
#include "runtime/env.h"
#include "runtime/host_core.h"
#include "runtime/request_deadlines.h"
#include "runtime/snapshot_store.h"
#include "runtime/transport.h"
#include "storage/shared_log.h"

namespace raft {

namespace runtime {
class PeerTls;  // tls_context.h
}  // namespace runtime

using Clock = runtime::Clock;

class Host::Impl final : public runtime::TransportHandler {
 public:
  Impl(const HostOptions& options, std::unique_ptr<runtime::Env> env);
  ~Impl() override;

  Status Open();  // the shared log (recovery), the transport's listener
  void Run();     // starts the lanes and the ticker
  void Stop();

  std::vector<GroupId> LoggedGroups() const { return logged_groups_; }
  // Host::CreateGroup, or CreateGroupFromState when from_state > 0 (its `at`).
  void CreateGroup(GroupId g, const std::vector<NodeId>& voters, StateMachine* sm, Index from_state,
                   std::function<void(Status)> done);
  void RemoveGroup(GroupId g, std::function<void(Status)> done);
  void Propose(GroupId g, std::string data, std::chrono::milliseconds timeout, Host::Callback done);
  void ReadBarrier(GroupId g, std::chrono::milliseconds timeout, Host::Callback done);
  void Backup(GroupId g, std::string path, std::function<void(Result<BackupInfo>)> done);
  void Transfer(GroupId g, NodeId target, std::chrono::milliseconds timeout,
                std::function<void(Status)> done);
  // AddLearner, PromoteLearner (kAddVoter), RemoveReplica (kRemoveNode) of host.h.
  void ChangeMembership(GroupId g, ConfChange cc, std::chrono::milliseconds timeout,
                        Host::Callback done);
  Result<GroupStatusInfo> GroupStatus(GroupId g) const RAFT_EXCLUDES(status_mu_);
  NodeId GroupLeader(GroupId g) const RAFT_EXCLUDES(status_mu_);
  std::vector<GroupStatusInfo> GroupStatuses() const RAFT_EXCLUDES(status_mu_);
  HostMetrics GetMetrics() const RAFT_EXCLUDES(status_mu_);
  std::string Failure() const RAFT_EXCLUDES(status_mu_) {
    base::MutexLock l(&status_mu_);
    return failure_;
  }
  NodeId self() const { return opts_.self; }
  Status ReloadTls(const TlsOptions* replace);  // null: read the files again
  Status SetPeer(NodeId p, const std::string& addr) RAFT_EXCLUDES(peers_mu_);
  Status RemovePeer(NodeId p) RAFT_EXCLUDES(peers_mu_);
  std::map<NodeId, std::string> Peers() const RAFT_EXCLUDES(peers_mu_);
  void SetClusterId(std::string cluster_id);

  // TransportHandler (io lane). A host's transport speaks version 4 only, so the
  // version 2-3 callbacks never come; if one did, it is refused.
  Status OnMessage(Message m) override;
  void OnUnreachable(NodeId peer) override;
  void OnSnapshotSent(NodeId peer, bool ok) override;
  Status AcceptSnapshot(NodeId peer) override;
  void OnPeerAddress(NodeId peer, const std::string& addr) override;
  void OnPeerLost(NodeId peer) override;
  Status OnGroupMessage(NodeId peer, wire::GroupMessage gm) override;
  Status OnHostBeat(NodeId peer, wire::HostBeat hb) override;
  Status OnHostBeatAck(NodeId peer, wire::HostBeatAck ha) override;
  void OnPeerConnClosed(NodeId peer) override;
  Result<runtime::SnapshotStore*> AcceptGroupSnapshot(NodeId peer, std::uint64_t group) override;
  void OnGroupSnapshotSent(NodeId peer, std::uint64_t group, bool ok) override;

 private:
  struct PendingProposal {
    Term term = 0;
    runtime::SharedCallback cb;
  };
  // One hosted group, outside its core (which HostCore holds). Shared by the io lane's
  // map and the apply tasks and disk rounds that name it; a removed group's tasks find
  // `removed` set and do nothing.
  struct Group {
    GroupId id = 0;
    StateMachine* sm = nullptr;  // apply lane
    // <data_dir>/groups/<g>/snap, opened before the group runs; thread-safe. Shared with
    // retired_stores_ once the group is removed: a stream to a peer may still read it.
    std::shared_ptr<runtime::SnapshotStore> snaps;
    // Apply lane: the term and membership as of `applied` (what a snapshot taken there
    // records), the index of the last snapshot taken or restored, and whether one is
    // being written (set on the apply lane, cleared where the job ends).
    Term applied_term = 0;
    ConfState applied_conf;
    Index last_snapshot_index = 0;
    std::atomic<bool> snapshot_running{false};
    std::atomic<Index> snapshot_index{0};  // the log's snapshot, for GroupStatus
    std::atomic<bool> removed{false};
    std::atomic<Index> applied{0};  // written by the apply lane
    // Io lane: the last committed index handed to the apply lane (entries reach it once
    // and in order).
    Index queued_through = 0;
    // Added on the io lane, completed on the apply lane.
    base::Mutex pending_mu;
    std::map<Index, PendingProposal> proposals RAFT_GUARDED_BY(pending_mu);
    // Apply lane: reads waiting for their index to be applied.
    std::multimap<Index, runtime::SharedCallback> waiting_reads;
  };
  struct RoundItem {
    std::shared_ptr<Group> group;
    Ready rd;
  };
  struct ApplyTask {
    std::shared_ptr<Group> group;
    std::optional<SnapshotMeta> restore;  // installed in the log: restore it first
    std::vector<Entry> entries;
    std::vector<std::pair<Index, runtime::SharedCallback>> reads;
  };
  struct PendingRead {
    std::shared_ptr<Group> group;
    runtime::SharedCallback cb;
    std::uint64_t issued_tick = 0;
  };
  struct TransferWait {
    GroupId group;
    NodeId target;
    Clock::time_point deadline;
    std::function<void(Status)> done;
  };

  // io lane
  void Tick() RAFT_REQUIRES(io_checker_);
  void SchedulePump() RAFT_REQUIRES(io_checker_);
  // Readies of the touched groups: messages out, the ones needing no disk finished,
  // the rest into a round for the disk lane (when none is in flight); then Flush.
  void Pump() RAFT_REQUIRES(io_checker_);
  void Flush() RAFT_REQUIRES(io_checker_);  // HostCore's output to the transport
  void OnRoundDone(std::vector<RoundItem> round, Status s) RAFT_REQUIRES(io_checker_);
  // Steps 3-5 of the durability contract for one group (rd durable, or needing no sync).
  void FinishReady(const std::shared_ptr<Group>& group, RawNode& core, Ready rd)
      RAFT_REQUIRES(io_checker_);
  // Committed entries already durable here go to the apply lane at once, not after the
  // round that persists the group's Ready (Node's finding 13): those of a Ready below its
  // own entries (ApplyDurableCommitted, when it joins a round), and those committed while
  // it waits (RawNode::TakeCommitted, each Pump). QueueApply posts entries in log order
  // (asserted); FinishReady skips what was queued.
  void ApplyDurableCommitted(const std::shared_ptr<Group>& group, Ready& rd)
      RAFT_REQUIRES(io_checker_);
  void QueueApply(const std::shared_ptr<Group>& group, std::vector<Entry> entries)
      RAFT_REQUIRES(io_checker_);
  void SweepDeadlines() RAFT_REQUIRES(io_checker_);
  void Fail(const Status& s) RAFT_REQUIRES(io_checker_);
  void PublishStatus(const Group& group, const RawNode& core) RAFT_REQUIRES(io_checker_)
      RAFT_EXCLUDES(status_mu_);
  // Appends an entry to g's log on the io lane (`propose` runs on its core: Propose or
  // ProposeConfChange) and completes `done` when it is applied here, or with the error.
  void Append(GroupId g, std::chrono::milliseconds timeout, Host::Callback done,
              std::function<Result<LogPosition>(RawNode&)> propose);
  // kAddVoter only promotes: kInvalidArgument unless `id` is a learner in the leader's
  // latest configuration (as Node's; a voter that never answers can wedge a group).
  Status CheckPromotion(const RawNode& core, NodeId id) const;
  // The group, or null if not hosted.
  std::shared_ptr<Group> Find(GroupId g) RAFT_REQUIRES(io_checker_);
  // A callback that counts against max_pending_requests; null (and `done` run with
  // kShutdown or kBusy) when the host is stopping or full.
  runtime::SharedCallback Admit(Host::Callback& done);

  // CreateGroup's steps (host.cc), in this order: the store and where the state machine
  // stands (apply lane); a group from state's initial snapshot written (snapshot lane);
  // the group bootstrapped in the log (disk lane); its core started (io lane).
  class Answer;
  struct NewGroup;
  // The term of a group from state's initial snapshot: the same on every replica, so the
  // first leader's entries match at `at` + 1.
  static constexpr Term kFromStateTerm = 1;
  void CreateGroupApply(const std::shared_ptr<NewGroup>& ng) RAFT_REQUIRES(apply_checker_);
  void CreateGroupOnDisk(const std::shared_ptr<NewGroup>& ng) RAFT_REQUIRES(disk_checker_);
  void StartGroup(const std::shared_ptr<NewGroup>& ng, const Storage* storage)
      RAFT_REQUIRES(io_checker_);

  // disk lane
  Status PersistRound(const std::vector<RoundItem>& round) RAFT_REQUIRES(disk_checker_);

  // apply lane
  void RunApplyTask(ApplyTask& task) RAFT_REQUIRES(apply_checker_);
  void FailPending(Group& group, const Status& s);  // apply lane, or Stop
  // host_snapshot.cc. Where a group's state machine stands at CreateGroup: restored from
  // the log's snapshot when behind it, then the term and membership as of its applied
  // index (from the snapshot and the log's entries up to it). Returns the applied index.
  Result<Index> RecoverGroup(Group& group) RAFT_REQUIRES(apply_checker_);
  void TrackApplied(Group& group, const Entry& e) RAFT_REQUIRES(apply_checker_);
  // A received snapshot, installed in the log: the state machine is replaced by it (a
  // failure aborts the process: the state is unknown), proposals at or below it fail.
  void RestoreGroup(Group& group, const SnapshotMeta& meta) RAFT_REQUIRES(apply_checker_);
  Status RestoreStateMachine(Group& group, const SnapshotMeta& meta);
  // Every snapshot_entries applied: freeze the state and hand it to the snapshot lane.
  void MaybeSnapshot(const std::shared_ptr<Group>& group) RAFT_REQUIRES(apply_checker_);
  // snapshot lane: write it into the group's store, then RecordSnapshot on the disk lane.
  // WriteSnapshot is the writing: linked when the source releases its files.
  Status WriteSnapshot(Group& group, const SnapshotMeta& meta, std::unique_ptr<SnapshotSource> src)
      RAFT_REQUIRES(snap_checker_);
  void SnapshotJob(const std::shared_ptr<Group>& group, const SnapshotMeta& meta,
                   std::unique_ptr<SnapshotSource> src) RAFT_REQUIRES(snap_checker_);
  // disk lane: the snapshot in the log (unless an install passed it), the log compacted
  // to snapshot_trailing_entries behind it, dead segments reclaimed, old files removed.
  void RecordSnapshot(const std::shared_ptr<Group>& group, const SnapshotMeta& meta,
                      std::uint64_t ms) RAFT_REQUIRES(disk_checker_);
  // io lane: a kSnapshot message in the core's output streams the group's snapshot.
  void SendSnapshot(const wire::GroupMessage& gm) RAFT_REQUIRES(io_checker_);
  // Opens g's store (creating <data_dir>/groups/<g>/snap); any lane.
  Result<std::shared_ptr<runtime::SnapshotStore>> OpenStore(GroupId g);
  // Deletes a removed group's snapshot files and directories (disk lane; best effort).
  void RemoveStore(Group& group) RAFT_REQUIRES(disk_checker_);

  void Log(LogLevel level, std::string_view msg, std::vector<LogField> fields) const;

  const HostOptions opts_;
  base::ThreadChecker io_checker_{"io"};
  base::ThreadChecker disk_checker_{"disk"};
  base::ThreadChecker apply_checker_{"apply"};
  base::ThreadChecker snap_checker_{"snapshot"};

  // Declared first of the resources, destroyed last: the transport and lanes use it.
  const std::unique_ptr<runtime::Env> env_;
  bool running_ = false;  // Run() was called (the owner's thread)
  bool stopped_ = false;
  std::atomic<bool> stopping_{false};

  // The log: written on the disk lane only (and by Open and Stop, alone), read by the
  // io lane's cores through each group's GroupStorage.
  std::unique_ptr<storage::SharedLog> log_;
  std::vector<GroupId> logged_groups_;  // set by Open

  // Set by Open when opts_.peer_tls is enabled, never replaced; the transport borrows its
  // holder, so it is declared before transport_.
  std::unique_ptr<runtime::PeerTls> peer_tls_;
  std::unique_ptr<runtime::MessageTransport> transport_ RAFT_GUARDED_BY(io_checker_);
  runtime::HostCore core_ RAFT_GUARDED_BY(io_checker_);
  std::map<GroupId, std::shared_ptr<Group>> groups_ RAFT_GUARDED_BY(io_checker_);
  std::set<GroupId> dirty_ RAFT_GUARDED_BY(io_checker_);  // touched, Ready not yet taken
  // The groups whose Ready was taken and is not durable yet: in the round on the disk, or
  // in next_round_ (which the next round carries; at most one round is in flight).
  std::set<GroupId> pending_ RAFT_GUARDED_BY(io_checker_);
  std::vector<RoundItem> next_round_ RAFT_GUARDED_BY(io_checker_);
  bool round_in_flight_ RAFT_GUARDED_BY(io_checker_) = false;
  bool pump_scheduled_ RAFT_GUARDED_BY(io_checker_) = false;
  bool failed_ RAFT_GUARDED_BY(io_checker_) = false;
  std::uint64_t ticks_ RAFT_GUARDED_BY(io_checker_) = 0;
  runtime::DeadlineQueue deadlines_ RAFT_GUARDED_BY(io_checker_);
  // By ReadIndex context: read_ctx_prefix_ (a nonce per incarnation, as Node's) + a
  // counter. Re-issued every kReadRetryTicks without an answer.
  static constexpr std::uint64_t kReadRetryTicks = 3;
  std::map<std::string, PendingRead> pending_reads_ RAFT_GUARDED_BY(io_checker_);
  std::string read_ctx_prefix_ RAFT_GUARDED_BY(io_checker_);
  std::uint64_t next_read_id_ RAFT_GUARDED_BY(io_checker_) = 1;
  std::vector<TransferWait> transfers_ RAFT_GUARDED_BY(io_checker_);
  // Stores of removed groups: a snapshot stream the transport runs may still read one.
  std::vector<std::shared_ptr<runtime::SnapshotStore>> retired_stores_ RAFT_GUARDED_BY(io_checker_);

  std::atomic<std::size_t> pending_count_{0};

  // The processes known (HostOptions::peers, then SetPeer and RemovePeer), without self;
  // what the API checks a group's members against. The io lane's copies are the
  // transport's addresses and HostCore's peers.
  mutable base::Mutex peers_mu_;
  std::map<NodeId, std::string> peers_ RAFT_GUARDED_BY(peers_mu_);
  bool KnowsPeer(NodeId p) const RAFT_EXCLUDES(peers_mu_) {
    base::MutexLock l(&peers_mu_);
    return peers_.count(p) > 0;
  }

  // The groups hosted or being created: a second CreateGroup of one is refused at once,
  // before it could open the group's snapshot store a second time (which clears its
  // temporary files: a receive in progress). Shared with CreateGroup's answers, which
  // may outlive the host (see CreateGroup).
  struct Claims {
    base::Mutex mu;
    std::set<GroupId> claimed RAFT_GUARDED_BY(mu);
    bool Claim(GroupId g) RAFT_EXCLUDES(mu) {
      base::MutexLock l(&mu);
      return claimed.insert(g).second;
    }
    void Unclaim(GroupId g) RAFT_EXCLUDES(mu) {
      base::MutexLock l(&mu);
      claimed.erase(g);
    }
  };
  const std::shared_ptr<Claims> claims_ = std::make_shared<Claims>();

  mutable base::Mutex status_mu_;
  std::map<GroupId, std::pair<GroupStatusInfo, std::shared_ptr<Group>>> statuses_
      RAFT_GUARDED_BY(status_mu_);
  HostMetrics metrics_ RAFT_GUARDED_BY(status_mu_);
  std::string failure_ RAFT_GUARDED_BY(status_mu_);
};

}  // namespace raft
