// Node::Impl: the threads and state behind raft::Node (see node.h).
//
// The four "threads" below are the lanes of a runtime::Env (runtime/env.h): threads in
// production (NewThreadEnv), one seeded scheduler in the full-node simulator
// (tests/nodesim). Nothing here creates a thread, reads a clock, opens a file or a
// socket except through env_.
//
//   io thread     owns the RawNode, the Transport and the tick timer. Every input
//                 (message, proposal, read, tick) runs here; Pump() turns Readies into
//                 work for the other threads.
//   disk thread   persists each Ready (DiskStorage: append, hard state, one Sync) and
//                 posts the completion back to the io thread, which then releases the
//                 messages_after_persist and Advance()s. Only one Ready is in flight;
//                 meanwhile TakeMessages() lets appends and heartbeats leave and
//                 TakeCommitted() hands newly committed, locally durable entries to the
//                 apply thread.
//   apply thread  feeds the StateMachine in log order, completes proposals and reads,
//                 and decides when to snapshot.
//   snap thread   writes snapshot files from a SnapshotSource, then hands compaction
//                 to the disk thread.
//
// Ownership is checked, not only written down: state owned by one thread is
// RAFT_GUARDED_BY its base::ThreadChecker (io_checker_, apply_checker_, ...), the
// functions that run there RAFT_REQUIRE it, and work posted to a thread starts with
// <thread>_checker_.Check(), which aborts on any other thread (base/thread_checker.h).
// Before Run() and after the threads are joined no checker is bound: Open() and Stop()
// run alone and may touch everything.
//
// Shared state is RAFT_GUARDED_BY its mutex. Lock order (a lock on the left may be held
// while taking one on its right, never the reverse):
//   storage_mu_ -> status_mu_        PersistReady: fsync metrics under the storage lock
//   storage_mu_ -> cache_mu_         LockedStorage::Publish*, called with storage_mu_ held
//   storage_mu_ -> pending_mu_       (not nested today; the order if it ever is)
//   storage_mu_, cache_mu_ -> DiskStorage's index lock (a leaf inside the storage)
//   status_mu_, pending_mu_ and the WorkQueues' mutexes are leaves: nothing is taken while
//   one of them is held. The io thread never takes storage_mu_: LockedStorage reads the
//   disk through DiskStorage's thread-safe reads, which never wait for an fsync.
//   status_mu_ and pending_mu_ are never held together.
//   PeerTls's lock -> the TlsContextHolder's lock (a leaf), taken by ReloadTls only.
// No runtime lock is held while calling user code (StateMachine, Logger, callbacks).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <variant>

#include "base/mutex.h"
#include "base/thread_checker.h"
#include "raft/disk_storage.h"
#include "raft/node.h"
#include "runtime/env.h"
#include "runtime/locked_storage.h"
#include "runtime/request_deadlines.h"
#include "runtime/snapshot_store.h"
#include "runtime/transport.h"
#include "wire/wire_format.h"

namespace raft::runtime {
class PeerTls;  // runtime/tls_context.h
}  // namespace raft::runtime

namespace raft {

using Clock = runtime::Clock;

using runtime::DeadlineQueue;
using runtime::OnceCallback;
using runtime::SharedCallback;

class Node::Impl : public runtime::TransportHandler {
 public:
  // `env` runs the node: runtime::NewThreadEnv() in production, the full-node
  // simulator's SimEnv in tests/nodesim (runtime/env.h).
  Impl(const NodeOptions& options, StateMachine* sm, std::unique_ptr<runtime::Env> env);
  ~Impl() override;

  Status Open();  // storage, snapshot store, state machine recovery, core, listener
  void Run();     // start the lanes (threads) and the ticker
  void Stop();    // graceful: every lane finishes the work it has, the log is synced

  // Public API entry points (any thread).
  void Propose(std::string data, std::chrono::milliseconds timeout, Node::Callback done,
               bool conf_change, ConfChange cc);
  void ReadBarrier(std::chrono::milliseconds timeout, Node::Callback done);
  void Transfer(NodeId target, std::chrono::milliseconds timeout, std::function<void(Status)> done);
  NodeStatusInfo GetStatus() const;
  Role role() const;
  bool storage_failed() const { return storage_failed_.load(); }
  NodeId leader() const;
  NodeMetrics GetMetrics() const;
  std::vector<MemberInfo> Members() const;
  NodeId id() const { return opts_.self.id; }
  // Node::ReloadTls: `replace` null re-reads the current TlsOptions.
  Status ReloadTls(const TlsOptions* replace);
  void SetClusterId(std::string cluster_id);  // Node::SetClusterId
  // Node::Backup (node_backup.cc): `done` runs exactly once, on the snapshot thread, or
  // with kShutdown on whichever thread drops the work when a lane has stopped.
  void Backup(std::string path, std::function<void(Result<BackupInfo>)> done);

  // TransportHandler (io thread).
  Status OnMessage(Message m) override;
  void OnUnreachable(NodeId peer) override;
  void OnPeerLost(NodeId peer) override;
  void OnSnapshotSent(NodeId peer, bool ok) override;
  void OnPeerAddress(NodeId peer, const std::string& addr) override;
  void OnPeerConnClosed(NodeId peer) override;
  Status AcceptSnapshot(NodeId peer) override;

 private:
  void OnRefused(const Message& m, const Status& s) RAFT_REQUIRES(io_checker_);

  struct ApplyTask {
    std::vector<Entry> entries;
    std::optional<SnapshotMeta> restore;
    // The installed snapshot's file, opened on the disk thread right after it became the
    // log's snapshot: a newer snapshot's cleanup may remove the name before the apply
    // thread gets here, and an open file stays readable (found by the full-node
    // simulator, issue 13). Null: RestoreSnapshot opens it by name.
    std::shared_ptr<runtime::SnapshotFileReader> restore_reader;
    std::vector<std::pair<Index, SharedCallback>> reads;
  };
  struct PendingProposal {
    Term term;
    SharedCallback cb;
    Clock::time_point start;
  };
  struct Deadline {
    Clock::time_point at;
    SharedCallback cb;
  };

  // io thread
  void Tick() RAFT_REQUIRES(io_checker_);
  void Pump() RAFT_REQUIRES(io_checker_);
  // One Pump for everything queued on the io thread until it runs.
  void SchedulePump() RAFT_REQUIRES(io_checker_);
  void SendAll(std::vector<Message>& msgs) RAFT_REQUIRES(io_checker_);
  // `snap` is the Ready's snapshot file, opened once it was installed (or null).
  void OnPersisted(Ready rd, Status s, std::shared_ptr<runtime::SnapshotFileReader> snap)
      RAFT_REQUIRES(io_checker_);
  // Queues the committed entries of `rd` that are already durable here for the apply
  // thread (moving their payloads out of `rd`), before `rd` goes to the disk thread.
  void ApplyDurableCommitted(Ready& rd) RAFT_REQUIRES(io_checker_);
  // While a Ready persists: queues entries committed meanwhile (RawNode::TakeCommitted).
  void TakeDurableCommitted() RAFT_REQUIRES(io_checker_);
  void FinishReady(Ready rd, std::shared_ptr<runtime::SnapshotFileReader> snap = nullptr)
      RAFT_REQUIRES(io_checker_);
  void LearnMembers(const std::vector<Entry>& entries) RAFT_REQUIRES(io_checker_);
  void LearnMember(const MemberInfo& m) RAFT_REQUIRES(io_checker_);
  // How log lines name a member: its name when known, else its id.
  std::string MemberLabel(NodeId id) RAFT_REQUIRES(io_checker_);
  void SweepDeadlines() RAFT_REQUIRES(io_checker_);
  // NodeOptions::peer_reap_ms: forgets the transport's peers outside the core's latest
  // configuration that have been silent that long, and dials again a member whose
  // address an earlier reap forgot (the entry that removed it was truncated).
  void ReapPeers() RAFT_REQUIRES(io_checker_);
  void Fail(const Status& s) RAFT_REQUIRES(io_checker_);
  // Pauses or resumes handing out committed entries from the apply queue's size
  // (NodeOptions::max_apply_queue_bytes); before every GetReady/TakeCommitted.
  void UpdateApplyPause() RAFT_REQUIRES(io_checker_);
  // PromoteLearner (the API's only kAddVoter): kInvalidArgument unless `id` is a learner
  // in the leader's latest configuration. The core would add an unknown id as a new
  // voter, and a voter that never answers can wedge the cluster (with one member: the
  // change never commits, and no other change may start until it does).
  Status CheckPromotion(NodeId id) const RAFT_REQUIRES(io_checker_);
  void Log(LogLevel level, std::string_view msg, std::vector<LogField> fields) const;

  // disk thread
  Status PersistReady(const Ready& rd, const std::optional<HardState>& hs)
      RAFT_REQUIRES(disk_checker_);

  // Any thread: queues `task` on the apply lane.
  void PostApply(ApplyTask task);

  // apply thread
  void RunApplyTask(ApplyTask& task) RAFT_REQUIRES(apply_checker_);
  void ApplyEntries(const std::vector<Entry>& entries) RAFT_REQUIRES(apply_checker_);
  // applied_term_, applied_conf_, applied_members_
  void TrackApplied(const Entry& e) RAFT_REQUIRES(apply_checker_);
  void RestoreSnapshot(const SnapshotMeta& meta, runtime::SnapshotFileReader* reader)
      RAFT_REQUIRES(apply_checker_);
  // StateMachine::RestoreFiles for a linked snapshot the state machine takes as files,
  // else Restore through `reader`. The apply thread, or Open before it starts.
  Status RestoreStateMachine(runtime::SnapshotFileReader* reader, const SnapshotMeta& meta)
      RAFT_REQUIRES(apply_checker_);
  void ServeReads() RAFT_REQUIRES(apply_checker_);
  void MaybeSnapshot() RAFT_REQUIRES(apply_checker_);

  // The lowest match index of the followers, on the leader (the max Index elsewhere):
  // what compaction keeps, within catchup_log_bytes, for followers catching up. Any
  // thread.
  Index CatchUpNeed() RAFT_EXCLUDES(status_mu_);

  // snapshot thread
  // copy_of_installed: taken right after an install at its index; made only if the
  // source releases its files (a linked copy that replaces the received file).
  // prepare_us: the apply thread's PrepareSnapshot time, for the log line.
  void SnapshotJob(SnapshotMeta meta, std::vector<MemberInfo> members,
                   std::unique_ptr<SnapshotSource> src, bool copy_of_installed,
                   std::uint64_t prepare_us) RAFT_REQUIRES(snap_checker_);

  // Open()'s steps, in order (node_open.cc). They run before the threads start.
  struct Recovered;  // what the steps hand on to each other
  // kInvalidArgument naming the option when the size limits disagree (node_open.cc).
  Status ValidateOptions() const;
  Status LoadTls();  // peer_tls_ from opts_.peer_tls, when it is enabled
  Status OpenStorage();
  Status LoadSnapshotMeta(Recovered* r);
  Status RestoreIfAsked(Recovered* r);  // NodeOptions::restore_from
  Status BootstrapIfFresh(const Recovered& r);
  Status ForceNewClusterIfAsked(Recovered* r);
  Status RecoverStateMachine(Recovered* r) RAFT_REQUIRES(io_checker_, apply_checker_);
  Status ReplayLog(const Recovered& r) RAFT_REQUIRES(io_checker_, apply_checker_);
  Status CreateCore(const Recovered& r) RAFT_REQUIRES(io_checker_);
  Status StartTransport() RAFT_REQUIRES(io_checker_);
  void PublishInitialStatus(const Recovered& r) RAFT_REQUIRES(io_checker_);

  // The frame limit of our transport and, the same build, of every peer's decoder (not a
  // NodeOption: docs/runtime.md). ValidateOptions checks the size limits against it.
  static constexpr std::uint32_t kFrameBytesMax = wire::kFramePayloadBytesMaxDefault;
  const NodeOptions opts_;  // immutable after construction: any thread reads it
  StateMachine* const sm_ RAFT_PT_GUARDED_BY(apply_checker_);

  base::ThreadChecker io_checker_{"io"};
  base::ThreadChecker disk_checker_{"disk"};
  base::ThreadChecker apply_checker_{"apply"};
  base::ThreadChecker snap_checker_{"snapshot"};

  // Time, scheduling, files, network. Declared first of the resources, so it is
  // destroyed last: the transport and the lanes' work refer to it.
  const std::unique_ptr<runtime::Env> env_;
  bool running_ = false;  // Run() was called (Node's owner thread)
  // TLS on the Raft port: set by Open() when opts_.peer_tls is enabled, then never
  // replaced (the holder swaps contexts inside, thread-safe); the transport borrows it,
  // so it is declared before transport_.
  std::unique_ptr<runtime::PeerTls> peer_tls_;
  std::unique_ptr<runtime::MessageTransport> transport_ RAFT_GUARDED_BY(io_checker_);

  // Lock order: see the top of this file.
  mutable base::Mutex storage_mu_ RAFT_ACQUIRED_BEFORE(status_mu_, pending_mu_);
  std::unique_ptr<DiskStorage> disk_ RAFT_GUARDED_BY(storage_mu_);
  std::unique_ptr<LockedStorage> storage_view_;    // thread-safe (locked_storage.h)
  std::unique_ptr<runtime::SnapshotStore> snaps_;  // thread-safe (snapshot_store.h)
  std::unique_ptr<RawNode> raw_ RAFT_GUARDED_BY(io_checker_);

  // io-thread state
  bool persisting_ RAFT_GUARDED_BY(io_checker_) = false;
  // Last committed index handed to the apply thread (by ApplyDurableCommitted,
  // TakeCommitted or FinishReady, or restored from a snapshot): entries reach the apply
  // queue exactly once and in order, which TakeDurableCommitted asserts.
  Index queued_through_ RAFT_GUARDED_BY(io_checker_) = 0;
  bool pump_scheduled_ RAFT_GUARDED_BY(io_checker_) = false;
  bool failed_ RAFT_GUARDED_BY(io_checker_) = false;
  // The newest hard state a Ready carried, and the newest one handed to the disk thread.
  HardState hard_state_ RAFT_GUARDED_BY(io_checker_);
  HardState written_hard_state_ RAFT_GUARDED_BY(io_checker_);
  // The address book; readers on other threads use members_view_.
  std::map<NodeId, MemberInfo> members_ RAFT_GUARDED_BY(io_checker_);
  struct PendingRead {
    SharedCallback cb;
    std::uint64_t issued_tick;  // re-issued after kReadRetryTicks without an answer
  };
  // A ReadIndex request (or its answer) can be lost on the way to/from the leader, and
  // the core does not resend it; the runtime re-issues it with the same context.
  static constexpr std::uint64_t kReadRetryTicks = 3;
  // By ReadIndex context.
  std::map<std::string, PendingRead> pending_reads_ RAFT_GUARDED_BY(io_checker_);
  std::uint64_t ticks_ RAFT_GUARDED_BY(io_checker_) = 0;
  // ReapPeers: the tick each peer id last sent a message the core accepted (or when the
  // reaper first saw it outside the membership), and the tick of the next reap. Holds the
  // transport's peers and the ids heard from within peer_reap_ms, no more.
  std::map<NodeId, std::uint64_t> heard_at_tick_ RAFT_GUARDED_BY(io_checker_);
  std::uint64_t next_reap_tick_ RAFT_GUARDED_BY(io_checker_) = 0;
  DeadlineQueue deadlines_ RAFT_GUARDED_BY(io_checker_);
  // A ReadIndex context is read_ctx_prefix_ + next_read_id_. The counter restarts with
  // every incarnation; the prefix is a random 64-bit nonce drawn at Open (CreateCore), so
  // an answer addressed to an earlier incarnation (still queued at the leader or in a
  // PeerConn across our restart) never matches a barrier of this one: its read index
  // was fixed before this barrier was issued, so it would be a stale read.
  std::string read_ctx_prefix_ RAFT_GUARDED_BY(io_checker_);
  std::uint64_t next_read_id_ RAFT_GUARDED_BY(io_checker_) = 1;
  NodeId last_leader_ RAFT_GUARDED_BY(io_checker_) = kNoNode;
  // Refused messages are logged at most once per kRefusedLogInterval; the next line says
  // how many were refused without a line of their own meanwhile.
  static constexpr std::chrono::seconds kRefusedLogInterval{1};
  std::optional<Clock::time_point> refused_logged_at_ RAFT_GUARDED_BY(io_checker_);
  std::uint64_t refused_unlogged_ RAFT_GUARDED_BY(io_checker_) = 0;
  struct TransferWait {
    NodeId target;
    Clock::time_point deadline;
    std::function<void(Status)> done;
  };
  std::vector<TransferWait> transfers_ RAFT_GUARDED_BY(io_checker_);

  // apply thread
  base::Mutex pending_mu_;
  // By log index: added on the io thread, completed on the apply thread.
  std::map<Index, PendingProposal> proposals_ RAFT_GUARDED_BY(pending_mu_);
  std::multimap<Index, SharedCallback> waiting_reads_ RAFT_GUARDED_BY(apply_checker_);
  std::atomic<Index> applied_{0};  // written by the apply thread (and Open)
  // Entry bytes posted to the apply lane and not yet applied: PostApply adds, the apply
  // thread subtracts after the task (and wakes the io thread when it falls below the bound).
  std::atomic<std::uint64_t> apply_queue_bytes_{0};
  bool apply_paused_ RAFT_GUARDED_BY(io_checker_) = false;
  // Membership and term as of applied_.
  ConfState applied_conf_ RAFT_GUARDED_BY(apply_checker_);
  std::map<NodeId, MemberInfo> applied_members_ RAFT_GUARDED_BY(apply_checker_);
  Term applied_term_ RAFT_GUARDED_BY(apply_checker_) = 0;
  // Written by the apply thread, read by GetStatus() on any thread.
  std::atomic<Index> last_snapshot_index_{0};
  std::atomic<bool> snapshot_running_{false};
  // Set by an install: the next MaybeSnapshot takes one at once, so that a linked
  // snapshot of the restored state replaces the received file (its bytes a second copy
  // of the state) as soon as possible. Apply thread.
  bool snapshot_after_install_ RAFT_GUARDED_BY(apply_checker_) = false;

  // status (read by any thread)
  mutable base::Mutex status_mu_;
  NodeStatus core_status_ RAFT_GUARDED_BY(status_mu_);
  std::vector<MemberInfo> members_view_ RAFT_GUARDED_BY(status_mu_);
  std::string failure_ RAFT_GUARDED_BY(status_mu_);
  NodeMetrics metrics_ RAFT_GUARDED_BY(status_mu_);

  std::atomic<bool> stopping_{false};
  std::atomic<bool> storage_failed_{false};  // set by Fail (io thread), read anywhere
  std::atomic<std::size_t> pending_count_{0};
  bool stopped_ = false;  // the thread that calls Stop() (Node's owner)
};

}  // namespace raft
