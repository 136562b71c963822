// raft::Node: construction, recovery, shutdown and the thread-safe API surface.
#include "base/assert.h"
#include "runtime/node_impl.h"
#include "runtime/tls_context.h"

namespace raft {

const std::uint64_t NodeMetrics::kLatencyBucketsUs[NodeMetrics::kBuckets] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

// ---------------------------------------------------------------- Impl: lifecycle

namespace {
// The options with their defaults filled in: the listen address, the id from the name.
NodeOptions WithDefaults(NodeOptions o) {
  if (o.listen_addr.empty()) o.listen_addr = o.self.raft_addr;
  if (o.self.id == kNoNode) o.self.id = NodeIdFromName(o.self.name);
  return o;
}
}  // namespace

Node::Impl::Impl(const NodeOptions& options, StateMachine* sm, std::unique_ptr<runtime::Env> env)
    : opts_(WithDefaults(options)), sm_(sm), env_(std::move(env)) {}

Node::Impl::~Impl() { Stop(); }

void Node::Impl::Log(LogLevel level, std::string_view msg, std::vector<LogField> fields) const {
  if (opts_.logger && opts_.logger->Enabled(level)) opts_.logger->Log(level, "raft", msg, fields);
}

// Each lane binds its checker while it runs (runtime/env.h), so Stop() may touch the
// lanes' state once they have stopped.
void Node::Impl::Run() {
  base::ThreadChecker* const checkers[runtime::kLanes] = {&io_checker_, &disk_checker_,
                                                          &apply_checker_, &snap_checker_};
  env_->Start(checkers);
  running_ = true;
  env_->Post(runtime::Lane::kIo, [this] {
    io_checker_.Check();
    Tick();
  });
  env_->StartTicker(std::chrono::milliseconds(opts_.tick_ms), [this] {
    io_checker_.Check();
    Tick();
  });
}

void Node::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  if (running_) {
    env_->Shutdown(runtime::Lane::kIo, [this] {
      io_checker_.Check();
      transport_->Stop();
      for (auto& [ctx, r] : pending_reads_)
        r.cb->Run(Status(ErrorCode::kShutdown, "node stopping"));
      pending_reads_.clear();
      for (auto& t : transfers_) t.done(Status(ErrorCode::kShutdown, "node stopping"));
      transfers_.clear();
    });
    env_->Shutdown(runtime::Lane::kSnapshot, nullptr);
    env_->Shutdown(runtime::Lane::kDisk, nullptr);
    env_->Shutdown(runtime::Lane::kApply, nullptr);
  }
  // Every lane has stopped: what they owned is ours now.
  io_checker_.Check();
  apply_checker_.Check();
  std::map<Index, PendingProposal> left;
  {
    base::MutexLock l(&pending_mu_);
    left.swap(proposals_);
  }
  for (auto& [i, p] : left)
    p.cb->Run(Status(ErrorCode::kShutdown, "node stopped; outcome unknown"));
  for (auto& [i, cb] : waiting_reads_) cb->Run(Status(ErrorCode::kShutdown, "node stopped"));
  waiting_reads_.clear();
  {
    base::MutexLock l(&storage_mu_);
    if (disk_) {
      if (hard_state_ != written_hard_state_) (void)disk_->SetHardState(hard_state_);
      (void)disk_->Sync();
    }
  }
  transport_.reset();
  raw_.reset();
  {
    base::MutexLock l(&storage_mu_);
    disk_.reset();
  }
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
  // Open checked max_entry_bytes against the log's record limit and the frame limit, so
  // an entry accepted here can be stored and sent (an entry the log refused would fail
  // the leader, and a client's retry the next one).
  const std::size_t entry_bytes = conf_change ? EncodeConfChange(cc).size() : data.size();
  if (entry_bytes > opts_.max_entry_bytes) {
    done(Status(ErrorCode::kInvalidArgument,
                "entry of " + std::to_string(entry_bytes) + " bytes is over the limit of " +
                    std::to_string(opts_.max_entry_bytes) + " (NodeOptions::max_entry_bytes)"));
    return;
  }
  ++pending_count_;
  auto cb = std::make_shared<OnceCallback>([this, done = std::move(done)](Result<std::string> r) {
    --pending_count_;
    done(std::move(r));
  });
  env_->Post(runtime::Lane::kIo, [this, cb, data = std::move(data), timeout, conf_change,
                                  cc]() mutable {
    io_checker_.Check();
    if (failed_) {
      std::string failure;
      {
        base::MutexLock l(&status_mu_);
        failure = failure_;
      }
      cb->Run(Status(ErrorCode::kIOError, "node stopped accepting writes: " + failure));
      return;
    }
    if (conf_change && cc.type == ConfChangeType::kAddVoter) {
      if (Status s = CheckPromotion(cc.node); !s.ok()) {
        cb->Run(s);
        return;
      }
    }
    auto pos = conf_change ? raw_->ProposeConfChange(cc) : raw_->Propose(std::move(data));
    if (!pos.ok()) {
      cb->Run(pos.status());
      return;
    }
    auto now = env_->Now();
    SharedCallback displaced;
    {
      base::MutexLock l(&pending_mu_);
      auto [it, inserted] = proposals_.try_emplace(pos->index, PendingProposal{pos->term, cb, now});
      if (!inserted) {
        // This index held a proposal of an earlier term that a newer leader's entries
        // replaced before it committed (committed entries are never replaced, and an
        // applied one has left the map), and this node, leading again, reused the index.
        // That proposal can no longer commit: it fails now, or its callback would be
        // lost (and its pending_count_ slot with it).
        RAFT_ASSERT_LT(it->second.term, pos->term);
        displaced = std::move(it->second.cb);
        it->second = PendingProposal{pos->term, cb, now};
      }
    }
    if (displaced) {
      {
        base::MutexLock l(&status_mu_);
        ++metrics_.proposals_failed;
      }
      displaced->Run(
          Status(ErrorCode::kProposalDropped,
                 "leadership changed before the proposal committed; it was not applied"));
    }
    deadlines_.Add(now, timeout, cb);
    SchedulePump();
  });
}

Status Node::Impl::CheckPromotion(NodeId id) const {
  // Only a leader knows the configuration a change applies to; elsewhere the core
  // answers kNotLeader.
  if (raw_->role() != Role::kLeader) return Status::Ok();
  const ConfState conf = raw_->GetStatus().conf;  // as appended: what the change applies to
  if (conf.voters.count(id))
    return Status(ErrorCode::kInvalidArgument,
                  "node " + std::to_string(id) + " is already a voter");
  if (!conf.learners.count(id))
    return Status(ErrorCode::kInvalidArgument,
                  "node " + std::to_string(id) +
                      " is not a learner: add it with AddLearner and let it catch up first "
                      "(PromoteLearner never adds a new voter)");
  return Status::Ok();
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
  env_->Post(runtime::Lane::kIo, [this, cb, timeout] {
    io_checker_.Check();
    std::string ctx = read_ctx_prefix_ + std::to_string(next_read_id_++);
    Status s = raw_->ReadIndex(ctx);
    if (!s.ok() && s.code() != ErrorCode::kNotLeader) {
      cb->Run(s);
      return;
    }
    // With no leader known yet (an election, a restart) the request waits and is
    // re-issued every few ticks until a leader answers or the deadline passes.
    pending_reads_[ctx] = PendingRead{cb, ticks_};
    deadlines_.Add(env_->Now(), timeout, cb);
    SchedulePump();
  });
}

void Node::Impl::Transfer(NodeId target, std::chrono::milliseconds timeout,
                          std::function<void(Status)> done) {
  if (stopping_) {
    done(Status(ErrorCode::kShutdown, "node is shutting down"));
    return;
  }
  env_->Post(runtime::Lane::kIo, [this, target, timeout, done = std::move(done)]() mutable {
    io_checker_.Check();
    Status s = raw_->TransferLeadership(target);
    if (!s.ok()) {
      done(s);
      return;
    }
    if (target == opts_.self.id) {
      done(Status::Ok());
      return;
    }
    transfers_.push_back(TransferWait{target, env_->Now() + timeout, std::move(done)});
    Pump();
  });
}

NodeStatusInfo Node::Impl::GetStatus() const {
  base::MutexLock l(&status_mu_);
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
  std::vector<std::pair<NodeId, bool>> members;  // id, voter
  for (NodeId id : core_status_.conf.voters) members.emplace_back(id, true);
  for (NodeId id : core_status_.conf.learners) members.emplace_back(id, false);
  for (const auto& [id, voter] : members) {
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
  }
  return s;
}

Role Node::Impl::role() const {
  base::MutexLock l(&status_mu_);
  return core_status_.role;
}

NodeId Node::Impl::leader() const {
  base::MutexLock l(&status_mu_);
  return core_status_.leader;
}

NodeMetrics Node::Impl::GetMetrics() const {
  base::MutexLock l(&status_mu_);
  NodeMetrics m = metrics_;
  m.apply_queue_bytes = apply_queue_bytes_.load();
  return m;
}

std::vector<MemberInfo> Node::Impl::Members() const {
  base::MutexLock l(&status_mu_);
  return members_view_;
}

// ---------------------------------------------------------------- Node

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() { Stop(); }

Result<std::unique_ptr<Node>> Node::Start(const NodeOptions& options, StateMachine* sm) {
  return StartWithEnv(options, sm, runtime::NewThreadEnv());
}

Result<std::unique_ptr<Node>> Node::StartWithEnv(const NodeOptions& options, StateMachine* sm,
                                                 std::unique_ptr<runtime::Env> env) {
  if (sm == nullptr) return Status(ErrorCode::kInvalidArgument, "state machine is null");
  if (options.self.name.empty() && options.self.id == kNoNode)
    return Status(ErrorCode::kInvalidArgument, "node needs a name or id");
  if (options.data_dir.empty()) return Status(ErrorCode::kInvalidArgument, "data_dir is empty");
  auto impl = std::make_unique<Impl>(options, sm, std::move(env));
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

std::future<Result<BackupInfo>> Node::Backup(const std::string& path) {
  auto p = std::make_shared<std::promise<Result<BackupInfo>>>();
  auto f = p->get_future();
  impl_->Backup(path, [p](Result<BackupInfo> r) { p->set_value(std::move(r)); });
  return f;
}

void Node::Backup(const std::string& path, std::function<void(Result<BackupInfo>)> done) {
  impl_->Backup(path, std::move(done));
}

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

void Node::AddLearner(const MemberInfo& member, std::chrono::milliseconds timeout, Callback done) {
  MemberInfo m = member;
  if (m.id == kNoNode) m.id = NodeIdFromName(m.name);
  impl_->Propose({}, timeout, std::move(done), true,
                 ConfChange{ConfChangeType::kAddLearner, m.id, EncodeMemberInfo(m)});
}

void Node::PromoteLearner(NodeId id, std::chrono::milliseconds timeout, Callback done) {
  std::string ctx;
  for (const auto& m : Members())
    if (m.id == id) ctx = EncodeMemberInfo(m);
  impl_->Propose({}, timeout, std::move(done), true,
                 ConfChange{ConfChangeType::kAddVoter, id, ctx});
}

void Node::RemoveMember(NodeId id, std::chrono::milliseconds timeout, Callback done) {
  impl_->Propose({}, timeout, std::move(done), true,
                 ConfChange{ConfChangeType::kRemoveNode, id, {}});
}

void Node::TransferLeadership(NodeId target, std::chrono::milliseconds timeout,
                              std::function<void(Status)> done) {
  impl_->Transfer(target, timeout, std::move(done));
}

std::future<Result<std::string>> Node::AddLearner(const MemberInfo& member,
                                                  std::chrono::milliseconds timeout) {
  auto [cb, f] = MakeFuture();
  AddLearner(member, timeout, std::move(cb));
  return std::move(f);
}

std::future<Result<std::string>> Node::PromoteLearner(NodeId id,
                                                      std::chrono::milliseconds timeout) {
  auto [cb, f] = MakeFuture();
  PromoteLearner(id, timeout, std::move(cb));
  return std::move(f);
}

std::future<Result<std::string>> Node::RemoveMember(NodeId id, std::chrono::milliseconds timeout) {
  auto [cb, f] = MakeFuture();
  RemoveMember(id, timeout, std::move(cb));
  return std::move(f);
}

std::future<Status> Node::TransferLeadership(NodeId target, std::chrono::milliseconds timeout) {
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  TransferLeadership(target, timeout, [p](Status s) { p->set_value(std::move(s)); });
  return f;
}

NodeStatusInfo Node::GetStatus() const { return impl_->GetStatus(); }
NodeMetrics Node::GetMetrics() const { return impl_->GetMetrics(); }
Role Node::role() const { return impl_->role(); }
bool Node::storage_failed() const { return impl_->storage_failed(); }
NodeId Node::leader() const { return impl_->leader(); }
std::vector<MemberInfo> Node::Members() const { return impl_->Members(); }
NodeId Node::id() const { return impl_->id(); }
Status Node::ReloadTls() { return impl_->ReloadTls(nullptr); }
Status Node::ReloadTls(const TlsOptions& tls) { return impl_->ReloadTls(&tls); }
void Node::SetClusterId(std::string cluster_id) { impl_->SetClusterId(std::move(cluster_id)); }

void Node::Impl::SetClusterId(std::string cluster_id) {
  if (stopping_) return;
  env_->Post(runtime::Lane::kIo, [this, id = std::move(cluster_id)] {
    io_checker_.Check();
    if (transport_) transport_->SetClusterId(id);
  });
}

Status Node::Impl::ReloadTls(const TlsOptions* replace) {
  return runtime::PeerTls::ReloadLogged(
      peer_tls_.get(), replace, "node",
      [this](LogLevel level, std::string_view msg, std::vector<LogField> fields) {
        Log(level, msg, std::move(fields));
      });
}

}  // namespace raft
