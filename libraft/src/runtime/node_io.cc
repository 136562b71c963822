// The io thread: drives the RawNode through the durability contract of raw_node.h.
#include "core/mutation.h"
#include "runtime/node_impl.h"

namespace raft {

void Node::Impl::Tick() {
  if (stopping_) return;
  ++ticks_;
  raw_->Tick();
  SweepDeadlines();
  if (opts_.peer_reap_ms > 0 && ticks_ >= next_reap_tick_) {
    next_reap_tick_ = ticks_ + std::max(1, 1000 / opts_.tick_ms);
    ReapPeers();
  }
  Pump();
}

void Node::Impl::ReapPeers() {
  const std::uint64_t silent_ticks = std::max(1, opts_.peer_reap_ms / opts_.tick_ms);
  const ConfState conf = raw_->GetStatus().conf;  // as appended
  for (const auto* ids : {&conf.voters, &conf.learners}) {
    for (NodeId id : *ids) {
      auto it = members_.find(id);
      if (id != opts_.self.id && !transport_->HasPeer(id) && it != members_.end() &&
          !it->second.raft_addr.empty()) {
        transport_->SetPeerAddress(id, it->second.raft_addr);
        transport_->SetPeerName(id, it->second.name);
      }
    }
  }
  const NodeId leader = raw_->leader();
  for (NodeId id : transport_->PeerIds()) {
    if (conf.Contains(id) || id == leader) continue;
    auto heard = heard_at_tick_.try_emplace(id, ticks_).first;  // first seen: the clock starts
    if (ticks_ - heard->second < silent_ticks) continue;
    Log(LogLevel::kInfo, "closing the connection to a peer outside the membership",
        {{"peer", MemberLabel(id)},
         {"silent_ms", std::to_string((ticks_ - heard->second) * opts_.tick_ms)}});
    transport_->RemovePeer(id);
    base::MutexLock l(&status_mu_);
    ++metrics_.peers_reaped;
  }
  for (auto it = heard_at_tick_.begin(); it != heard_at_tick_.end();) {
    const bool forget = ticks_ - it->second >= silent_ticks && !transport_->HasPeer(it->first);
    it = forget ? heard_at_tick_.erase(it) : std::next(it);
  }
}

void Node::Impl::SweepDeadlines() {
  auto now = env_->Now();
  deadlines_.Expire(
      now, Status(ErrorCode::kTimeout, "timed out; the outcome is unknown (it may still commit)"));
  for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
    if (it->second.cb->done()) {
      it = pending_reads_.erase(it);
      continue;
    }
    if (ticks_ - it->second.issued_tick >= kReadRetryTicks) {
      it->second.issued_tick = ticks_;
      (void)raw_->ReadIndex(it->first);  // no leader now: retried on a later tick
    }
    ++it;
  }
  NodeId leader = raw_->leader();
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    if (leader == it->target) {
      it->done(Status::Ok());
    } else if (now >= it->deadline) {
      it->done(Status(ErrorCode::kTimeout, "leadership transfer did not complete in time"));
    } else {
      ++it;
      continue;
    }
    it = transfers_.erase(it);
  }
}

void Node::Impl::SendAll(std::vector<Message>& msgs) {
  for (auto& m : msgs) {
    if (m.type == MessageType::kSnapshot) {
      base::MutexLock l(&status_mu_);
      ++metrics_.snapshots_sent;
    }
    transport_->Send(std::move(m));
  }
  msgs.clear();
}

void Node::Impl::SchedulePump() {
  // Requests and messages that arrive together share one Ready: one append round, one
  // heartbeat round for all queued reads, one fsync.
  if (pump_scheduled_) return;
  pump_scheduled_ = true;
  env_->Post(runtime::Lane::kIo, [this] {
    io_checker_.Check();
    pump_scheduled_ = false;
    Pump();
  });
}

void Node::Impl::UpdateApplyPause() {
  const bool pause = apply_queue_bytes_.load() >= opts_.max_apply_queue_bytes;
  if (pause == apply_paused_) return;
  apply_paused_ = pause;
  raw_->PauseCommitted(pause);
  if (pause) {
    base::MutexLock l(&status_mu_);
    ++metrics_.apply_pauses;
  }
}

void Node::Impl::Pump() {
  while (!failed_ && !stopping_) {
    UpdateApplyPause();
    if (persisting_) {
      // The disk is busy with the previous Ready: let appends and heartbeats out anyway,
      // and apply what acknowledgements committed meanwhile (docs/runtime.md).
      auto msgs = raw_->TakeMessages();
      SendAll(msgs);
      TakeDurableCommitted();
      return;
    }
    if (!raw_->HasReady()) return;
    Ready rd = raw_->GetReady();
    if (rd.soft_state) {
      if (rd.soft_state->leader != last_leader_) {
        Log(LogLevel::kInfo, "leader changed",
            {{"leader", rd.soft_state->leader == kNoNode ? std::string("none")
                                                         : MemberLabel(rd.soft_state->leader)},
             {"role", RoleName(rd.soft_state->role)},
             {"term", std::to_string(raw_->term())}});
        base::MutexLock l(&status_mu_);
        ++metrics_.leader_changes;
        last_leader_ = rd.soft_state->leader;
      }
    }
    if (rd.removed) Log(LogLevel::kWarn, "this node was removed from the cluster", {});
    LearnMembers(rd.entries);
    if (rd.snapshot) {
      auto reader = snaps_->OpenReader(rd.snapshot->index, rd.snapshot->term);
      if (reader.ok())
        for (const auto& m : (*reader)->header().members) LearnMember(m);
    }
    SendAll(rd.messages);
    if (rd.hard_state) hard_state_ = *rd.hard_state;
    if (!rd.must_sync) {
      // Nothing to make durable but perhaps a higher commit index (raw_node.h): no disk
      // round trip.
      FinishReady(std::move(rd));
      continue;
    }
    // The hard state goes to disk only when its term or vote changed. The commit index
    // alone is volatile (raw_node.h); writing it with every Ready cost a second fdatasync
    // (of the hard-state file) per Ready: 0.35 ms per Ready instead of 0.2 ms here.
    // It is written with the next term or vote change and at Stop().
    std::optional<HardState> hs;
    if (hard_state_.term != written_hard_state_.term ||
        hard_state_.vote != written_hard_state_.vote) {
      hs = hard_state_;
      written_hard_state_ = hard_state_;
    }
    if (mutation::Active(mutation::Kind::kSendBeforePersist)) SendAll(rd.messages_after_persist);
    if (mutation::Active(mutation::Kind::kSkipHardState)) hs.reset();
    ApplyDurableCommitted(rd);
    persisting_ = true;
    auto shared = std::make_shared<Ready>(std::move(rd));
    env_->Post(runtime::Lane::kDisk, [this, shared, hs] {
      disk_checker_.Check();
      Status s = PersistReady(*shared, hs);
      // An installed snapshot is now the log's: files below it (older snapshots, receives
      // that never completed or were never installed) go, as after a local snapshot. Its
      // own file is opened now, for the apply thread's restore: the next installed
      // snapshot's cleanup (on this thread) may remove the name before that restore runs.
      std::shared_ptr<runtime::SnapshotFileReader> snap;
      if (s.ok() && shared->snapshot) {
        snaps_->Cleanup(shared->snapshot->index, shared->snapshot->term);
        auto r = snaps_->OpenReader(shared->snapshot->index, shared->snapshot->term);
        if (r.ok()) snap = std::move(r).value();  // else the restore reports the error
      }
      env_->Post(runtime::Lane::kIo, [this, shared, s, snap] {
        io_checker_.Check();
        OnPersisted(std::move(*shared), s, snap);
      });
    });
    return;
  }
}

void Node::Impl::ApplyDurableCommitted(Ready& rd) {
  // Committed entries that an earlier Ready made durable here need not wait for this
  // Ready's fdatasync (under load it is the one in flight when their acknowledgements
  // arrived, so waiting cost a whole fdatasync per write: docs/performance.md, finding
  // 13). raw_node.h allows applying committed entries while a Ready persists; these are
  // also durable locally, so the state machine never gets ahead of the log on disk.
  // Their payloads move to the apply thread now; the entries stay in rd (index and term:
  // Advance needs the last index) and FinishReady queues only those after them.
  if (rd.snapshot || rd.committed_entries.empty()) return;
  const Index stable_through =
      rd.entries.empty() ? rd.committed_entries.back().index : rd.entries.front().index - 1;
  ApplyTask early;
  for (auto& e : rd.committed_entries) {
    if (e.index > stable_through) break;
    RAFT_ASSERT_EQ(e.index, queued_through_ + 1);
    queued_through_ = e.index;
    early.entries.push_back(std::move(e));  // e keeps its index and term for Advance
  }
  if (!early.entries.empty()) PostApply(std::move(early));
}

void Node::Impl::TakeDurableCommitted() {
  // Entries committed while a Ready persists (an acknowledgement arrived meanwhile) and
  // durable here: without this they would wait for the fdatasync in progress, which
  // cost writes under load about one fdatasync each (docs/performance.md, finding 13).
  // The core hands out only entries below the outstanding Ready's own (raw_node.h), and
  // only once every committed entry before them was handed out: those of the outstanding
  // Ready were then all durable already and queued by ApplyDurableCommitted, so the
  // order on the apply queue holds (asserted).
  std::vector<Entry> ents = raw_->TakeCommitted();
  if (ents.empty()) return;
  RAFT_ASSERT_EQ(ents.front().index, queued_through_ + 1);
  queued_through_ = ents.back().index;
  ApplyTask task;
  task.entries = std::move(ents);
  PostApply(std::move(task));
}

Status Node::Impl::PersistReady(const Ready& rd, const std::optional<HardState>& hs) {
  auto start = env_->Now();
  base::MutexLock l(&storage_mu_);
  if (rd.snapshot) {
    Status s = disk_->ApplySnapshot(*rd.snapshot);
    storage_view_->PublishReset();
    storage_view_->Publish();
    if (!s.ok()) return s;
  }
  if (!rd.entries.empty()) {
    if (Status s = disk_->Append(rd.entries); !s.ok()) return s;
  }
  if (hs) {
    if (Status s = disk_->SetHardState(*hs); !s.ok()) return s;
  }
  Status s = mutation::Active(mutation::Kind::kSkipLogSync) ? Status::Ok() : disk_->Sync();
  if (!s.ok()) return s;
  // Only now is the core allowed to see these entries as stable.
  storage_view_->PublishAppended(rd.entries);
  storage_view_->Publish();
  auto us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(env_->Now() - start).count());
  base::MutexLock sl(&status_mu_);
  ++metrics_.fsyncs;
  std::size_t b = 0;
  while (b < NodeMetrics::kBuckets && us > NodeMetrics::kLatencyBucketsUs[b]) ++b;
  ++metrics_.fsync_latency[b];
  metrics_.fsync_latency_sum_us += us;
  for (const auto& e : rd.entries) metrics_.bytes_appended += e.data.size();
  return s;
}

void Node::Impl::OnPersisted(Ready rd, Status s,
                             std::shared_ptr<runtime::SnapshotFileReader> snap) {
  if (stopping_) return;
  if (!s.ok()) {
    Fail(s);
    return;
  }
  persisting_ = false;
  FinishReady(std::move(rd), std::move(snap));
  Pump();
}

// Steps 3-5 of the durability contract, once step 2 is durable (or needed no fsync).
void Node::Impl::FinishReady(Ready rd, std::shared_ptr<runtime::SnapshotFileReader> snap) {
  SendAll(rd.messages_after_persist);
  raw_->Advance(rd);
  ApplyTask task;
  task.restore = rd.snapshot;
  task.restore_reader = std::move(snap);
  if (rd.snapshot) queued_through_ = rd.snapshot->index;
  for (auto& e : rd.committed_entries) {  // those not already queued by ApplyDurableCommitted
    if (e.index <= queued_through_) continue;
    RAFT_ASSERT_EQ(e.index, queued_through_ + 1);
    queued_through_ = e.index;
    task.entries.push_back(std::move(e));
  }
  for (auto& rs : rd.read_states) {
    auto it = pending_reads_.find(rs.context);
    if (it == pending_reads_.end()) continue;
    if (rs.index <= applied_.load()) {
      // Already applied (the common case when reads outnumber writes): answer here
      // rather than wake the apply thread for it.
      it->second.cb->Run(std::to_string(rs.index));
    } else {
      task.reads.emplace_back(rs.index, it->second.cb);
    }
    pending_reads_.erase(it);
  }
  if (task.restore || !task.entries.empty() || !task.reads.empty()) PostApply(std::move(task));
  base::MutexLock l(&status_mu_);
  core_status_ = raw_->GetStatus();
}

void Node::Impl::Fail(const Status& s) {
  if (failed_) return;
  failed_ = true;
  storage_failed_ = true;
  Log(LogLevel::kError, "storage failed; this node stops accepting writes",
      {{"error", s.ToString()}});
  base::MutexLock l(&status_mu_);
  failure_ = s.ToString();
}

void Node::Impl::LearnMembers(const std::vector<Entry>& entries) {
  for (const auto& e : entries) {
    ConfChange cc;
    MemberInfo mi;
    if (e.type == EntryType::kConfChange && DecodeConfChange(e.data, &cc) &&
        DecodeMemberInfo(cc.context, &mi) && mi.id == cc.node) {
      LearnMember(mi);
    }
  }
}

std::string Node::Impl::MemberLabel(NodeId id) {
  auto it = members_.find(id);
  return it != members_.end() && !it->second.name.empty() ? it->second.name : std::to_string(id);
}

void Node::Impl::LearnMember(const MemberInfo& m) {
  members_[m.id] = m;
  if (transport_ && m.id != opts_.self.id && !m.raft_addr.empty()) {
    transport_->SetPeerAddress(m.id, m.raft_addr);
    transport_->SetPeerName(m.id, m.name);
  }
  base::MutexLock l(&status_mu_);
  members_view_.clear();
  for (const auto& [id, mi] : members_) members_view_.push_back(mi);
}

Status Node::Impl::OnMessage(Message m) {
  io_checker_.Check();                            // the Transport calls on the io thread
  if (failed_ || stopping_) return Status::Ok();  // dropped, not the sender's fault
  Status s;
  if (m.type == MessageType::kSnapshot && m.snapshot.index > raw_->GetStatus().hard_state.commit &&
      !snaps_->Exists(m.snapshot.index, m.snapshot.term)) {
    // F-1 (b): the core would restore a snapshot we do not hold, the disk thread drop the
    // log for it, and the apply thread find no file. A sender streams the file (received
    // whole and its checksums verified, SnapshotReceiver::Finish) before this message.
    // One at or below our commit index is stale (a duplicate whose file a later local
    // snapshot already cleaned up): the core ignores it, and it is no sign of a liar.
    std::string why("snapshot message for ");
    why += std::to_string(m.snapshot.index);
    why += '/';
    why += std::to_string(m.snapshot.term);
    why += " without a received snapshot file";
    s = Status(ErrorCode::kInvalidArgument, why);
  } else {
    s = raw_->Step(m);
  }
  if (!s.ok()) {
    OnRefused(m, s);
  } else if (opts_.peer_reap_ms > 0) {
    heard_at_tick_[m.from] = ticks_;
  }
  SchedulePump();
  return s;
}

// A refusal is either a bug or a peer that lies (docs/core.md, "Message validation"):
// counted, and logged at most once per kRefusedLogInterval so that a flood of them
// cannot flood the log. The transport closes the sender's connection (OnMessage's
// result) and reports it in OnPeerConnClosed.
void Node::Impl::OnRefused(const Message& m, const Status& s) {
  {
    base::MutexLock l(&status_mu_);
    ++metrics_.messages_refused;
  }
  auto now = env_->Now();
  if (refused_logged_at_ && now - *refused_logged_at_ < kRefusedLogInterval) {
    ++refused_unlogged_;
    return;
  }
  Log(LogLevel::kWarn, "peer message refused",
      {{"from", MemberLabel(m.from)},
       {"error", s.ToString()},
       {"refused_unlogged", std::to_string(refused_unlogged_)}});
  refused_logged_at_ = now;
  refused_unlogged_ = 0;
}

void Node::Impl::OnPeerConnClosed(NodeId /*peer*/) {
  io_checker_.Check();  // the Transport calls on the io thread
  base::MutexLock l(&status_mu_);
  ++metrics_.peer_conns_closed;
}

void Node::Impl::OnUnreachable(NodeId peer) {
  io_checker_.Check();  // the Transport calls on the io thread
  if (!stopping_) raw_->ReportUnreachable(peer);
}

void Node::Impl::OnPeerLost(NodeId peer) {
  io_checker_.Check();  // the Transport calls on the io thread
  // A killed leader's connections end at once: campaign soon rather than after a full
  // election timeout (RawNode::ReportLeaderLost).
  if (!stopping_ && !failed_) raw_->ReportLeaderLost(peer);
}

void Node::Impl::OnSnapshotSent(NodeId peer, bool ok) {
  io_checker_.Check();  // the Transport calls on the io thread
  if (stopping_) return;
  raw_->ReportSnapshot(peer, ok);
  Pump();
}

Status Node::Impl::AcceptSnapshot(NodeId peer) {
  io_checker_.Check();  // the Transport calls on the io thread
  // An honest leader sends a snapshot only to a follower that answered its append, so
  // the follower knows it leads by then; a stream from anyone else is refused before it
  // reaches the disk.
  const NodeId leader = raw_->leader();
  if (peer == leader) return Status::Ok();
  return Status(ErrorCode::kInvalidArgument,
                "snapshot stream from " + MemberLabel(peer) + ", which is not the leader (" +
                    (leader == kNoNode ? std::string("none known") : MemberLabel(leader)) + ")");
}

void Node::Impl::OnPeerAddress(NodeId peer, const std::string& addr) {
  io_checker_.Check();  // the Transport calls on the io thread
  // Addresses from the log win; a dialer's own claim only fills a gap (a new member
  // answering a leader it has not heard of yet).
  if (members_.count(peer) || transport_->HasPeer(peer)) return;
  transport_->SetPeerAddress(peer, addr);
}

}  // namespace raft
