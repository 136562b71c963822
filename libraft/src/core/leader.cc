// Leader side: proposals, replication, commit, heartbeats, ReadIndex, leadership
// transfer, membership changes.
#include <algorithm>
#include <string>

#include "base/assert.h"
#include "core/mutation.h"
#include "core/quorum.h"
#include "core/raft_core.h"

namespace raft {
namespace {
std::uint64_t PayloadBytes(const std::vector<Entry>& ents) {
  std::uint64_t n = 0;
  for (const auto& e : ents) n += e.data.size();
  return n;
}
}  // namespace

Result<LogPosition> RaftCore::Propose(std::string data) {
  Unquiesce();
  if (role_ != Role::kLeader) return NotLeader();
  if (lead_transferee_ != kNoNode)
    return Status(ErrorCode::kProposalDropped,
                  "leadership transfer to " + std::to_string(lead_transferee_) + " in progress");
  Entry e;
  e.data = std::move(data);
  return AppendAsLeader({std::move(e)});
}

Result<LogPosition> RaftCore::ProposeConfChange(const ConfChange& cc) {
  Unquiesce();
  if (role_ != Role::kLeader) return NotLeader();
  if (lead_transferee_ != kNoNode)
    return Status(ErrorCode::kProposalDropped, "leadership transfer in progress");
  // One change at a time, and only once an entry of this term has committed: the fix
  // for the single-server change bug (Ongaro, raft-dev 2015).
  if (pending_conf_index_ > log_.committed() || !CommittedInTerm())
    return Status(ErrorCode::kConfChangePending,
                  "a membership change is pending or this leader has not committed yet");
  auto next = ApplyConfChange(conf(), cc);
  if (!next.ok()) return next.status();
  Entry e;
  e.type = EntryType::kConfChange;
  e.data = EncodeConfChange(cc);
  return AppendAsLeader({std::move(e)});
}

Result<LogPosition> RaftCore::AppendAsLeader(std::vector<Entry> ents) {
  std::uint64_t bytes = PayloadBytes(ents);
  if (cfg_.max_uncommitted_bytes != 0 && uncommitted_bytes_ > 0 &&
      uncommitted_bytes_ + bytes > cfg_.max_uncommitted_bytes) {
    return Status(ErrorCode::kProposalDropped, "too many uncommitted bytes at the leader");
  }
  uncommitted_bytes_ += bytes;
  Index last = log_.LastIndex();
  for (std::size_t i = 0; i < ents.size(); ++i) {
    ents[i].term = term_;
    ents[i].index = last + 1 + i;
  }
  bool changed = false;
  for (const Entry& e : ents) {
    if (e.type == EntryType::kConfChange) {
      changed |= conf_.OnAppend(e);
      pending_conf_index_ = e.index;
    }
  }
  LogPosition pos{term_, ents.back().index};
  log_.Append(std::move(ents));
  if (changed) OnConfigChanged();
  // The leader's own entries count toward commit only once durable (Advance), so the
  // disk write runs in parallel with replication.
  bcast_pending_ = true;
  return pos;
}

bool RaftCore::SendAppend(NodeId to, bool send_if_empty) {
  auto it = prs_.find(to);
  if (it == prs_.end() || to == cfg_.id) return false;
  Progress& pr = it->second;
  if (pr.IsPaused()) return false;
  Index prev = pr.next() - 1;
  auto prev_term = log_.TermAt(prev);
  std::optional<std::vector<Entry>> ents;
  if (prev_term) ents = log_.Slice(pr.next(), log_.LastIndex() + 1, cfg_.max_msg_bytes);
  if (!prev_term || !ents) return SendSnapshot(to);
  if (ents->empty() && !send_if_empty) return false;
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.term = term_;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  bool had = !ents->empty();
  Index last = had ? ents->back().index : prev;
  std::uint64_t bytes = PayloadBytes(*ents);
  m.entries = std::move(*ents);
  pr.SentEntries(last, bytes, had);
  pr.set_sent_commit(m.commit);
  Send(std::move(m));
  return true;
}

bool RaftCore::SendSnapshot(NodeId to) {
  Progress& pr = prs_.at(to);
  if (!pr.recent_active()) return false;  // don't stream to a peer that may be down
  auto snap = log_.storage()->Snapshot();
  if (!snap.ok()) return false;  // unavailable for now; retried on the next trigger
  RAFT_ASSERT(snap->index > 0);
  pr.BecomeSnapshot(snap->index);
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = to;
  m.term = term_;
  m.snapshot = std::move(snap).value();
  Send(std::move(m));
  return true;
}

void RaftCore::SendHeartbeats(bool quiesce) {
  std::uint64_t seq = ++hb_seq_;
  hb_sent_.emplace_back(seq, ticks_);
  while (hb_sent_.size() > 4 * static_cast<std::size_t>(cfg_.election_ticks) + 8)
    hb_sent_.pop_front();
  for (auto& [id, pr] : prs_) {
    if (id == cfg_.id) continue;
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = id;
    m.term = term_;
    m.commit = std::min(pr.match(), log_.committed());
    m.read_seq = seq;
    m.quiesce = quiesce;
    Send(std::move(m));
  }
  heartbeat_pending_ = false;
}

void RaftCore::FlushLeader() {
  if (role_ != Role::kLeader) return;
  if (bcast_pending_) {
    for (auto& [id, pr] : prs_) {
      while (SendAppend(id, false)) {
      }
    }
  }
  if (commit_bcast_pending_) {
    for (auto& [id, pr] : prs_) {
      if (id != cfg_.id && pr.sent_commit() < log_.committed()) SendAppend(id, true);
    }
  }
  if (heartbeat_pending_) SendHeartbeats();
  bcast_pending_ = commit_bcast_pending_ = false;
}

void RaftCore::MaybeCommitAsLeader() {
  Index idx = CommittedIndex(conf().voters, [&](NodeId id) {
    auto it = prs_.find(id);
    return it == prs_.end() ? 0 : it->second.match();
  });
  bool first_in_term = !CommittedInTerm();
  if (!log_.MaybeCommit(idx, term_)) return;
  commit_bcast_pending_ = true;
  if (first_in_term && CommittedInTerm()) {
    auto waiting = std::move(reads_before_commit_);
    reads_before_commit_.clear();
    for (auto& r : waiting) LeaderReadIndex(std::move(r.context), r.from);
  }
  // A leader removed from the configuration steps down once the removal commits
  // (thesis 4.2.2); it tells the others the commit first.
  if (!conf().voters.count(cfg_.id) && conf_.CurrentIndex() <= log_.committed()) {
    FlushLeader();
    BecomeFollower(term_, kNoNode);
  }
}

void RaftCore::StepLeader(const Message& m) {
  switch (m.type) {
    case MessageType::kAppendResponse:
      HandleAppendResponse(m);
      break;
    case MessageType::kHeartbeatResponse:
      HandleHeartbeatResponse(m);
      break;
    case MessageType::kReadIndex:
      if (conf().Contains(m.from)) LeaderReadIndex(m.context, m.from);
      break;
    default:
      break;
  }
}

void RaftCore::HandleAppendResponse(const Message& m) {
  auto it = prs_.find(m.from);
  if (it == prs_.end()) return;
  Progress& pr = it->second;
  pr.set_recent_active(true);
  if (m.reject) {
    Index hint = m.reject_hint;
    if (m.log_term > 0) hint = log_.FindConflictByTerm(m.reject_hint, m.log_term);
    if (pr.MaybeDecreaseTo(m.index, hint)) {
      if (pr.state() == ProgressState::kReplicate) pr.BecomeProbe();
      SendAppend(m.from, true);
    }
    return;
  }
  if (!pr.MaybeUpdate(m.index) && !(pr.match() == m.index && pr.state() == ProgressState::kProbe))
    return;
  switch (pr.state()) {
    case ProgressState::kProbe:
      pr.BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      if (pr.match() + 1 >= log_.FirstIndex()) {
        pr.BecomeProbe();
        pr.BecomeReplicate();
      }
      break;
    case ProgressState::kReplicate:
      pr.inflights().FreeLE(m.index);
      break;
  }
  MaybeCommitAsLeader();
  if (role_ != Role::kLeader) return;
  while (SendAppend(m.from, false)) {
  }
  if (m.from == lead_transferee_ && pr.match() == log_.LastIndex()) SendTimeoutNow(m.from);
}

void RaftCore::HandleHeartbeatResponse(const Message& m) {
  auto it = prs_.find(m.from);
  if (it == prs_.end()) return;
  Progress& pr = it->second;
  pr.set_recent_active(true);
  pr.set_probe_sent(false);
  // A full window whose appends were lost would otherwise stall this peer forever: the
  // follower rejects nothing, so nothing frees it. Free one slot; the next append then
  // either fills the gap or is rejected, which rewinds next (found by the simulator).
  if (pr.state() == ProgressState::kReplicate && pr.inflights().Full())
    pr.inflights().FreeFirstOne();
  if (pr.match() < log_.LastIndex() || pr.sent_commit() < log_.committed()) {
    SendAppend(m.from, true);
  }
  if (m.read_seq != 0 && m.read_seq <= hb_seq_ && conf().voters.count(m.from)) {
    read_only_.Ack(m.from, m.read_seq);
    ReleaseReads();
  }
}

void RaftCore::LeaderReadIndex(std::string context, NodeId from) {
  if (!CommittedInTerm()) {
    // The commit index of a new leader may lag; wait for its no-op to commit (thesis 6.4).
    reads_before_commit_.push_back(PendingRead{0, std::move(context), from, 0});
    return;
  }
  Index index = log_.committed();
  bool alone = conf().voters.size() == 1 && conf().voters.count(cfg_.id);
  if (alone || (cfg_.read_only == ReadOnlyOption::kLeaseBased && LeaseValid())) {
    RespondRead(PendingRead{index, std::move(context), from, 0});
    return;
  }
  read_only_.Add(index, std::move(context), from, hb_seq_ + 1);
  heartbeat_pending_ = true;  // one heartbeat round per Ready confirms all queued reads
}

// The lease. A voter that answered a heartbeat sent at tick t heard from us at or after
// t, and from then on keeps a promise for election_ticks of its own ticks
// (LeasePromised): it neither grants a (pre-)vote nor campaigns, whatever happens to its
// term, its leader or its connections (ReportLeaderLost), and across a restart. So if a
// quorum answered heartbeats sent within the last election_ticks - 1 ticks, no other
// leader can exist yet. The promise is kept by the voters' own configuration: every voter
// must run kLeaseBased. Exceptions:
//  - a transfer: voters grant a campaign_transfer vote inside the promise, so once this
//    leader has sent a TimeoutNow it has no lease for the rest of its term;
//  - clocks: one tick of margin absorbs tick granularity; the assumption is that no node's
//    ticks run faster than ours by more than that within one election timeout (a paused
//    or slowed leader process breaks it: the documented risk of kLeaseBased).
bool RaftCore::LeaseValid() const {
  if (timeout_now_sent_ && !mutation::Active(mutation::Kind::kLeaseAfterTransfer)) return false;
  auto sent_tick = [&](std::uint64_t seq) -> std::optional<std::uint64_t> {
    for (auto it = hb_sent_.rbegin(); it != hb_sent_.rend(); ++it)
      if (it->first <= seq) return it->second;
    return std::nullopt;
  };
  return QuorumActive(conf().voters, [&](NodeId id) {
    if (id == cfg_.id) return true;
    auto t = sent_tick(read_only_.Acked(id));
    return t && *t + static_cast<std::uint64_t>(cfg_.election_ticks) > ticks_ + 1;
  });
}

void RaftCore::ReleaseReads() {
  for (auto& r : read_only_.Release(conf().voters, cfg_.id)) RespondRead(std::move(r));
}

void RaftCore::RespondRead(PendingRead r) {
  if (r.from == cfg_.id) {
    read_states_.push_back(ReadState{r.index, std::move(r.context)});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResponse;
  m.to = r.from;
  m.term = term_;
  m.index = r.index;
  m.context = std::move(r.context);
  Send(std::move(m));
}

Status RaftCore::TransferLeadership(NodeId target) {
  Unquiesce();
  if (role_ != Role::kLeader) return NotLeader();
  if (target == cfg_.id) return Status::Ok();
  if (!conf().voters.count(target))
    return Status(ErrorCode::kInvalidArgument,
                  "transfer target " + std::to_string(target) + " is not a voter");
  lead_transferee_ = target;
  election_elapsed_ = 0;  // the transfer must finish within one election timeout
  Progress& pr = prs_.at(target);
  if (pr.match() == log_.LastIndex()) {
    SendTimeoutNow(target);
  } else {
    SendAppend(target, true);
  }
  return Status::Ok();
}

void RaftCore::SendTimeoutNow(NodeId to) {
  // The target campaigns with campaign_transfer, which voters inside our lease obey: from
  // now on, for the rest of this term, this leader has no lease (LeaseValid), since that
  // TimeoutNow may be obeyed at any later moment while it is in flight.
  timeout_now_sent_ = true;
  LogPosition last = log_.LastPosition();
  Message t;
  t.type = MessageType::kTimeoutNow;
  t.to = to;
  t.term = term_;
  t.index = last.index;  // the target obeys only if its log ends here (StepFollower)
  t.log_term = last.term;
  Send(std::move(t));
}

void RaftCore::ReportUnreachable(NodeId id) {
  if (role_ != Role::kLeader) return;
  auto it = prs_.find(id);
  if (it != prs_.end() && it->second.state() == ProgressState::kReplicate) {
    it->second.BecomeProbe();
  }
}

void RaftCore::ReportSnapshot(NodeId id, bool success) {
  if (role_ != Role::kLeader) return;
  auto it = prs_.find(id);
  if (it == prs_.end() || it->second.state() != ProgressState::kSnapshot) return;
  Progress& pr = it->second;
  if (!success) pr.BecomeSnapshot(0);  // forget the pending index: probe from match
  pr.BecomeProbe();
  // Wait for the follower's answer (or a heartbeat response) before probing again.
  pr.set_probe_sent(true);
}

}  // namespace raft
