// raft::Node: construction, recovery, shutdown and the thread-safe API surface.
#include <pthread.h>

#include <filesystem>
#include <random>

#include "runtime/node_impl.h"

namespace raft {

const std::uint64_t NodeMetrics::kLatencyBucketsUs[NodeMetrics::kBuckets] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

// ---------------------------------------------------------------- Impl: lifecycle

Node::Impl::Impl(const NodeOptions& options, StateMachine* sm)
    : opts_(options), sm_(sm), tick_timer_(io_) {
  if (opts_.listen_addr.empty()) opts_.listen_addr = opts_.self.raft_addr;
  if (opts_.self.id == kNoNode) opts_.self.id = NodeIdFromName(opts_.self.name);
}

Node::Impl::~Impl() { Stop(); }

void Node::Impl::Log(LogLevel level, std::string_view msg, std::vector<LogField> fields) const {
  if (opts_.logger && opts_.logger->Enabled(level)) opts_.logger->Log(level, "raft", msg, fields);
}

Status Node::Impl::Open() {
  std::error_code ec;
  std::filesystem::create_directories(opts_.data_dir, ec);
  if (ec)
    return Status(ErrorCode::kIOError, "cannot create " + opts_.data_dir + ": " + ec.message());
  DiskStorageOptions dopts;
  dopts.segment_bytes_target = opts_.segment_bytes;
  auto disk = DiskStorage::Open(opts_.data_dir + "/log", dopts);
  if (!disk.ok()) return disk.status();
  disk_ = std::move(disk).value();
  for (const auto& note : disk_->recovery_notes())
    Log(LogLevel::kWarn, "log recovery", {{"note", note}});
  auto snaps = runtime::SnapshotStore::Open(opts_.data_dir + "/snap");
  if (!snaps.ok()) return snaps.status();
  snaps_ = std::move(snaps).value();
  storage_view_ = std::make_unique<LockedStorage>(&storage_mu_, disk_.get());
  storage_view_->Publish();

  HardState hs = disk_->InitialHardState();
  auto snap = disk_->Snapshot();
  if (!snap.ok()) return snap.status();
  bool fresh = disk_->LastIndex() == 0 && hs.term == 0 && snap->index == 0;
  if (fresh && opts_.bootstrap) {
    Entry e;
    e.term = 1;
    e.index = 1;
    e.type = EntryType::kConfChange;
    e.data = EncodeConfChange(
        ConfChange{ConfChangeType::kAddVoter, opts_.self.id, EncodeMemberInfo(opts_.self)});
    if (Status s = disk_->Append({e}); !s.ok()) return s;
    if (Status s = disk_->SetHardState(HardState{1, kNoNode, 1}); !s.ok()) return s;
    if (Status s = disk_->Sync(); !s.ok()) return s;
    storage_view_->Publish();
    Log(LogLevel::kInfo, "bootstrapped a new one-member cluster", {{"id", opts_.self.name}});
  }

  // Membership and addresses: the snapshot's header, then the log.
  applied_conf_ = snap->conf;
  if (snap->index > 0) {
    auto reader = snaps_->OpenReader(snap->index, snap->term);
    if (!reader.ok())
      return Status(ErrorCode::kCorruption,
                    "the log's snapshot " + std::to_string(snap->index) +
                        " has no readable file: " + reader.status().ToString());
    for (const auto& m : (*reader)->header().members) applied_members_[m.id] = m;
  }
  for (const auto& [id, m] : applied_members_) members_[id] = m;
  // State machine recovery: restore from the snapshot if the machine is behind it.
  Index sm_applied = sm_->AppliedIndex();
  if (snap->index > sm_applied) {
    auto reader = snaps_->OpenReader(snap->index, snap->term);
    if (!reader.ok()) return reader.status();
    if (Status s = sm_->Restore(reader->get(), *snap); !s.ok()) return s;
    sm_applied = snap->index;
    Log(LogLevel::kInfo, "state machine restored from snapshot",
        {{"index", std::to_string(snap->index)}});
  }
  // The commit index is written without its own fsync (Ready::must_sync), so it may lag
  // what the state machine applied; the core raises it (Config::applied). Applied beyond
  // the log's end, though, means the log lost entries it had made durable.
  if (sm_applied > disk_->LastIndex())
    return Status(ErrorCode::kCorruption,
                  "state machine applied index " + std::to_string(sm_applied) +
                      " is beyond the log's last index " + std::to_string(disk_->LastIndex()));
  applied_ = sm_applied;
  applied_term_ = snap->term;
  last_snapshot_index_ = snap->index;
  for (Index lo = disk_->FirstIndex(); lo <= disk_->LastIndex();) {
    auto ents = disk_->Entries(lo, disk_->LastIndex() + 1, 16 << 20);
    if (!ents.ok()) return ents.status();
    LearnMembers(*ents);
    for (const auto& e : *ents) {
      if (e.index > sm_applied) break;
      TrackApplied(e);
    }
    lo += ents->size();
  }

  hard_state_ = written_hard_state_ = disk_->InitialHardState();
  Config cfg;
  cfg.id = opts_.self.id;
  cfg.election_ticks = opts_.election_ticks;
  cfg.heartbeat_ticks = opts_.heartbeat_ticks;
  cfg.seed = std::random_device{}();
  cfg.applied = sm_applied;
  cfg.max_msg_bytes = opts_.max_msg_bytes;
  cfg.max_inflight_msgs = opts_.max_inflight_msgs;
  cfg.max_uncommitted_bytes = opts_.max_uncommitted_bytes;
  cfg.pre_vote = opts_.pre_vote;
  cfg.check_quorum = opts_.check_quorum;
  auto raw = RawNode::Create(cfg, storage_view_.get());
  if (!raw.ok()) return raw.status();
  raw_ = std::move(raw).value();

  runtime::TransportOptions topts;
  topts.self = opts_.self.id;
  topts.self_addr = opts_.self.raft_addr;
  topts.listen_addr = opts_.listen_addr;
  topts.cluster_id = opts_.cluster_id;
  topts.cluster_secret = opts_.cluster_secret;
  topts.peer_queue_bytes_max = opts_.peer_queue_bytes_max;
  topts.snapshot_chunk_bytes = opts_.snapshot_chunk_bytes;
  topts.logger = opts_.logger;
  transport_ = std::make_unique<runtime::Transport>(io_, topts, this, snaps_.get());
  if (Status s = transport_->Listen(); !s.ok()) return s;
  for (const auto& [id, m] : members_) transport_->SetPeerAddress(id, m.raft_addr);
  {
    std::lock_guard<std::mutex> l(status_mu_);
    core_status_ = raw_->GetStatus();
    members_view_.clear();  // members known from the snapshot header count too
    for (const auto& [id, mi] : members_) members_view_.push_back(mi);
  }
  Log(LogLevel::kInfo, "node started",
      {{"id", opts_.self.name},
       {"raft_addr", opts_.self.raft_addr},
       {"term", std::to_string(hs.term)},
       {"applied", std::to_string(sm_applied)},
       {"last_index", std::to_string(disk_->LastIndex())}});
  return Status::Ok();
}

namespace {
// Names show in top -H, perf and /proc/<pid>/task/*/comm (at most 15 characters).
void NameThread(const char* name) { pthread_setname_np(pthread_self(), name); }
}  // namespace

void Node::Impl::Run() {
  disk_thread_ = std::thread([this] {
    NameThread("raft-disk");
    while (auto job = disk_q_.Pop()) (*job)();
  });
  apply_thread_ = std::thread([this] {
    NameThread("raft-apply");
    ApplyLoop();
  });
  snap_thread_ = std::thread([this] {
    NameThread("raft-snapshot");
    while (auto job = snap_q_.Pop()) (*job)();
  });
  asio::post(io_, [this] { Tick(); });
  io_thread_ = std::thread([this] {
    NameThread("raft-io");
    auto guard = asio::make_work_guard(io_);
    io_.run();
  });
}

void Node::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  if (io_thread_.joinable()) {
    asio::post(io_, [this] {
      transport_->Stop();
      tick_timer_.cancel();
      for (auto& [ctx, r] : pending_reads_)
        r.cb->Run(Status(ErrorCode::kShutdown, "node stopping"));
      pending_reads_.clear();
      for (auto& t : transfers_) t.done(Status(ErrorCode::kShutdown, "node stopping"));
      transfers_.clear();
      io_.stop();
    });
    io_thread_.join();
  }
  snap_q_.Close();
  if (snap_thread_.joinable()) snap_thread_.join();
  disk_q_.Close();
  if (disk_thread_.joinable()) disk_thread_.join();
  apply_q_.Close();
  if (apply_thread_.joinable()) apply_thread_.join();
  std::map<Index, PendingProposal> left;
  {
    std::lock_guard<std::mutex> l(pending_mu_);
    left.swap(proposals_);
  }
  for (auto& [i, p] : left)
    p.cb->Run(Status(ErrorCode::kShutdown, "node stopped; outcome unknown"));
  for (auto& [i, cb] : waiting_reads_) cb->Run(Status(ErrorCode::kShutdown, "node stopped"));
  waiting_reads_.clear();
  if (disk_) {
    std::lock_guard<std::mutex> l(storage_mu_);
    if (hard_state_ != written_hard_state_) (void)disk_->SetHardState(hard_state_);
    (void)disk_->Sync();
  }
  transport_.reset();
  raw_.reset();
  disk_.reset();
  Log(LogLevel::kInfo, "node stopped", {{"id", opts_.self.name}});
}

// ---------------------------------------------------------------- Impl: API

void Node::Impl::Propose(std::string data, std::chrono::milliseconds timeout, Node::Callback done,
                         bool conf_change, ConfChange cc) {
  if (stopping_) {
    done(Status(ErrorCode::kShutdown, "node is shutting down"));
    return;
  }
  if (pending_count_.load() >= opts_.max_pending_requests) {
    done(Status(ErrorCode::kBusy, "too many pending requests"));
    return;
  }
  if (data.size() > opts_.max_entry_bytes) {
    done(Status(ErrorCode::kInvalidArgument, "entry of " + std::to_string(data.size()) +
                                                 " bytes is over the limit of " +
                                                 std::to_string(opts_.max_entry_bytes)));
    return;
  }
  ++pending_count_;
  auto cb = std::make_shared<OnceCallback>([this, done = std::move(done)](Result<std::string> r) {
    --pending_count_;
    done(std::move(r));
  });
  asio::post(io_, [this, cb, data = std::move(data), timeout, conf_change, cc]() mutable {
    if (failed_) {
      cb->Run(Status(ErrorCode::kIOError, "node stopped accepting writes: " + failure_));
      return;
    }
    auto pos = conf_change ? raw_->ProposeConfChange(cc) : raw_->Propose(std::move(data));
    if (!pos.ok()) {
      cb->Run(pos.status());
      return;
    }
    auto now = Clock::now();
    {
      std::lock_guard<std::mutex> l(pending_mu_);
      proposals_[pos->index] = PendingProposal{pos->term, cb, now};
    }
    deadlines_.Add(now, timeout, cb);
    SchedulePump();
  });
}

void Node::Impl::ReadBarrier(std::chrono::milliseconds timeout, Node::Callback done) {
  if (stopping_) {
    done(Status(ErrorCode::kShutdown, "node is shutting down"));
    return;
  }
  if (pending_count_.load() >= opts_.max_pending_requests) {
    done(Status(ErrorCode::kBusy, "too many pending requests"));
    return;
  }
  ++pending_count_;
  auto cb = std::make_shared<OnceCallback>([this, done = std::move(done)](Result<std::string> r) {
    --pending_count_;
    done(std::move(r));
  });
  asio::post(io_, [this, cb, timeout] {
    std::string ctx = std::to_string(next_read_id_++);
    Status s = raw_->ReadIndex(ctx);
    if (!s.ok() && s.code() != ErrorCode::kNotLeader) {
      cb->Run(s);
      return;
    }
    // With no leader known yet (an election, a restart) the request waits and is
    // re-issued every few ticks until a leader answers or the deadline passes.
    pending_reads_[ctx] = PendingRead{cb, ticks_};
    deadlines_.Add(Clock::now(), timeout, cb);
    SchedulePump();
  });
}

void Node::Impl::Transfer(NodeId target, std::chrono::milliseconds timeout,
                          std::function<void(Status)> done) {
  if (stopping_) {
    done(Status(ErrorCode::kShutdown, "node is shutting down"));
    return;
  }
  asio::post(io_, [this, target, timeout, done = std::move(done)]() mutable {
    Status s = raw_->TransferLeadership(target);
    if (!s.ok()) {
      done(s);
      return;
    }
    if (target == opts_.self.id) {
      done(Status::Ok());
      return;
    }
    transfers_.push_back(TransferWait{target, Clock::now() + timeout, std::move(done)});
    Pump();
  });
}

NodeStatusInfo Node::Impl::GetStatus() const {
  std::lock_guard<std::mutex> l(status_mu_);
  NodeStatusInfo s;
  s.id = opts_.self.id;
  s.name = opts_.self.name;
  s.role = core_status_.role;
  s.term = core_status_.hard_state.term;
  s.leader = core_status_.leader;
  s.commit = core_status_.hard_state.commit;
  s.applied = applied_.load();
  s.last_index = core_status_.last_index;
  s.snapshot_index = last_snapshot_index_;
  s.failure = failure_;
  std::map<NodeId, MemberInfo> book;
  for (const auto& m : members_view_) book[m.id] = m;
  auto add = [&](NodeId id, bool voter) {
    MemberStatus ms;
    ms.info = book.count(id) ? book[id] : MemberInfo{id, std::to_string(id), "", ""};
    ms.voter = voter;
    for (const auto& p : core_status_.peers) {
      if (p.id != id) continue;
      ms.match = p.match;
      ms.next = p.next;
      ms.state = p.state;
      ms.recent_active = p.recent_active;
    }
    s.members.push_back(ms);
  };
  for (NodeId id : core_status_.conf.voters) add(id, true);
  for (NodeId id : core_status_.conf.learners) add(id, false);
  return s;
}

Role Node::Impl::role() const {
  std::lock_guard<std::mutex> l(status_mu_);
  return core_status_.role;
}

NodeId Node::Impl::leader() const {
  std::lock_guard<std::mutex> l(status_mu_);
  return core_status_.leader;
}

NodeMetrics Node::Impl::GetMetrics() const {
  std::lock_guard<std::mutex> l(status_mu_);
  return metrics_;
}

std::vector<MemberInfo> Node::Impl::Members() const {
  std::lock_guard<std::mutex> l(status_mu_);
  return members_view_;
}

// ---------------------------------------------------------------- Node

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() { Stop(); }

Result<std::unique_ptr<Node>> Node::Start(const NodeOptions& options, StateMachine* sm) {
  if (sm == nullptr) return Status(ErrorCode::kInvalidArgument, "state machine is null");
  if (options.self.name.empty() && options.self.id == kNoNode)
    return Status(ErrorCode::kInvalidArgument, "node needs a name or id");
  if (options.data_dir.empty()) return Status(ErrorCode::kInvalidArgument, "data_dir is empty");
  auto impl = std::make_unique<Impl>(options, sm);
  if (Status s = impl->Open(); !s.ok()) return s;
  impl->Run();
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

void Node::Stop() {
  if (impl_) impl_->Stop();
}

void Node::Propose(std::string data, std::chrono::milliseconds timeout, Callback done) {
  impl_->Propose(std::move(data), timeout, std::move(done), false, {});
}

namespace {
std::pair<Node::Callback, std::future<Result<std::string>>> MakeFuture() {
  auto p = std::make_shared<std::promise<Result<std::string>>>();
  auto f = p->get_future();
  return {[p](Result<std::string> r) { p->set_value(std::move(r)); }, std::move(f)};
}
}  // namespace

std::future<Result<std::string>> Node::Propose(std::string data,
                                               std::chrono::milliseconds timeout) {
  auto [cb, f] = MakeFuture();
  Propose(std::move(data), timeout, std::move(cb));
  return std::move(f);
}

void Node::ReadBarrier(std::chrono::milliseconds timeout, Callback done) {
  impl_->ReadBarrier(timeout, std::move(done));
}

std::future<Result<std::string>> Node::ReadBarrier(std::chrono::milliseconds timeout) {
  auto [cb, f] = MakeFuture();
  ReadBarrier(timeout, std::move(cb));
  return std::move(f);
}

std::future<Result<std::string>> Node::AddLearner(const MemberInfo& member,
                                                  std::chrono::milliseconds timeout) {
  auto [cb, f] = MakeFuture();
  MemberInfo m = member;
  if (m.id == kNoNode) m.id = NodeIdFromName(m.name);
  impl_->Propose({}, timeout, std::move(cb), true,
                 ConfChange{ConfChangeType::kAddLearner, m.id, EncodeMemberInfo(m)});
  return std::move(f);
}

std::future<Result<std::string>> Node::PromoteLearner(NodeId id,
                                                      std::chrono::milliseconds timeout) {
  auto [cb, f] = MakeFuture();
  std::string ctx;
  for (const auto& m : Members())
    if (m.id == id) ctx = EncodeMemberInfo(m);
  impl_->Propose({}, timeout, std::move(cb), true, ConfChange{ConfChangeType::kAddVoter, id, ctx});
  return std::move(f);
}

std::future<Result<std::string>> Node::RemoveMember(NodeId id, std::chrono::milliseconds timeout) {
  auto [cb, f] = MakeFuture();
  impl_->Propose({}, timeout, std::move(cb), true, ConfChange{ConfChangeType::kRemoveNode, id, {}});
  return std::move(f);
}

std::future<Status> Node::TransferLeadership(NodeId target, std::chrono::milliseconds timeout) {
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  impl_->Transfer(target, timeout, [p](Status s) { p->set_value(std::move(s)); });
  return f;
}

NodeStatusInfo Node::GetStatus() const { return impl_->GetStatus(); }
NodeMetrics Node::GetMetrics() const { return impl_->GetMetrics(); }
Role Node::role() const { return impl_->role(); }
NodeId Node::leader() const { return impl_->leader(); }
std::vector<MemberInfo> Node::Members() const { return impl_->Members(); }
NodeId Node::id() const { return impl_->id(); }

}  // namespace raft
