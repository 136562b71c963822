// raft::Host: construction, recovery, groups created and removed, shutdown, status, and
// the thread-safe API surface. The lanes' work is in host_io.cc.
#include <algorithm>

#include "base/assert.h"
#include "core/mutation.h"
#include "runtime/host_impl.h"
#include "runtime/tls_context.h"

namespace raft {

namespace {

runtime::HostCoreOptions CoreOptions(const HostOptions& o) {
  runtime::HostCoreOptions c;
  c.self = o.self;
  c.liveness_timeout_ticks = o.election_ticks;
  return c;
}

}  // namespace

// The answer of CreateGroup or RemoveGroup, given by whichever lane finishes the work.
// If the work is dropped (a lane stopped before running it), the last reference to it
// answers kShutdown, so the caller always hears back.
class Host::Impl::Answer {
 public:
  explicit Answer(std::function<void(Status)> done) : done_(std::move(done)) {}
  ~Answer() { Set(Status(ErrorCode::kShutdown, "the host is stopping")); }
  void Set(Status s) {
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(s));
  }

 private:
  std::function<void(Status)> done_;  // one lane holds the Answer at a time
};

Host::Impl::Impl(const HostOptions& options, std::unique_ptr<runtime::Env> env)
    : opts_(options), env_(std::move(env)), core_(CoreOptions(options)) {
  base::MutexLock l(&peers_mu_);
  for (const auto& [p, addr] : options.peers)
    if (p != options.self) peers_[p] = addr;
}

Host::Impl::~Impl() { Stop(); }

void Host::Impl::Log(LogLevel level, std::string_view msg, std::vector<LogField> fields) const {
  if (opts_.logger && opts_.logger->Enabled(level)) opts_.logger->Log(level, "host", msg, fields);
}

Status Host::Impl::Open() {
  io_checker_.Check();  // before the lanes run: passes, and Open owns the io state
  storage::SharedLogOptions lo;
  lo.segment_bytes_target = opts_.log_segment_bytes;
  lo.file_system = env_->file_system();
  auto log = storage::SharedLog::Open(opts_.data_dir + "/log", lo);
  if (!log.ok()) return log.status();
  log_ = std::move(log).value();
  for (const std::string& note : log_->recovery_notes())
    Log(LogLevel::kWarn, "shared log recovery", {{"note", note}});
  logged_groups_ = log_->Groups();

  auto tls = runtime::PeerTls::Open(opts_.peer_tls);
  if (!tls.ok()) return tls.status();
  peer_tls_ = std::move(tls).value();
  runtime::TransportOptions to;
  to.self = opts_.self;
  to.listen_addr = opts_.listen_addr;
  to.self_addr = opts_.advertise_addr.empty() ? opts_.listen_addr : opts_.advertise_addr;
  to.cluster_id = opts_.cluster_id;
  to.cluster_secret = opts_.cluster_secret;
  to.tls = peer_tls_ ? peer_tls_->holder() : nullptr;
  to.logger = opts_.logger;
  to.io_thread = &io_checker_;
  to.host = true;
  to.snapshot_chunk_bytes = opts_.snapshot_chunk_bytes;
  to.snapshot_window_chunks = opts_.snapshot_window_chunks;
  to.snapshot_bytes_max = opts_.max_snapshot_bytes;
  // Before the lanes run: no checker is bound, Open runs alone.
  transport_ = env_->NewTransport(to, this, nullptr);
  if (Status s = transport_->Listen(); !s.ok()) return s;
  for (const auto& [p, addr] : opts_.peers) {
    if (p == opts_.self) continue;
    transport_->SetPeerAddress(p, addr);
    core_.AddPeer(p);
  }
  read_ctx_prefix_ = "h";
  read_ctx_prefix_.append(std::to_string(env_->Random64())).append(":");
  Log(LogLevel::kInfo, "host opened",
      {{"self", std::to_string(opts_.self)},
       {"groups_in_log", std::to_string(logged_groups_.size())},
       {"listen", opts_.listen_addr}});
  return Status::Ok();
}

void Host::Impl::Run() {
  base::ThreadChecker* const checkers[runtime::kLanes] = {&io_checker_, &disk_checker_,
                                                          &apply_checker_, &snap_checker_};
  env_->Start(checkers);
  running_ = true;
  env_->StartTicker(std::chrono::milliseconds(opts_.tick_ms), [this] {
    io_checker_.Check();
    Tick();
  });
}

void Host::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  if (running_) {
    env_->Shutdown(runtime::Lane::kIo, [this] {
      io_checker_.Check();
      transport_->Stop();
      for (auto& [ctx, r] : pending_reads_)
        r.cb->Run(Status(ErrorCode::kShutdown, "host stopping"));
      pending_reads_.clear();
      for (auto& t : transfers_) t.done(Status(ErrorCode::kShutdown, "host stopping"));
      transfers_.clear();
    });
    env_->Shutdown(runtime::Lane::kSnapshot, nullptr);
    env_->Shutdown(runtime::Lane::kDisk, nullptr);  // the round in flight completes
    env_->Shutdown(runtime::Lane::kApply, nullptr);
  }
  // Every lane has stopped: what they owned is ours now.
  io_checker_.Check();
  apply_checker_.Check();
  for (auto& [g, group] : groups_)
    FailPending(*group, Status(ErrorCode::kShutdown, "host stopped"));
  groups_.clear();
  transport_.reset();
  if (log_) (void)log_->Sync();
  log_.reset();
  Log(LogLevel::kInfo, "host stopped", {{"self", std::to_string(opts_.self)}});
}

// CreateGroup's work, carried from lane to lane.
struct Host::Impl::NewGroup {
  std::shared_ptr<Group> group;
  std::shared_ptr<Answer> answer;
  std::vector<NodeId> voters;
  Index from_state = 0;  // CreateGroupFromState's `at`; 0: CreateGroup
  // Set on the apply lane: where the state machine stands, and the snapshot a group new
  // to the log starts from (CreateGroupFromState only).
  Index sm_applied = 0;
  std::optional<SnapshotMeta> initial;
};

void Host::Impl::CreateGroup(GroupId g, const std::vector<NodeId>& voters, StateMachine* sm,
                             Index from_state, std::function<void(Status)> done) {
  auto refuse = [&](std::string why) { done(Status(ErrorCode::kInvalidArgument, std::move(why))); };
  if (g == 0) return refuse("group 0 is not a group");
  if (sm == nullptr) return refuse("state machine is null");
  if (from_state > 0 && voters.empty())
    return refuse("group " + std::to_string(g) + " from state: no voters");
  if (!voters.empty() && std::find(voters.begin(), voters.end(), opts_.self) == voters.end())
    return refuse("the voters of group " + std::to_string(g) + " do not include this process");
  for (NodeId v : voters) {
    if (v != opts_.self && !KnowsPeer(v))
      return refuse("voter " + std::to_string(v) + " is not a process this host knows (SetPeer)");
  }
  if (stopping_) {
    done(Status(ErrorCode::kShutdown, "the host is stopping"));
    return;
  }
  if (!claims_->Claim(g)) return refuse("group " + std::to_string(g) + " is already hosted");
  auto ng = std::make_shared<NewGroup>();
  ng->group = std::make_shared<Group>();
  ng->group->id = g;
  ng->group->sm = sm;
  ng->voters = voters;
  ng->from_state = from_state;
  // The claims by shared pointer, not through `this`: an Answer dropped with a lane's
  // queue after Stop is destroyed when the Env is, after the rest of the host.
  ng->answer = std::make_shared<Answer>([claims = claims_, g, done = std::move(done)](Status s) {
    if (!s.ok()) claims->Unclaim(g);
    done(std::move(s));
  });
  // apply: the group's snapshot store; where the state machine stands (restored from
  // the log's snapshot if behind it) -> [snapshot: the initial snapshot of a group from
  // state] -> disk: bootstrap a new group durably -> io: its core starts.
  env_->Post(runtime::Lane::kApply, [this, ng] {
    apply_checker_.Check();
    CreateGroupApply(ng);
  });
}

void Host::Impl::CreateGroupApply(const std::shared_ptr<NewGroup>& ng) {
  Group& group = *ng->group;
  // The group's files failing (a disk error, a snapshot the log names but that cannot
  // be read) fail the host, as the log's first write error does: the owner restarts it
  // and recovery decides from what is on disk.
  auto failed = [this, ng](const Status& s) {
    env_->Post(runtime::Lane::kIo, [this, s] {
      io_checker_.Check();
      Fail(s);
    });
    ng->answer->Set(s);
  };
  auto store = OpenStore(group.id);
  if (!store.ok()) return failed(store.status());
  group.snaps = std::move(store).value();
  auto recovered = RecoverGroup(group);
  if (!recovered.ok()) return failed(recovered.status());
  ng->sm_applied = *recovered;
  auto to_disk = [this, ng] {
    env_->Post(runtime::Lane::kDisk, [this, ng] {
      disk_checker_.Check();
      CreateGroupOnDisk(ng);
    });
  };
  if (ng->from_state == 0 || log_->Group(group.id) != nullptr) {
    group.snapshot_index = group.last_snapshot_index;
    return to_disk();
  }
  // A group from state, new to the log: it starts from a snapshot of `sm` at `at`
  // (term 1, the voters), written into its store before the log names it, so a replica
  // added later is sent the state the group's log does not hold.
  if (ng->sm_applied > ng->from_state) {
    ng->answer->Set(Status(ErrorCode::kInvalidArgument,
                           "group " + std::to_string(group.id) + " from state at " +
                               std::to_string(ng->from_state) + ": its state machine applied " +
                               std::to_string(ng->sm_applied)));
    return;
  }
  ConfState conf;
  conf.voters.insert(ng->voters.begin(), ng->voters.end());
  const SnapshotMeta meta{ng->from_state, kFromStateTerm, conf};
  ng->initial = meta;
  ng->sm_applied = meta.index;
  group.applied_term = meta.term;
  group.applied_conf = meta.conf;
  group.last_snapshot_index = meta.index;
  group.snapshot_index = meta.index;
  // Written before by a start that crashed before the log named it: the same state.
  if (group.snaps->Exists(meta.index, meta.term) ||
      mutation::Active(mutation::Kind::kSkipInitialSnapshot))
    return to_disk();
  auto src = group.sm->PrepareSnapshot();
  if (!src.ok()) {
    ng->answer->Set(src.status());
    return;
  }
  auto job = std::make_shared<std::unique_ptr<SnapshotSource>>(std::move(src).value());
  env_->Post(runtime::Lane::kSnapshot, [this, ng, meta, job, to_disk] {
    snap_checker_.Check();
    if (Status s = WriteSnapshot(*ng->group, meta, std::move(*job)); !s.ok()) {
      ng->answer->Set(s);
      return;
    }
    to_disk();
  });
}

void Host::Impl::CreateGroupOnDisk(const std::shared_ptr<NewGroup>& ng) {
  const GroupId g = ng->group->id;
  Status s = Status::Ok();
  if (log_->Group(g) == nullptr && ng->voters.empty()) {
    s = log_->AddGroup(g);  // joins: empty until the leader sends it the log
  } else if (log_->Group(g) == nullptr && ng->initial) {
    s = log_->ApplySnapshot(g, *ng->initial);
    if (s.ok()) s = log_->SetHardState(g, HardState{kFromStateTerm, kNoNode, ng->initial->index});
    if (s.ok()) s = log_->Sync();
  } else if (log_->Group(g) == nullptr) {
    const std::vector<Entry> boot = BootstrapEntries(ng->voters);
    s = log_->Append(g, boot);
    if (s.ok()) s = log_->SetHardState(g, HardState{1, kNoNode, boot.back().index});
    if (s.ok()) s = log_->Sync();
  }
  if (!s.ok()) {
    // The log's first write error is sticky: every group is stuck, not only this one.
    env_->Post(runtime::Lane::kIo, [this, s] {
      io_checker_.Check();
      Fail(s);
    });
    ng->answer->Set(s);
    return;
  }
  const Storage* storage = log_->Group(g);
  env_->Post(runtime::Lane::kIo, [this, ng, storage] {
    io_checker_.Check();
    StartGroup(ng, storage);
  });
}

void Host::Impl::StartGroup(const std::shared_ptr<NewGroup>& ng, const Storage* storage) {
  const std::shared_ptr<Group>& group = ng->group;
  const GroupId g = group->id;
  Config c;
  c.id = opts_.self;
  c.seed = env_->Random64();
  c.election_ticks = opts_.election_ticks;
  c.heartbeat_ticks = opts_.heartbeat_ticks;
  c.quiesce = opts_.quiesce;
  c.applied = std::min(ng->sm_applied, storage->LastIndex());
  if (Status s = core_.AddGroup(g, c, storage); !s.ok()) {
    ng->answer->Set(s);
    return;
  }
  group->applied = c.applied;
  group->queued_through = c.applied;
  groups_[g] = group;
  {
    base::MutexLock l(&status_mu_);
    GroupStatusInfo info;
    info.group = g;
    info.applied = c.applied;
    statuses_[g] = {info, group};
  }
  if (const RawNode* core = core_.Get(g); core != nullptr) PublishStatus(*group, *core);
  dirty_.insert(g);
  Pump();
  Log(LogLevel::kInfo, "group started",
      {{"group", std::to_string(g)}, {"applied", std::to_string(c.applied)}});
  ng->answer->Set(Status::Ok());
}

void Host::Impl::RemoveGroup(GroupId g, std::function<void(Status)> done) {
  if (stopping_) {
    done(Status(ErrorCode::kShutdown, "the host is stopping"));
    return;
  }
  auto answer = std::make_shared<Answer>(std::move(done));
  // io: the core goes, nothing new reaches the other lanes -> disk: the group's records
  // go (after any round naming it) -> apply: the tasks queued before run (and skip it),
  // then its pending requests fail.
  env_->Post(runtime::Lane::kIo, [this, answer, g] {
    io_checker_.Check();
    std::shared_ptr<Group> group = Find(g);
    if (group == nullptr || !core_.RemoveGroup(g).ok()) {
      answer->Set(Status(ErrorCode::kInvalidArgument,
                         "group " + std::to_string(g) + " is not hosted here"));
      return;
    }
    group->removed = true;
    groups_.erase(g);
    retired_stores_.push_back(group->snaps);
    dirty_.erase(g);
    // A Ready waiting for the next round is dropped: the removal reaches the disk lane
    // first, and the log refuses writes to a removed group. One in the round in flight
    // was posted before the removal and is written before it.
    pending_.erase(g);
    std::erase_if(next_round_, [g](const RoundItem& item) { return item.group->id == g; });
    for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
      if (it->second.group == group) {
        it->second.cb->Run(Status(ErrorCode::kShutdown, "the group was removed"));
        it = pending_reads_.erase(it);
      } else {
        ++it;
      }
    }
    {
      base::MutexLock l(&status_mu_);
      statuses_.erase(g);
    }
    env_->Post(runtime::Lane::kDisk, [this, answer, group] {
      disk_checker_.Check();
      Status s = log_->RemoveGroup(group->id);
      if (s.ok()) RemoveStore(*group);
      env_->Post(runtime::Lane::kApply, [this, answer, group, s] {
        apply_checker_.Check();
        FailPending(*group, Status(ErrorCode::kShutdown, "the group was removed"));
        claims_->Unclaim(group->id);
        Log(LogLevel::kInfo, "group removed", {{"group", std::to_string(group->id)}});
        answer->Set(s);
      });
    });
  });
}

void Host::Impl::FailPending(Group& group, const Status& s) {
  std::map<Index, PendingProposal> left;
  {
    base::MutexLock l(&group.pending_mu);
    left.swap(group.proposals);
  }
  for (auto& [i, p] : left) p.cb->Run(s);
  for (auto& [i, cb] : group.waiting_reads) cb->Run(s);
  group.waiting_reads.clear();
}

runtime::SharedCallback Host::Impl::Admit(Host::Callback& done) {
  if (stopping_) {
    done(Status(ErrorCode::kShutdown, "the host is stopping"));
    return nullptr;
  }
  if (pending_count_.load() >= opts_.max_pending_requests) {
    done(Status(ErrorCode::kBusy, "too many pending requests"));
    return nullptr;
  }
  ++pending_count_;
  return std::make_shared<runtime::OnceCallback>(
      [this, done = std::move(done)](Result<std::string> r) {
        --pending_count_;
        done(std::move(r));
      });
}

void Host::Impl::Propose(GroupId g, std::string data, std::chrono::milliseconds timeout,
                         Host::Callback done) {
  if (data.size() > opts_.max_entry_bytes) {
    done(Status(ErrorCode::kInvalidArgument,
                "entry of " + std::to_string(data.size()) + " bytes is over the limit of " +
                    std::to_string(opts_.max_entry_bytes) + " (HostOptions::max_entry_bytes)"));
    return;
  }
  Append(g, timeout, std::move(done),
         [data = std::move(data)](RawNode& core) mutable { return core.Propose(std::move(data)); });
}

void Host::Impl::Append(GroupId g, std::chrono::milliseconds timeout, Host::Callback done,
                        std::function<Result<LogPosition>(RawNode&)> propose) {
  runtime::SharedCallback cb = Admit(done);
  if (!cb) return;
  env_->Post(runtime::Lane::kIo, [this, g, cb, timeout, propose = std::move(propose)] {
    io_checker_.Check();
    if (failed_) {
      cb->Run(Status(ErrorCode::kIOError, "the host stopped accepting writes"));
      return;
    }
    std::shared_ptr<Group> group = Find(g);
    if (group == nullptr) {
      cb->Run(Status(ErrorCode::kInvalidArgument, "group " + std::to_string(g) + " is not hosted"));
      return;
    }
    Result<LogPosition> pos = LogPosition{};
    (void)core_.With(g, [&](RawNode& core) { pos = propose(core); });
    if (!pos.ok()) {
      cb->Run(pos.status());
      return;
    }
    {
      base::MutexLock l(&group->pending_mu);
      group->proposals[pos->index] = PendingProposal{pos->term, cb};
    }
    deadlines_.Add(env_->Now(), timeout, cb);
    SchedulePump();
  });
}

void Host::Impl::ReadBarrier(GroupId g, std::chrono::milliseconds timeout, Host::Callback done) {
  runtime::SharedCallback cb = Admit(done);
  if (!cb) return;
  env_->Post(runtime::Lane::kIo, [this, g, cb, timeout] {
    io_checker_.Check();
    std::shared_ptr<Group> group = Find(g);
    if (group == nullptr) {
      cb->Run(Status(ErrorCode::kInvalidArgument, "group " + std::to_string(g) + " is not hosted"));
      return;
    }
    std::string ctx = read_ctx_prefix_;
    ctx.append(std::to_string(next_read_id_++));
    // Without a leader the request waits and is re-issued (SweepDeadlines).
    (void)core_.With(g, [&](RawNode& core) { (void)core.ReadIndex(ctx); });
    pending_reads_[ctx] = PendingRead{group, cb, ticks_};
    deadlines_.Add(env_->Now(), timeout, cb);
    SchedulePump();
  });
}

void Host::Impl::Transfer(GroupId g, NodeId target, std::chrono::milliseconds timeout,
                          std::function<void(Status)> done) {
  if (stopping_) {
    done(Status(ErrorCode::kShutdown, "the host is stopping"));
    return;
  }
  env_->Post(runtime::Lane::kIo, [this, g, target, timeout, done = std::move(done)]() mutable {
    io_checker_.Check();
    Status s = Status::Ok();
    Status hosted = core_.With(g, [&](RawNode& core) { s = core.TransferLeadership(target); });
    if (!hosted.ok()) s = hosted;
    if (!s.ok()) {
      done(s);
      return;
    }
    transfers_.push_back({g, target, env_->Now() + timeout, std::move(done)});
    SchedulePump();
  });
}

void Host::Impl::ChangeMembership(GroupId g, ConfChange cc, std::chrono::milliseconds timeout,
                                  Host::Callback done) {
  if (cc.node != opts_.self && !KnowsPeer(cc.node)) {
    done(Status(ErrorCode::kInvalidArgument, "process " + std::to_string(cc.node) +
                                                 " is not a process this host knows (SetPeer)"));
    return;
  }
  Append(g, timeout, std::move(done), [this, cc](RawNode& core) -> Result<LogPosition> {
    if (cc.type == ConfChangeType::kAddVoter) {
      if (Status s = CheckPromotion(core, cc.node); !s.ok()) return s;
    }
    return core.ProposeConfChange(cc);
  });
}

Status Host::Impl::ReloadTls(const TlsOptions* replace) {
  return runtime::PeerTls::ReloadLogged(
      peer_tls_.get(), replace, "host",
      [this](LogLevel level, std::string_view msg, std::vector<LogField> fields) {
        Log(level, msg, std::move(fields));
      });
}

Status Host::Impl::SetPeer(NodeId p, const std::string& addr) {
  if (p == kNoNode || p == opts_.self)
    return Status(ErrorCode::kInvalidArgument, "process " + std::to_string(p) +
                                                   " cannot be a peer of process " +
                                                   std::to_string(opts_.self));
  if (addr.empty()) return Status(ErrorCode::kInvalidArgument, "the address of a peer is empty");
  if (stopping_) return Status(ErrorCode::kShutdown, "the host is stopping");
  {
    base::MutexLock l(&peers_mu_);
    peers_[p] = addr;
  }
  env_->Post(runtime::Lane::kIo, [this, p, addr] {
    io_checker_.Check();
    if (stopping_) return;
    transport_->SetPeerAddress(p, addr);
    core_.AddPeer(p);
  });
  Log(LogLevel::kInfo, "peer set", {{"peer", std::to_string(p)}, {"addr", addr}});
  return Status::Ok();
}

Status Host::Impl::RemovePeer(NodeId p) {
  if (stopping_) return Status(ErrorCode::kShutdown, "the host is stopping");
  {
    base::MutexLock l(&peers_mu_);
    if (peers_.erase(p) == 0)
      return Status(ErrorCode::kInvalidArgument,
                    "process " + std::to_string(p) + " is not a peer of this host");
  }
  env_->Post(runtime::Lane::kIo, [this, p] {
    io_checker_.Check();
    if (stopping_) return;
    core_.RemovePeer(p);
    transport_->RemovePeer(p);
  });
  Log(LogLevel::kInfo, "peer removed", {{"peer", std::to_string(p)}});
  return Status::Ok();
}

void Host::Impl::SetClusterId(std::string cluster_id) {
  if (stopping_) return;
  env_->Post(runtime::Lane::kIo, [this, id = std::move(cluster_id)] {
    io_checker_.Check();
    if (!stopping_) transport_->SetClusterId(id);
  });
}

std::map<NodeId, std::string> Host::Impl::Peers() const {
  base::MutexLock l(&peers_mu_);
  return peers_;
}

Status Host::Impl::CheckPromotion(const RawNode& core, NodeId id) const {
  // Only a leader knows the configuration a change applies to; elsewhere the core
  // answers kNotLeader.
  if (core.role() != Role::kLeader) return Status::Ok();
  const ConfState conf = core.GetStatus().conf;  // as appended: what the change applies to
  if (conf.voters.count(id))
    return Status(ErrorCode::kInvalidArgument,
                  "process " + std::to_string(id) + " is already a voter of the group");
  if (!conf.learners.count(id))
    return Status(ErrorCode::kInvalidArgument,
                  "process " + std::to_string(id) +
                      " is not a learner of the group: add it with AddLearner and let it catch "
                      "up first (PromoteLearner never adds a new voter)");
  return Status::Ok();
}

std::shared_ptr<Host::Impl::Group> Host::Impl::Find(GroupId g) {
  auto it = groups_.find(g);
  return it == groups_.end() ? nullptr : it->second;
}

void Host::Impl::PublishStatus(const Group& group, const RawNode& core) {
  const NodeStatus st = core.GetStatus();
  base::MutexLock l(&status_mu_);
  auto it = statuses_.find(group.id);
  if (it == statuses_.end()) return;
  GroupStatusInfo& info = it->second.first;
  info.role = st.role;
  info.leader = st.leader;
  info.term = st.hard_state.term;
  info.commit = st.hard_state.commit;
  info.last_index = st.last_index;
  info.asleep = st.quiesced;
  info.voters.assign(st.conf.voters.begin(), st.conf.voters.end());
  info.learners.assign(st.conf.learners.begin(), st.conf.learners.end());
  info.match.clear();
  for (const PeerStatus& peer : st.peers)
    if (peer.id != st.id) info.match.emplace_back(peer.id, peer.match);
}

Result<GroupStatusInfo> Host::Impl::GroupStatus(GroupId g) const {
  base::MutexLock l(&status_mu_);
  auto it = statuses_.find(g);
  if (it == statuses_.end())
    return Status(ErrorCode::kInvalidArgument, "group " + std::to_string(g) + " is not hosted");
  GroupStatusInfo info = it->second.first;
  info.applied = it->second.second->applied.load();
  info.snapshot_index = it->second.second->snapshot_index.load();
  return info;
}

NodeId Host::Impl::GroupLeader(GroupId g) const {
  base::MutexLock l(&status_mu_);
  auto it = statuses_.find(g);
  return it == statuses_.end() ? kNoNode : it->second.first.leader;
}

std::vector<GroupStatusInfo> Host::Impl::GroupStatuses() const {
  base::MutexLock l(&status_mu_);
  std::vector<GroupStatusInfo> out;
  out.reserve(statuses_.size());
  for (const auto& [g, entry] : statuses_) {
    out.push_back(entry.first);
    out.back().applied = entry.second->applied.load();
    out.back().snapshot_index = entry.second->snapshot_index.load();
  }
  return out;
}

HostMetrics Host::Impl::GetMetrics() const {
  HostMetrics m;
  {
    base::MutexLock l(&status_mu_);
    m = metrics_;
  }
  if (log_) m.log_syncs = log_->syncs();
  return m;
}

// ---------------------------------------------------------------- Host

Host::Host(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Host::~Host() { Stop(); }

Result<std::unique_ptr<Host>> Host::Start(const HostOptions& options) {
  return StartWithEnv(options, runtime::NewThreadEnv());
}

Result<std::unique_ptr<Host>> Host::StartWithEnv(const HostOptions& options,
                                                 std::unique_ptr<runtime::Env> env) {
  if (options.self == kNoNode) return Status(ErrorCode::kInvalidArgument, "HostOptions::self is 0");
  if (options.data_dir.empty())
    return Status(ErrorCode::kInvalidArgument, "HostOptions::data_dir is empty");
  if (options.tick_ms <= 0 || options.election_ticks <= options.heartbeat_ticks ||
      options.heartbeat_ticks <= 0)
    return Status(ErrorCode::kInvalidArgument,
                  "HostOptions: tick_ms and heartbeat_ticks must be positive and "
                  "election_ticks above heartbeat_ticks");
  // A group's chunk (group id, chunk fields, data) must fit a frame, and a window of 0
  // would never send one: the stream, the only one to that peer, would wait forever.
  const std::uint64_t chunk_max =
      runtime::TransportOptions{}.frame_bytes_max - wire::kSnapshotChunkFixedBytes - 8;
  if (options.snapshot_chunk_bytes == 0 || options.snapshot_chunk_bytes > chunk_max)
    return Status(ErrorCode::kInvalidArgument, "HostOptions::snapshot_chunk_bytes " +
                                                   std::to_string(options.snapshot_chunk_bytes) +
                                                   " must be in [1, " + std::to_string(chunk_max) +
                                                   "]");
  if (options.snapshot_window_chunks == 0)
    return Status(ErrorCode::kInvalidArgument,
                  "HostOptions::snapshot_window_chunks must be > 0 (0 would never send a chunk)");
  auto impl = std::make_unique<Impl>(options, std::move(env));
  if (Status s = impl->Open(); !s.ok()) return s;
  impl->Run();
  return std::unique_ptr<Host>(new Host(std::move(impl)));
}

void Host::Stop() {
  if (impl_) impl_->Stop();
}

std::vector<GroupId> Host::LoggedGroups() const { return impl_->LoggedGroups(); }

void Host::CreateGroup(GroupId g, const std::vector<NodeId>& voters, StateMachine* sm,
                       std::function<void(Status)> done) {
  impl_->CreateGroup(g, voters, sm, /*from_state=*/0, std::move(done));
}

void Host::CreateGroupFromState(GroupId g, const std::vector<NodeId>& voters, StateMachine* sm,
                                Index at, std::function<void(Status)> done) {
  if (at == 0) {
    done(Status(ErrorCode::kInvalidArgument, "a group from state starts at an index > 0"));
    return;
  }
  impl_->CreateGroup(g, voters, sm, at, std::move(done));
}

Status Host::CreateGroupFromState(GroupId g, const std::vector<NodeId>& voters, StateMachine* sm,
                                  Index at) {
  std::promise<Status> p;
  std::future<Status> f = p.get_future();
  CreateGroupFromState(g, voters, sm, at, [&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

Status Host::CreateGroup(GroupId g, const std::vector<NodeId>& voters, StateMachine* sm) {
  std::promise<Status> p;
  std::future<Status> f = p.get_future();
  CreateGroup(g, voters, sm, [&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

void Host::RemoveGroup(GroupId g, std::function<void(Status)> done) {
  impl_->RemoveGroup(g, std::move(done));
}

Status Host::RemoveGroup(GroupId g) {
  std::promise<Status> p;
  std::future<Status> f = p.get_future();
  RemoveGroup(g, [&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

void Host::Propose(GroupId g, std::string data, std::chrono::milliseconds timeout, Callback done) {
  impl_->Propose(g, std::move(data), timeout, std::move(done));
}

namespace {
std::pair<Host::Callback, std::future<Result<std::string>>> MakeFuture() {
  auto p = std::make_shared<std::promise<Result<std::string>>>();
  auto f = p->get_future();
  return {[p](Result<std::string> r) { p->set_value(std::move(r)); }, std::move(f)};
}
}  // namespace

std::future<Result<std::string>> Host::Propose(GroupId g, std::string data,
                                               std::chrono::milliseconds timeout) {
  auto [cb, f] = MakeFuture();
  Propose(g, std::move(data), timeout, std::move(cb));
  return std::move(f);
}

void Host::ReadBarrier(GroupId g, std::chrono::milliseconds timeout, Callback done) {
  impl_->ReadBarrier(g, timeout, std::move(done));
}

std::future<Result<std::string>> Host::ReadBarrier(GroupId g, std::chrono::milliseconds timeout) {
  auto [cb, f] = MakeFuture();
  ReadBarrier(g, timeout, std::move(cb));
  return std::move(f);
}

void Host::Backup(GroupId g, const std::string& path,
                  std::function<void(Result<BackupInfo>)> done) {
  impl_->Backup(g, path, std::move(done));
}

void Host::TransferLeadership(GroupId g, NodeId target, std::chrono::milliseconds timeout,
                              std::function<void(Status)> done) {
  impl_->Transfer(g, target, timeout, std::move(done));
}

void Host::AddLearner(GroupId g, NodeId p, std::chrono::milliseconds timeout, Callback done) {
  impl_->ChangeMembership(g, ConfChange{ConfChangeType::kAddLearner, p, {}}, timeout,
                          std::move(done));
}

void Host::PromoteLearner(GroupId g, NodeId p, std::chrono::milliseconds timeout, Callback done) {
  impl_->ChangeMembership(g, ConfChange{ConfChangeType::kAddVoter, p, {}}, timeout,
                          std::move(done));
}

void Host::RemoveReplica(GroupId g, NodeId p, std::chrono::milliseconds timeout, Callback done) {
  impl_->ChangeMembership(g, ConfChange{ConfChangeType::kRemoveNode, p, {}}, timeout,
                          std::move(done));
}

Result<GroupStatusInfo> Host::GroupStatus(GroupId g) const { return impl_->GroupStatus(g); }
std::vector<GroupStatusInfo> Host::GroupStatuses() const { return impl_->GroupStatuses(); }
NodeId Host::GroupLeader(GroupId g) const { return impl_->GroupLeader(g); }
HostMetrics Host::GetMetrics() const { return impl_->GetMetrics(); }
std::string Host::Failure() const { return impl_->Failure(); }
NodeId Host::self() const { return impl_->self(); }
Status Host::SetPeer(NodeId p, const std::string& addr) { return impl_->SetPeer(p, addr); }
Status Host::ReloadTls() { return impl_->ReloadTls(nullptr); }
Status Host::ReloadTls(const TlsOptions& tls) { return impl_->ReloadTls(&tls); }
Status Host::RemovePeer(NodeId p) { return impl_->RemovePeer(p); }
std::map<NodeId, std::string> Host::Peers() const { return impl_->Peers(); }
void Host::SetClusterId(std::string cluster_id) { impl_->SetClusterId(std::move(cluster_id)); }

}  // namespace raft
