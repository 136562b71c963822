#include "core/raft_core.h"

#include <string>

#include "base/assert.h"
#include "core/mutation.h"
#include "core/quorum.h"

namespace raft {

RaftCore::RaftCore(const Config& config, const Storage* storage)
    : cfg_(config),
      prng_(config.seed * 0x9E3779B97F4A7C15ull + config.id),
      log_(storage, config.applied) {}

Result<std::unique_ptr<RaftCore>> RaftCore::Create(const Config& config, const Storage* storage) {
  Status s = config.Validate();
  if (!s.ok()) return s;
  if (storage == nullptr) return Status(ErrorCode::kInvalidArgument, "storage is null");
  HardState hs = storage->InitialHardState();
  if (hs.term > kTermMax) {
    return Status(ErrorCode::kCorruption, "stored term " + std::to_string(hs.term) +
                                              " is above kTermMax " + std::to_string(kTermMax));
  }
  if (hs.commit > storage->LastIndex()) {
    return Status(ErrorCode::kCorruption, "stored commit index " + std::to_string(hs.commit) +
                                              " is beyond the last index " +
                                              std::to_string(storage->LastIndex()));
  }
  if (config.applied > storage->LastIndex()) {
    return Status(ErrorCode::kCorruption, "applied index " + std::to_string(config.applied) +
                                              " is beyond the last index " +
                                              std::to_string(storage->LastIndex()));
  }
  auto snap = storage->Snapshot();
  if (!snap.ok()) return snap.status();
  std::unique_ptr<RaftCore> r(new RaftCore(config, storage));
  r->conf_.Reset(snap->index, snap->conf);
  // Rebuild the membership history from the log (configurations take effect when appended).
  Index lo = storage->FirstIndex(), last = storage->LastIndex();
  while (lo <= last) {
    auto ents = storage->Entries(lo, last + 1, 64ull << 20);
    if (!ents.ok()) return ents.status();
    for (const Entry& e : *ents) r->conf_.OnAppend(e);
    lo += ents->size();
  }
  r->term_ = hs.term;
  r->vote_ = hs.vote;
  r->durable_term_ = hs.term;
  r->prev_hard_ = hs;
  r->BecomeFollower(hs.term, kNoNode);
  // Before a crash this node may have acknowledged a heartbeat that a leader still counts
  // in its lease: keep that promise for a full election timeout after starting.
  r->lease_promised_until_tick_ = static_cast<std::uint64_t>(config.election_ticks);
  r->prev_soft_ = SoftState{kNoNode, Role::kFollower};
  r->was_member_ = r->conf().Contains(config.id);
  return r;
}

Status RaftCore::NotLeader() const {
  if (lead_ == kNoNode) return Status(ErrorCode::kNotLeader, "no leader known");
  return Status(ErrorCode::kNotLeader, "leader is " + std::to_string(lead_));
}

void RaftCore::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      cfg_.election_ticks +
      static_cast<int>(prng_.Uniform(static_cast<std::uint64_t>(cfg_.election_ticks)));
}

void RaftCore::Reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
    acked_in_term_ = 0;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  timeout_now_sent_ = false;
  votes_.clear();
  read_only_.Reset();
  hb_sent_.clear();
  reads_before_commit_.clear();
  uncommitted_bytes_ = 0;
  bcast_pending_ = commit_bcast_pending_ = heartbeat_pending_ = false;
  quiesced_ = false;
  prs_.clear();
  SyncProgress();
}

void RaftCore::OnConfigChanged() {
  SyncProgress();
  if (role_ == Role::kLeader) {
    if (lead_transferee_ != kNoNode && !conf().voters.count(lead_transferee_))
      AbortLeaderTransfer();
    MaybeCommitAsLeader();  // a smaller quorum may commit more
  }
}

void RaftCore::SyncProgress() {
  const ConfState& c = conf();
  if (c.Contains(cfg_.id)) was_member_ = true;
  for (auto it = prs_.begin(); it != prs_.end();) {
    it = c.Contains(it->first) ? std::next(it) : prs_.erase(it);
  }
  auto add = [&](NodeId id) {
    if (prs_.count(id)) return;
    auto [it, _] = prs_.emplace(
        id, Progress(log_.LastIndex() + 1, cfg_.max_inflight_msgs, cfg_.max_inflight_bytes));
    if (id == cfg_.id) {
      it->second.set_match(log_.LastStableIndex());
      it->second.BecomeReplicate();
      it->second.set_recent_active(true);
    }
    if (role_ == Role::kLeader) bcast_pending_ = true;
  };
  for (NodeId id : c.voters) add(id);
  for (NodeId id : c.learners) add(id);
}

void RaftCore::BecomeFollower(Term term, NodeId lead) {
  Reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
}

void RaftCore::BecomePreCandidate() {
  RAFT_ASSERT(role_ != Role::kLeader);
  // Neither term nor vote changes: a pre-vote round disturbs nobody.
  votes_.clear();
  lead_ = kNoNode;
  role_ = Role::kPreCandidate;
}

void RaftCore::BecomeCandidate() {
  RAFT_ASSERT(role_ != Role::kLeader);
  RAFT_ASSERT_LT(term_, kTermMax);  // Hup
  Reset(term_ + 1);
  vote_ = cfg_.id;
  role_ = Role::kCandidate;
}

void RaftCore::BecomeLeader() {
  RAFT_ASSERT(role_ == Role::kCandidate);
  Reset(term_);
  lead_ = cfg_.id;
  role_ = Role::kLeader;
  // Conservatively treat the whole log as possibly holding an uncommitted change.
  pending_conf_index_ = log_.LastIndex();
  Entry noop;
  noop.type = EntryType::kNormal;
  auto r = AppendAsLeader({std::move(noop)});
  RAFT_ASSERT(r.ok());
}

bool RaftCore::Promotable() const {
  return conf().voters.count(cfg_.id) > 0 && !log_.unstable().snapshot();
}

void RaftCore::Hup(bool transfer) {
  if (role_ == Role::kLeader || !Promotable()) return;
  // At the ceiling no campaign term is left (a message of a higher term is refused): the
  // cluster stays at kTermMax forever. Reaching it takes 2^62 elections, or, from a peer
  // that lies, 2^30 messages (kTermJumpMax); docs/core.md, "Message validation".
  if (term_ >= kTermMax) return;
  // Our own vote would break a promise a leader's lease may count on; only that leader's
  // TimeoutNow (it gave up its lease when sending it) releases it early.
  if (!transfer && LeasePromised()) return;
  if (cfg_.pre_vote && !transfer) {
    BecomePreCandidate();
    StartElection(/*pre_vote=*/true, false);
  } else {
    BecomeCandidate();
    StartElection(/*pre_vote=*/false, transfer);
  }
}

void RaftCore::StartElection(bool pre_vote, bool transfer) {
  campaign_transfer_ = transfer;
  Term t = pre_vote ? term_ + 1 : term_;  // term_ < kTermMax (Hup)
  votes_.clear();
  votes_[cfg_.id] = true;
  if (TallyVotes(conf().voters, votes_) == VoteResult::kWon) {
    if (pre_vote) {
      BecomeCandidate();
      StartElection(false, transfer);
    } else {
      BecomeLeader();
    }
    return;
  }
  LogPosition last = log_.LastPosition();
  for (NodeId id : conf().voters) {
    if (id == cfg_.id) continue;
    Message m;
    m.type = pre_vote ? MessageType::kPreVote : MessageType::kVote;
    m.to = id;
    m.term = t;
    m.index = last.index;
    m.log_term = last.term;
    m.campaign_transfer = transfer;
    Send(std::move(m));
  }
}

void RaftCore::Send(Message m) {
  m.from = cfg_.id;
  // The durability contract: responses assert persisted state, and anything carrying a
  // term not yet durable (a candidate's own vote, a new leader's term) waits for it.
  // A heartbeat response asserts only its term (it carries no log position), so once that
  // term is durable it leaves at once: a follower whose fsync stalls (a snapshot being
  // written on the same disk) must not look dead to the leader's check-quorum.
  bool after = (IsResponse(m.type) && m.type != MessageType::kHeartbeatResponse) ||
               m.type == MessageType::kVote ||
               (m.type != MessageType::kPreVote && m.term > durable_term_);
  if (mutation::Active(mutation::Kind::kVoteWithoutPersist) &&
      (m.type == MessageType::kVoteResponse || m.type == MessageType::kVote)) {
    after = false;
  }
  (after ? msgs_after_persist_ : msgs_).push_back(std::move(m));
}

Status RaftCore::Step(const Message& m) {
  if (Status s = Validate(m); !s.ok()) return s;  // before anything changes
  // term_ <= kTermMax (Create, Hup), so the sum does not wrap.
  if (m.term > term_ + kTermJumpMax) return StepTowardsTerm(m);
  if (quiesced_ && !KeepsQuiesced(m)) Unquiesce();

  if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      // Leader stickiness (thesis 4.2.3): a node that heard from a live leader within the
      // minimum election timeout ignores vote requests, unless they come from a transfer.
      // With kLeaseBased the promise also covers a restart and survives a change of term
      // (LeasePromised).
      bool in_lease =
          cfg_.check_quorum && lead_ != kNoNode && election_elapsed_ < cfg_.election_ticks;
      if ((in_lease || LeasePromised()) && !m.campaign_transfer) return Status::Ok();
    }
    if (m.type == MessageType::kPreVote) {
      // Answering a pre-vote never changes our term.
    } else if (m.type == MessageType::kPreVoteResponse && !m.reject) {
      // A granted pre-vote carries the future term; handled by StepCandidate.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNoNode);
    }
  } else if (m.term < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) &&
        (m.type == MessageType::kHeartbeat || m.type == MessageType::kAppend)) {
      // A stale leader (e.g. one that was partitioned) learns our term and steps down.
      // Without this, pre-vote could leave it stranded forever.
      Message resp;
      resp.type = MessageType::kAppendResponse;
      resp.to = m.from;
      resp.term = term_;
      Send(std::move(resp));
    } else if (m.type == MessageType::kPreVote) {
      Message resp;
      resp.type = MessageType::kPreVoteResponse;
      resp.to = m.from;
      resp.term = term_;
      resp.reject = true;
      Send(std::move(resp));
    }
    return Status::Ok();  // every other message of an older term (e.g. a late reply) is ignored
  }

  if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
    HandleVoteRequest(m);
    return Status::Ok();
  }
  switch (role_) {
    case Role::kFollower:
      StepFollower(m);
      break;
    case Role::kPreCandidate:
    case Role::kCandidate:
      StepCandidate(m);
      break;
    case Role::kLeader:
      StepLeader(m);
      break;
  }
  return Status::Ok();
}

// A term more than kTermJumpMax above ours is not believed at once: one forged frame
// would otherwise move the cluster to kTermMax, where nobody can campaign. A message that
// would make us adopt its term moves us kTermJumpMax up instead (as a follower of nobody:
// safe, as any step up of the term is) and is refused; the next one from an honest peer
// that far ahead (none is: one term per election) is then close enough. A forged term
// now costs 2^30 messages to reach the ceiling. Vote requests and pre-vote answers move
// nothing (their terms are proposals).
Status RaftCore::StepTowardsTerm(const Message& m) {
  Term to = term_ + kTermJumpMax;  // < m.term <= kTermMax (Validate)
  if (m.type != MessageType::kVote && m.type != MessageType::kPreVote &&
      m.type != MessageType::kPreVoteResponse) {
    BecomeFollower(to, kNoNode);
  }
  return Status(ErrorCode::kInvalidArgument,
                std::string(MessageTypeName(m.type)) + " from " + std::to_string(m.from) +
                    " in term " + std::to_string(m.term) + " refused: more than kTermJumpMax " +
                    std::to_string(kTermJumpMax) + " above our term; moved to term " +
                    std::to_string(term_));
}

void RaftCore::HandleVoteRequest(const Message& m) {
  bool pre = m.type == MessageType::kPreVote;
  bool promised = LeasePromised() && !m.campaign_transfer;
  bool can_vote = vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode && !promised) ||
                  (pre && m.term > term_);
  bool up_to_date =
      mutation::Active(mutation::Kind::kSkipUpToDateCheck) || log_.IsUpToDate(m.index, m.log_term);
  Message resp;
  resp.type = pre ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  resp.to = m.from;
  if (can_vote && up_to_date) {
    resp.term = m.term;  // for a pre-vote: the term the candidate will campaign in
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    resp.term = term_;
    resp.reject = true;
  }
  Send(std::move(resp));
}

void RaftCore::StepCandidate(const Message& m) {
  MessageType my_resp =
      role_ == Role::kPreCandidate ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  switch (m.type) {
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      BecomeFollower(m.term, m.from);  // a leader exists in our term
      StepFollower(m);
      return;
    case MessageType::kReadIndexResponse:
      StepFollower(m);
      return;
    default:
      break;
  }
  if (m.type != my_resp) return;
  votes_.emplace(m.from, !m.reject);
  switch (TallyVotes(conf().voters, votes_)) {
    case VoteResult::kWon:
      if (role_ == Role::kPreCandidate) {
        BecomeCandidate();
        StartElection(false, campaign_transfer_);
      } else {
        BecomeLeader();
      }
      break;
    case VoteResult::kLost:
      BecomeFollower(term_, kNoNode);
      break;
    case VoteResult::kPending:
      break;
  }
}

void RaftCore::Tick() {
  if (quiesced_) return;  // asleep: no time passes (quiesce.cc)
  ++ticks_;
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void RaftCore::TickElection() {
  ++election_elapsed_;
  if (Promotable() && PastElectionTimeout()) {
    election_elapsed_ = 0;
    Hup(false);
  }
}

void RaftCore::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_ticks) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      bool ok = QuorumActive(conf().voters, [&](NodeId id) {
        auto it = prs_.find(id);
        return id == cfg_.id || (it != prs_.end() && it->second.recent_active());
      });
      for (auto& [id, pr] : prs_) pr.set_recent_active(id == cfg_.id);
      if (!ok) {
        BecomeFollower(term_, kNoNode);  // CheckQuorum: we may be partitioned away
        return;
      }
    }
    if (lead_transferee_ != kNoNode) {
      AbortLeaderTransfer();  // a transfer gets one election timeout
      // An empty entry marks the log: a TimeoutNow of the aborted transfer that arrives
      // after it (late, duplicated) no longer matches the target's log and is ignored
      // (StepFollower). Refused only if the uncommitted-bytes limit is already exceeded.
      Entry mark;
      (void)AppendAsLeader({std::move(mark)});
    }
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    if (CanQuiesce()) {
      Quiesce();
    } else {
      SendHeartbeats();
    }
  }
}

Status RaftCore::ReadIndex(std::string context) {
  Unquiesce();
  if (role_ == Role::kLeader) {
    LeaderReadIndex(std::move(context), cfg_.id);
    return Status::Ok();
  }
  if (lead_ == kNoNode) return NotLeader();
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = lead_;
  m.term = term_;
  m.context = std::move(context);
  Send(std::move(m));
  return Status::Ok();
}

NodeStatus RaftCore::GetStatus() const {
  NodeStatus s;
  s.id = cfg_.id;
  s.role = role_;
  s.leader = lead_;
  s.hard_state = HardState{term_, vote_, log_.committed()};
  s.applied = log_.applied();
  s.last_index = log_.LastIndex();
  s.conf = conf();
  s.lead_transferee = lead_transferee_;
  s.quiesced = quiesced_;
  if (role_ == Role::kLeader) {
    for (const auto& [id, pr] : prs_) {
      PeerStatus p;
      p.id = id;
      p.voter = conf().voters.count(id) > 0;
      p.match = pr.match();
      p.next = pr.next();
      p.state = pr.state();
      p.recent_active = pr.recent_active();
      s.peers.push_back(p);
    }
  }
  return s;
}

}  // namespace raft
