// Quiescence (Config::quiesce; docs/core.md, "Quiescence"): an idle group stops ticking
// and sending, so that a host of many groups pays nothing for the idle ones.
//
// The leader quiesces at a heartbeat tick when every member's match is its last index,
// all of it committed in its term, and nothing waits (no read, no transfer, nothing to
// broadcast). It sends one last heartbeat round with `quiesce` set (commit = its last
// index, which every member holds) and sleeps. A follower sleeps on that round when its
// own log ends exactly at that commit; otherwise it answers it like any heartbeat, and
// the answer wakes the leader, which tries again at a later tick.
//
// Sleeping touches one safety argument, the lease: a sleeping core's ticks stop while
// time goes on, so LeaseValid's tick arithmetic would overstate it. The rounds it counts
// are dropped at sleep, and after waking the leader needs a fresh round acknowledged by a
// quorum. Otherwise a quiesced core only does less. The liveness cost goes to the host: a
// lost leader is noticed by nobody, so the host's own failure detector calls Unquiesce.
//
// Not done: quiescing with a member behind (a dead follower keeps its group awake, as in
// CockroachDB without node liveness); waking for a late AppendResponse (harmless: the
// leader quiesces again at its next heartbeat tick).
#include "core/raft_core.h"

namespace raft {

bool RaftCore::CanQuiesce() const {
  if (!cfg_.quiesce || role_ != Role::kLeader) return false;
  if (lead_transferee_ != kNoNode || !read_only_.Empty() || !reads_before_commit_.empty())
    return false;
  if (bcast_pending_ || commit_bcast_pending_ || heartbeat_pending_) return false;
  const Index last = log_.LastIndex();
  if (log_.committed() != last || !CommittedInTerm()) return false;
  for (const auto& [id, pr] : prs_) {
    if (pr.match() != last) return false;  // self included: our own entries are durable
  }
  return true;
}

void RaftCore::Quiesce() {
  SendHeartbeats(/*quiesce=*/true);
  quiesce_seq_ = hb_seq_;
  quiesced_ = true;
  hb_sent_.clear();  // no lease while asleep (see the top of this file)
}

bool RaftCore::MaybeQuiesceFollower(const Message& m) {
  if (!m.quiesce || !cfg_.quiesce) return false;
  if (log_.LastIndex() != m.commit || log_.committed() != m.commit) return false;
  quiesced_ = true;
  return true;
}

bool RaftCore::KeepsQuiesced(const Message& m) const {
  if (m.term < term_) return true;
  if (m.term > term_) return false;
  if (m.type == MessageType::kHeartbeat) return m.quiesce && m.from == lead_;
  if (m.type == MessageType::kHeartbeatResponse)
    return role_ == Role::kLeader && m.read_seq < quiesce_seq_;
  return false;
}

void RaftCore::Unquiesce() {
  if (!quiesced_) return;
  quiesced_ = false;
  if (role_ == Role::kLeader) {
    // Check-quorum counts afresh: a quorum must answer within an election timeout of
    // waking, not of falling asleep. A round goes out at once, to wake the followers.
    election_elapsed_ = 0;
    for (auto& [id, pr] : prs_) pr.set_recent_active(id == cfg_.id);
    heartbeat_pending_ = true;
  }
}

}  // namespace raft
