// Node::Impl: the threads and state behind raft::Node (see node.h).
//
//   io thread     owns the RawNode, the Transport and the tick timer. Every input
//                 (message, proposal, read, tick) runs here; Pump() turns Readies into
//                 work for the other threads.
//   disk thread   persists each Ready (DiskStorage: append, hard state, one Sync) and
//                 posts the completion back to the io thread, which then releases the
//                 messages_after_persist and Advance()s. Only one Ready is in flight;
//                 meanwhile TakeMessages() lets appends and heartbeats leave.
//   apply thread  feeds the StateMachine in log order, completes proposals and reads,
//                 and decides when to snapshot.
//   snap thread   writes snapshot files from a SnapshotSource, then hands compaction
//                 to the disk thread.
// Lock order: storage_mu_ before pending_mu_; neither is held while calling user code.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>

#include "raft/disk_storage.h"
#include "raft/node.h"
#include "runtime/locked_storage.h"
#include "runtime/snapshot_store.h"
#include "runtime/transport.h"
#include "runtime/work_queue.h"

namespace raft {

using Clock = std::chrono::steady_clock;

// A callback that runs at most once, whichever of completion or timeout comes first.
class OnceCallback {
 public:
  explicit OnceCallback(Node::Callback cb) : cb_(std::move(cb)) {}
  bool Run(Result<std::string> r) {
    if (done_.exchange(true)) return false;
    cb_(std::move(r));
    return true;
  }
  bool done() const { return done_.load(); }

 private:
  Node::Callback cb_;
  std::atomic<bool> done_{false};
};
using SharedCallback = std::shared_ptr<OnceCallback>;

// Request deadlines; io thread only. One FIFO per distinct timeout: since the clock only
// moves forward, each FIFO expires in insertion order, so adding and sweeping cost O(1)
// amortized. Entries hold weak references: a request that completed is freed at once,
// not at its deadline. (A std::multimap of every request of the last `timeout` cost
// O(log n) per request and kept each one's callback and future alive until it expired:
// about 175,000 entries at 35,000 reads/s with a 5 s timeout.)
class DeadlineQueue {
 public:
  void Add(Clock::time_point now, std::chrono::milliseconds timeout, const SharedCallback& cb) {
    fifos_[timeout].emplace_back(now + timeout, cb);
  }
  // Fails every still-pending request whose deadline is at or before `now`.
  void Expire(Clock::time_point now, const Status& status) {
    for (auto& [timeout, fifo] : fifos_) {
      while (!fifo.empty() && fifo.front().first <= now) {
        if (auto cb = fifo.front().second.lock()) cb->Run(status);
        fifo.pop_front();
      }
    }
  }

 private:
  std::map<std::chrono::milliseconds,
           std::deque<std::pair<Clock::time_point, std::weak_ptr<OnceCallback>>>>
      fifos_;
};

class Node::Impl : public runtime::TransportHandler {
 public:
  Impl(const NodeOptions& options, StateMachine* sm);
  ~Impl() override;

  Status Open();  // storage, snapshot store, state machine recovery, core, listener
  void Run();     // start threads
  void Stop();

  // Public API entry points (any thread).
  void Propose(std::string data, std::chrono::milliseconds timeout, Node::Callback done,
               bool conf_change, ConfChange cc);
  void ReadBarrier(std::chrono::milliseconds timeout, Node::Callback done);
  void Transfer(NodeId target, std::chrono::milliseconds timeout, std::function<void(Status)> done);
  NodeStatusInfo GetStatus() const;
  Role role() const;
  NodeId leader() const;
  NodeMetrics GetMetrics() const;
  std::vector<MemberInfo> Members() const;
  NodeId id() const { return opts_.self.id; }

  // TransportHandler (io thread).
  void OnMessage(Message m) override;
  void OnUnreachable(NodeId peer) override;
  void OnPeerLost(NodeId peer) override;
  void OnSnapshotSent(NodeId peer, bool ok) override;
  void OnPeerAddress(NodeId peer, const std::string& addr) override;

 private:
  struct ApplyTask {
    std::vector<Entry> entries;
    std::optional<SnapshotMeta> restore;
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
  void Tick();
  void Pump();
  void SchedulePump();  // one Pump for everything queued on the io thread until it runs
  void SendAll(std::vector<Message>& msgs);
  void OnPersisted(Ready rd, Status s);
  void FinishReady(Ready rd);
  void LearnMembers(const std::vector<Entry>& entries);
  void LearnMember(const MemberInfo& m);
  void SweepDeadlines();
  void Fail(const Status& s);
  void Log(LogLevel level, std::string_view msg, std::vector<LogField> fields) const;
  Status PersistReady(const Ready& rd, const std::optional<HardState>& hs);  // disk thread

  // apply thread
  void ApplyLoop();
  void ApplyEntries(const std::vector<Entry>& entries);
  void TrackApplied(const Entry& e);  // applied_term_, applied_conf_, applied_members_
  void RestoreSnapshot(const SnapshotMeta& meta);
  void ServeReads();
  void MaybeSnapshot();
  void SnapshotJob(SnapshotMeta meta, std::vector<MemberInfo> members,
                   std::unique_ptr<SnapshotSource> src);

  NodeOptions opts_;
  StateMachine* sm_;

  asio::io_context io_;
  std::thread io_thread_;
  asio::steady_timer tick_timer_;
  std::unique_ptr<runtime::Transport> transport_;

  mutable std::mutex storage_mu_;
  std::unique_ptr<DiskStorage> disk_;
  std::unique_ptr<LockedStorage> storage_view_;
  std::unique_ptr<runtime::SnapshotStore> snaps_;
  std::unique_ptr<RawNode> raw_;

  // io-thread state
  bool persisting_ = false;
  bool pump_scheduled_ = false;
  bool failed_ = false;
  HardState hard_state_;                  // the newest one a Ready carried
  HardState written_hard_state_;          // the newest one handed to the disk thread
  std::map<NodeId, MemberInfo> members_;  // address book (guarded by status_mu_ for readers)
  struct PendingRead {
    SharedCallback cb;
    std::uint64_t issued_tick;  // re-issued after kReadRetryTicks without an answer
  };
  // A ReadIndex request (or its answer) can be lost on the way to/from the leader, and
  // the core does not resend it; the runtime re-issues it with the same context.
  static constexpr std::uint64_t kReadRetryTicks = 3;
  std::map<std::string, PendingRead> pending_reads_;  // by ReadIndex context
  std::uint64_t ticks_ = 0;
  DeadlineQueue deadlines_;
  std::uint64_t next_read_id_ = 1;
  NodeId last_leader_ = kNoNode;
  struct TransferWait {
    NodeId target;
    Clock::time_point deadline;
    std::function<void(Status)> done;
  };
  std::vector<TransferWait> transfers_;

  // disk thread
  runtime::WorkQueue<std::function<void()>> disk_q_;
  std::thread disk_thread_;

  // apply thread
  runtime::WorkQueue<ApplyTask> apply_q_;
  std::thread apply_thread_;
  std::mutex pending_mu_;
  std::map<Index, PendingProposal> proposals_;          // by log index (pending_mu_)
  std::multimap<Index, SharedCallback> waiting_reads_;  // apply thread only
  std::atomic<Index> applied_{0};
  ConfState applied_conf_;                        // apply thread: membership as of applied_
  std::map<NodeId, MemberInfo> applied_members_;  // apply thread
  Term applied_term_ = 0;
  Index last_snapshot_index_ = 0;  // apply thread
  std::atomic<bool> snapshot_running_{false};

  // snapshot thread
  runtime::WorkQueue<std::function<void()>> snap_q_;
  std::thread snap_thread_;

  // status (read by any thread)
  mutable std::mutex status_mu_;
  NodeStatus core_status_;
  std::vector<MemberInfo> members_view_;
  std::string failure_;
  NodeMetrics metrics_;

  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> pending_count_{0};
  bool stopped_ = false;
};

}  // namespace raft
