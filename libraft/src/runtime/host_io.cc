// The lanes of raft::Host: the io lane drives every group's core through the durability
// contract of raw_node.h, the disk lane makes a round of Readies durable with one Sync
// of the shared log, the apply lane feeds the state machines (host_impl.h).
#include "base/assert.h"
#include "core/mutation.h"
#include "runtime/host_impl.h"
#include "wire/group_frames.h"

namespace raft {

// ---------------------------------------------------------------- io lane

void Host::Impl::Tick() {
  if (stopping_) return;
  ++ticks_;
  core_.Tick();
  SweepDeadlines();
  Pump();
  const runtime::HostCoreCounters& c = core_.counters();
  base::MutexLock l(&status_mu_);
  metrics_.groups = core_.group_count();
  metrics_.awake_groups = core_.awake_count();
  metrics_.wakes_by_detector = c.wakes_by_detector;
  metrics_.leaders_lost = c.leaders_lost;
}

void Host::Impl::SchedulePump() {
  // Inputs that arrive together share one round: one Sync for all of them.
  if (pump_scheduled_) return;
  pump_scheduled_ = true;
  env_->Post(runtime::Lane::kIo, [this] {
    io_checker_.Check();
    pump_scheduled_ = false;
    Pump();
  });
}

void Host::Impl::Pump() {
  if (stopping_ || failed_) return;
  // A group whose Ready is in the round in flight, or waiting for the next, lets its
  // appends and heartbeats out anyway (RawNode::TakeMessages): a slow fdatasync must not
  // stall the replication and heartbeats of every group (Node's finding 9).
  // Its entries committed meanwhile and durable go to the apply lane as well.
  for (GroupId id : pending_) {
    std::shared_ptr<Group> group = Find(id);
    (void)core_.With(id, [&](RawNode& core) {
      io_checker_.Check();  // a lambda: the analysis does not carry the capability in
      core_.Send(id, core.TakeMessages());
      if (group != nullptr) QueueApply(group, core.TakeCommitted());
    });
  }
  // Finishing a Ready that needed no disk may give its group another: loop until the
  // touched groups are all waiting for the disk or idle (bounded: each pass takes at
  // least one Ready or stops).
  for (int pass = 0; pass < 64; ++pass) {
    for (GroupId g : core_.TakeTouched()) dirty_.insert(g);
    if (dirty_.empty()) break;
    bool progress = false;
    std::set<GroupId> dirty;
    dirty.swap(dirty_);
    for (GroupId id : dirty) {
      std::shared_ptr<Group> group = Find(id);
      if (group == nullptr || pending_.count(id)) continue;  // its Ready is in a round
      (void)core_.With(id, [&](RawNode& core) {
        io_checker_.Check();
        if (!core.HasReady()) return;
        Ready rd = core.GetReady();
        progress = true;
        core_.Send(id, std::move(rd.messages));
        // A received snapshot to install is written with the round (ApplySnapshot), then
        // restored on the apply lane before the entries after it (FinishReady).
        RAFT_ASSERT(!rd.snapshot || rd.must_sync, "a snapshot to install needs the disk");
        if (!rd.must_sync) {
          FinishReady(group, core, std::move(rd));
          return;
        }
        if (mutation::Active(mutation::Kind::kSendBeforePersist))
          core_.Send(id, std::move(rd.messages_after_persist));
        ApplyDurableCommitted(group, rd);
        pending_.insert(id);
        next_round_.push_back(RoundItem{group, std::move(rd)});
      });
    }
    if (!progress) break;
  }
  if (!round_in_flight_ && !next_round_.empty()) {
    // Every Ready taken while the last round was on the disk goes in this one: one
    // fdatasync for all of them.
    round_in_flight_ = true;
    auto shared = std::make_shared<std::vector<RoundItem>>(std::move(next_round_));
    next_round_.clear();
    env_->Post(runtime::Lane::kDisk, [this, shared] {
      disk_checker_.Check();
      Status s = PersistRound(*shared);
      env_->Post(runtime::Lane::kIo, [this, shared, s] {
        io_checker_.Check();
        OnRoundDone(std::move(*shared), s);
      });
    });
  }
  for (GroupId g : core_.TakeWokeOrSlept()) {
    std::shared_ptr<Group> group = Find(g);
    const RawNode* core = core_.Get(g);
    if (group != nullptr && core != nullptr) PublishStatus(*group, *core);
  }
  Flush();
}

void Host::Impl::Flush() {
  for (runtime::HostOutput& o : core_.TakeOutput()) {
    auto send = [&](wire::FrameType type, Result<std::string> payload) {
      io_checker_.Check();
      if (payload.ok()) {
        transport_->SendGroupFrame(o.to, type, *payload);
        return;
      }
      // Only a message over the frame limit fails to encode; the core resends (or
      // probes) as for a lost message.
      Log(LogLevel::kWarn, "a group frame could not be encoded; dropped",
          {{"to", std::to_string(o.to)}, {"error", payload.status().ToString()}});
    };
    if (o.send_beat) send(wire::FrameType::kHostBeat, wire::EncodeHostBeat(o.beat));
    for (const wire::GroupMessage& gm : o.messages) {
      if (gm.message.type == MessageType::kSnapshot) {
        SendSnapshot(gm);  // streamed first; the message follows its last chunk
        continue;
      }
      send(wire::FrameType::kGroupMessage, wire::EncodeGroupMessage(gm.group, gm.message));
    }
    if (!o.acks.acks.empty()) send(wire::FrameType::kHostBeatAck, wire::EncodeHostBeatAck(o.acks));
  }
}

void Host::Impl::OnRoundDone(std::vector<RoundItem> round, Status s) {
  round_in_flight_ = false;
  if (stopping_) return;
  if (!s.ok()) {
    Fail(s);
    return;
  }
  for (RoundItem& item : round) {
    pending_.erase(item.group->id);
    if (item.group->removed) continue;
    dirty_.insert(item.group->id);  // its next Ready, if any, was waiting for this round
    (void)core_.With(item.group->id, [&](RawNode& core) {
      io_checker_.Check();
      FinishReady(item.group, core, std::move(item.rd));
    });
  }
  Pump();
}

// Steps 3-5 of the durability contract (raw_node.h), once the Ready is durable.
void Host::Impl::FinishReady(const std::shared_ptr<Group>& g, RawNode& core, Ready rd) {
  Group& group = *g;
  core_.Send(group.id, std::move(rd.messages_after_persist));
  core.Advance(rd);
  ApplyTask task;
  if (rd.snapshot) {
    // Installed in the log by the round: the state machine gets it before any entry
    // after it (the core handed out none meanwhile: RawNode::TakeCommitted).
    RAFT_ASSERT_GE(rd.snapshot->index, group.queued_through);
    group.queued_through = rd.snapshot->index;
    task.restore = rd.snapshot;
  }
  for (auto& e : rd.committed_entries) {
    if (e.index <= group.queued_through) continue;
    RAFT_ASSERT_EQ(e.index, group.queued_through + 1);
    group.queued_through = e.index;
    task.entries.push_back(std::move(e));
  }
  for (auto& rs : rd.read_states) {
    auto it = pending_reads_.find(rs.context);
    if (it == pending_reads_.end()) continue;
    if (rs.index <= group.applied.load() || mutation::Active(mutation::Kind::kServeReadEarly)) {
      it->second.cb->Run(std::to_string(rs.index));
    } else {
      task.reads.emplace_back(rs.index, it->second.cb);
    }
    pending_reads_.erase(it);
  }
  PublishStatus(group, core);
  if (!task.restore && task.entries.empty() && task.reads.empty()) return;
  task.group = g;
  auto shared = std::make_shared<ApplyTask>(std::move(task));
  env_->Post(runtime::Lane::kApply, [this, shared] {
    apply_checker_.Check();
    RunApplyTask(*shared);
  });
}

void Host::Impl::ApplyDurableCommitted(const std::shared_ptr<Group>& group, Ready& rd) {
  // Entries after a snapshot to install wait for it (FinishReady).
  if (rd.snapshot || rd.committed_entries.empty()) return;
  // Durable: everything below the Ready's own entries (persisted by earlier rounds).
  const Index stable_through =
      rd.entries.empty() ? rd.committed_entries.back().index : rd.entries.front().index - 1;
  std::vector<Entry> early;
  for (Entry& e : rd.committed_entries) {
    if (e.index > stable_through) break;
    if (e.index <= group->queued_through) continue;
    early.push_back(std::move(e));  // e keeps its index and term for Advance; FinishReady skips it
  }
  QueueApply(group, std::move(early));
}

void Host::Impl::QueueApply(const std::shared_ptr<Group>& group, std::vector<Entry> entries) {
  if (entries.empty()) return;
  RAFT_ASSERT_EQ(entries.front().index, group->queued_through + 1);
  group->queued_through = entries.back().index;
  auto task = std::make_shared<ApplyTask>();
  task->group = group;
  task->entries = std::move(entries);
  env_->Post(runtime::Lane::kApply, [this, task] {
    apply_checker_.Check();
    RunApplyTask(*task);
  });
}

void Host::Impl::SweepDeadlines() {
  const Clock::time_point now = env_->Now();
  deadlines_.Expire(
      now, Status(ErrorCode::kTimeout, "timed out; the outcome is unknown (it may still commit)"));
  for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
    if (it->second.cb->done()) {
      it = pending_reads_.erase(it);
      continue;
    }
    if (ticks_ - it->second.issued_tick >= kReadRetryTicks) {
      it->second.issued_tick = ticks_;
      // A ReadIndex request or its answer may be lost; the core does not resend it.
      (void)core_.With(it->second.group->id,
                       [&](RawNode& core) { (void)core.ReadIndex(it->first); });
    }
    ++it;
  }
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    const RawNode* core = core_.Get(it->group);
    if (core != nullptr && core->leader() == it->target) {
      it->done(Status::Ok());
    } else if (core == nullptr) {
      it->done(Status(ErrorCode::kShutdown, "the group was removed"));
    } else if (now >= it->deadline) {
      it->done(Status(ErrorCode::kTimeout, "leadership transfer did not complete in time"));
    } else {
      ++it;
      continue;
    }
    it = transfers_.erase(it);
  }
}

void Host::Impl::Fail(const Status& s) {
  if (failed_) return;
  failed_ = true;
  Log(LogLevel::kError, "the shared log failed; this host stops taking part in Raft",
      {{"error", s.ToString()}});
  base::MutexLock l(&status_mu_);
  failure_ = s.ToString();
}

// ---------------------------------------------------------------- transport (io lane)

Status Host::Impl::OnMessage(Message /*m*/) {
  io_checker_.Check();
  return Status(ErrorCode::kInvalidArgument, "a version-3 message on a host's transport");
}

void Host::Impl::OnUnreachable(NodeId /*peer*/) {
  // A frame to the peer did not fit its queue and was dropped: each group's core finds
  // out from the missing answer, as from a lost message (the host does not know which
  // groups' messages were in the frame).
  io_checker_.Check();
}

void Host::Impl::OnSnapshotSent(NodeId /*peer*/, bool /*ok*/) { io_checker_.Check(); }

Status Host::Impl::AcceptSnapshot(NodeId /*peer*/) {
  io_checker_.Check();
  return Status(ErrorCode::kInvalidArgument, "a host takes no version-3 snapshot streams");
}

void Host::Impl::OnPeerAddress(NodeId /*peer*/, const std::string& /*addr*/) {
  // The processes and their addresses are HostOptions::peers; a dialer's claim adds none.
  io_checker_.Check();
}

void Host::Impl::OnPeerLost(NodeId peer) {
  io_checker_.Check();
  if (stopping_ || failed_) return;
  core_.PeerLost(peer);
  SchedulePump();
}

void Host::Impl::OnPeerConnClosed(NodeId /*peer*/) {
  io_checker_.Check();
  base::MutexLock l(&status_mu_);
  ++metrics_.frames_refused;
}

Status Host::Impl::OnGroupMessage(NodeId peer, wire::GroupMessage gm) {
  io_checker_.Check();
  if (stopping_ || failed_) return Status::Ok();  // dropped, not the sender's fault
  if (gm.message.type == MessageType::kSnapshot) {
    // F-1 (b), as a Node: the core would install a snapshot no file backs. An honest
    // leader sends this message only after the whole stream is durable here (or it is
    // stale: at or below the commit index, which the core ignores).
    std::shared_ptr<Group> group = Find(gm.group);
    const RawNode* core = core_.Get(gm.group);
    const SnapshotMeta& snap = gm.message.snapshot;
    if (group != nullptr && core != nullptr && snap.index > core->GetStatus().hard_state.commit &&
        !group->snaps->Exists(snap.index, snap.term))
      return Status(ErrorCode::kInvalidArgument, "a snapshot message of group " +
                                                     std::to_string(gm.group) +
                                                     " for a snapshot never received whole");
  }
  Status s = core_.Receive(peer, gm);
  SchedulePump();
  return s;
}

Status Host::Impl::OnHostBeat(NodeId peer, wire::HostBeat hb) {
  io_checker_.Check();
  if (stopping_ || failed_) return Status::Ok();
  Status s = core_.Receive(peer, hb);
  SchedulePump();
  return s;
}

Status Host::Impl::OnHostBeatAck(NodeId peer, wire::HostBeatAck ha) {
  io_checker_.Check();
  if (stopping_ || failed_) return Status::Ok();
  Status s = core_.Receive(peer, ha);
  SchedulePump();
  return s;
}

// ---------------------------------------------------------------- disk lane

Status Host::Impl::PersistRound(const std::vector<RoundItem>& round) {
  std::uint64_t written = 0;
  for (const RoundItem& item : round) {
    // A group removed meanwhile is still in the log here: its removal is posted to this
    // lane after the io lane dropped it, so it runs after this round.
    const GroupId g = item.group->id;
    if (item.rd.snapshot) {
      if (Status s = log_->ApplySnapshot(g, *item.rd.snapshot); !s.ok()) return s;
    }
    if (!item.rd.entries.empty()) {
      if (Status s = log_->Append(g, item.rd.entries); !s.ok()) return s;
    }
    if (item.rd.hard_state && !mutation::Active(mutation::Kind::kSkipHardState)) {
      if (Status s = log_->SetHardState(g, *item.rd.hard_state); !s.ok()) return s;
    }
    ++written;
  }
  if (!mutation::Active(mutation::Kind::kSkipLogSync)) {
    if (Status s = log_->Sync(); !s.ok()) return s;
  }
  base::MutexLock l(&status_mu_);
  ++metrics_.disk_rounds;
  metrics_.readies_persisted += written;
  return Status::Ok();
}

// ---------------------------------------------------------------- apply lane

void Host::Impl::RunApplyTask(ApplyTask& task) {
  Group& group = *task.group;
  if (group.removed) return;
  if (task.restore) RestoreGroup(group, *task.restore);
  std::vector<Entry> entries;
  for (auto& e : task.entries)
    if (e.index > group.applied.load()) entries.push_back(std::move(e));
  if (!entries.empty()) {
    std::vector<std::string> results;
    group.sm->Apply(entries, &results);
    results.resize(entries.size());
    for (const Entry& e : entries) TrackApplied(group, e);
    group.applied = entries.back().index;
    // Same index and term: our entry. Another term at our index: ours was overwritten
    // and never committed.
    std::vector<std::pair<runtime::SharedCallback, Result<std::string>>> done;
    std::uint64_t committed = 0;
    {
      base::MutexLock l(&group.pending_mu);
      for (std::size_t i = 0; i < entries.size(); ++i) {
        auto it = group.proposals.find(entries[i].index);
        if (it == group.proposals.end()) continue;
        if (it->second.term == entries[i].term ||
            mutation::Active(mutation::Kind::kProposalByIndexOnly)) {
          done.emplace_back(it->second.cb, std::move(results[i]));
          ++committed;
        } else {
          done.emplace_back(
              it->second.cb,
              Status(ErrorCode::kProposalDropped,
                     "leadership changed before the proposal committed; it was not applied"));
        }
        group.proposals.erase(it);
      }
    }
    {
      base::MutexLock l(&status_mu_);
      metrics_.proposals_committed += committed;
      metrics_.proposals_failed += done.size() - committed;
    }
    for (auto& [cb, r] : done) cb->Run(std::move(r));
  }
  for (auto& [index, cb] : task.reads) group.waiting_reads.emplace(index, cb);
  const Index applied = group.applied.load();
  while (!group.waiting_reads.empty() && group.waiting_reads.begin()->first <= applied) {
    group.waiting_reads.begin()->second->Run(std::to_string(group.waiting_reads.begin()->first));
    group.waiting_reads.erase(group.waiting_reads.begin());
  }
  MaybeSnapshot(task.group);
}

}  // namespace raft
