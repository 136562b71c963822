// Message validation: everything Step checks before it acts (docs/core.md, "Message
// validation"). A message arrives from the network, so nothing in it may reach an assert
// or undefined behaviour, and a peer must not make this node believe what no honest peer
// could say. Two kinds of checks:
//   - fields: bounds and shapes every honest sender respects whatever our state is
//     (terms and indexes below kTermMax/kIndexMax, contiguous entries, ...);
//   - state: only for a message Step would act on (not of an older term), claims an honest
//     peer cannot make given what this node knows (an ack beyond our log, a second leader
//     in our term, a heartbeat committing more than we acknowledged).
// A check must never refuse a message an honest peer can send, even late, duplicated or
// reordered: a refusal drops it (and the runtime counts it), which costs liveness.
// What is deliberately not checked (a lie an honest-looking peer can tell) is listed in
// docs/core.md; authenticating peers is the transport's job.
#include <string>

#include "core/raft_core.h"

namespace raft {
namespace {

std::string Num(std::uint64_t v) { return std::to_string(v); }

Status Refuse(const Message& m, const std::string& what) {
  return Status(ErrorCode::kInvalidArgument, std::string(MessageTypeName(m.type)) + " from " +
                                                 Num(m.from) + " in term " + Num(m.term) +
                                                 " refused: " + what);
}

// Messages only a leader sends, in its own term.
bool FromLeader(MessageType t) {
  return t == MessageType::kAppend || t == MessageType::kHeartbeat || t == MessageType::kSnapshot ||
         t == MessageType::kTimeoutNow || t == MessageType::kReadIndexResponse;
}

Status CheckEntries(const Message& m) {
  if (m.entries.size() > kIndexMax - m.index)
    return Refuse(m, "index " + Num(m.index) + " + " + Num(m.entries.size()) +
                         " entries exceeds kIndexMax " + Num(kIndexMax));
  Term prev_term = m.log_term;
  for (std::size_t i = 0; i < m.entries.size(); ++i) {
    const Entry& e = m.entries[i];
    std::string at = "entries[" + Num(i) + "]";
    if (e.index != m.index + 1 + i)
      return Refuse(m, at + ".index is " + Num(e.index) + ", not " + Num(m.index + 1 + i) +
                           " (entries are contiguous from index + 1)");
    if (e.type != EntryType::kNormal && e.type != EntryType::kConfChange)
      return Refuse(m, at + ".type " + Num(static_cast<std::uint64_t>(e.type)) + " is unknown");
    if (e.term == 0) return Refuse(m, at + ".term is 0 (every entry has a leader's term >= 1)");
    if (e.term < prev_term)
      return Refuse(m, at + ".term " + Num(e.term) + " is below the previous term " +
                           Num(prev_term) + " (terms never decrease along a log)");
    if (e.term > m.term)
      return Refuse(m, at + ".term " + Num(e.term) + " is above the message term " + Num(m.term) +
                           " (a leader holds no entry of a later term)");
    prev_term = e.term;
  }
  return Status::Ok();
}

Status CheckSnapshot(const Message& m) {
  const SnapshotMeta& s = m.snapshot;
  if (s.index == 0) return Refuse(m, "snapshot.index is 0");
  if (s.index > kIndexMax)
    return Refuse(m, "snapshot.index " + Num(s.index) + " is above kIndexMax " + Num(kIndexMax));
  if (s.term == 0) return Refuse(m, "snapshot.term is 0");
  if (s.term > m.term)
    return Refuse(m, "snapshot.term " + Num(s.term) + " is above the message term " + Num(m.term));
  if (s.conf.voters.empty()) return Refuse(m, "snapshot.conf has no voter");
  if (s.conf.voters.count(kNoNode) || s.conf.learners.count(kNoNode))
    return Refuse(m, "snapshot.conf holds node id 0");
  for (NodeId id : s.conf.learners) {
    if (s.conf.voters.count(id))
      return Refuse(m, "snapshot.conf has " + Num(id) + " as both voter and learner");
  }
  return Status::Ok();
}

// The checks that hold for every honest message whatever the receiver's state.
Status CheckFields(const Message& m) {
  const MessageType t = m.type;
  if (m.term > kTermMax)
    return Refuse(m, "term " + Num(m.term) + " is above kTermMax " + Num(kTermMax));
  if (m.log_term > m.term)
    return Refuse(m, "log_term " + Num(m.log_term) + " is above term " + Num(m.term));
  for (auto [name, v] : {std::pair{"index", m.index}, std::pair{"commit", m.commit},
                         std::pair{"reject_hint", m.reject_hint}}) {
    if (v > kIndexMax)
      return Refuse(m, std::string(name) + " " + Num(v) + " is above kIndexMax " + Num(kIndexMax));
  }
  if (m.term == 0 && (FromLeader(t) || t == MessageType::kVote || t == MessageType::kPreVote))
    return Refuse(m, "term 0 (leaders and candidates have a term >= 1)");
  if (!m.entries.empty() && t != MessageType::kAppend)
    return Refuse(m, "carries " + Num(m.entries.size()) + " entries (only kAppend does)");
  if (m.snapshot != SnapshotMeta{} && t != MessageType::kSnapshot)
    return Refuse(m, "carries a snapshot (only kSnapshot does)");
  if (m.quiesce && t != MessageType::kHeartbeat)
    return Refuse(m, "sets quiesce (only kHeartbeat does)");
  switch (t) {
    case MessageType::kAppend:
      return CheckEntries(m);
    case MessageType::kSnapshot:
      return CheckSnapshot(m);
    case MessageType::kAppendResponse:
      // reject: index = the rejected prev index, reject_hint <= it (FindConflictByTerm).
      if (m.reject_hint > m.index)
        return Refuse(m, "reject_hint " + Num(m.reject_hint) + " is above index " + Num(m.index));
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

}  // namespace

Status RaftCore::Validate(const Message& m) const {
  if (m.to != cfg_.id) return Refuse(m, "addressed to node " + Num(m.to) + ", not to us");
  if (m.from == kNoNode || m.from == cfg_.id)
    return Refuse(m, "sender " + Num(m.from) + " is not a peer");
  auto type = static_cast<int>(m.type);
  if (type < 1 || type > kMessageTypeMax)
    return Status(ErrorCode::kInvalidArgument,
                  "message of unknown type " + std::to_string(type) + " from " + Num(m.from));
  if (Status s = CheckFields(m); !s.ok()) return s;
  if (m.term < term_) return Status::Ok();  // ignored or answered with our term (Step)

  // From here the message is of our term or a newer one, and Step acts on it.
  const bool new_term = m.term > term_;
  if (FromLeader(m.type) && !new_term && lead_ != kNoNode && lead_ != m.from) {
    // Election Safety: one leader per term, and lead_ is only ever set to it.
    return Refuse(m, "node " + Num(lead_) + " leads this term");
  }
  switch (m.type) {
    case MessageType::kAppend:
      // An entry at or below our commit index that conflicts with ours: Leader
      // Completeness says every leader holds our committed entries. (HandleAppend skips
      // such an append anyway; refusing says it cannot be honest.)
      for (const Entry& e : m.entries) {
        if (e.index > log_.committed()) break;
        auto ours = log_.TermAt(e.index);
        if (ours && *ours != e.term)
          return Refuse(m, "entry " + Num(e.index) + " of term " + Num(e.term) +
                               " conflicts with our committed entry of term " + Num(*ours));
      }
      return Status::Ok();
    case MessageType::kSnapshot: {
      // Leader Completeness again: the sender's log holds our committed entries, and its
      // terms never decrease. So a snapshot at or below our commit index has our term
      // there, and one beyond it has a term at least that of our last committed entry.
      // (Found by fuzz_byzantine: a snapshot at 10/1 over a committed 7/2 was installed,
      // and the follower then acknowledged index 10 to an honest leader of a log of 8.)
      const SnapshotMeta& s = m.snapshot;
      const Index commit = log_.committed();
      if (s.index <= commit) {
        auto ours = log_.TermAt(s.index);
        if (ours && *ours != s.term)
          return Refuse(m, "snapshot " + Num(s.index) + "/" + Num(s.term) +
                               " conflicts with our committed entry of term " + Num(*ours));
      } else if (auto at_commit = log_.TermAt(commit); at_commit && *at_commit > s.term) {
        return Refuse(m, "snapshot " + Num(s.index) + "/" + Num(s.term) +
                             " has a term below our committed entry " + Num(commit) + "/" +
                             Num(*at_commit));
      }
      return Status::Ok();
    }
    case MessageType::kHeartbeat: {
      // An honest leader sends commit = min(its commit, its match for us), and its match
      // is what we acknowledged in its term. So a heartbeat of a term new to us commits 0,
      // and one of our term at most what we acknowledged (when we know it: not since a
      // restart), which we hold (the entries we acknowledged in a term are never
      // truncated in that term). etcd-io/raft panics in commitTo in the last case.
      Index bound = new_term ? 0 : acked_in_term_.value_or(log_.LastIndex());
      if (m.commit > bound)
        return Refuse(m, "commit " + Num(m.commit) + " is beyond " + Num(bound) +
                             ", what we acknowledged to this term's leader");
      if (m.commit > log_.LastIndex())
        return Refuse(
            m, "commit " + Num(m.commit) + " is beyond our last index " + Num(log_.LastIndex()));
      return Status::Ok();
    }
    case MessageType::kAppendResponse:
      // We sent nothing beyond our last index, and a leader's log only grows in its term;
      // a follower's early answer (its commit) is in our log too (Leader Completeness).
      if (role_ == Role::kLeader && !new_term && m.index > log_.LastIndex())
        return Refuse(m, "index " + Num(m.index) + " is beyond our last index " +
                             Num(log_.LastIndex()) + " (an ack of entries we never had)");
      return Status::Ok();
    case MessageType::kHeartbeatResponse:
      // Echoes a read_seq of ours; hb_seq_ is never reset, and we lead this term since
      // before we sent every heartbeat of it.
      if (role_ == Role::kLeader && !new_term && m.read_seq > hb_seq_)
        return Refuse(m, "read_seq " + Num(m.read_seq) + " is beyond the last we sent (" +
                             Num(hb_seq_) + ")");
      return Status::Ok();
    case MessageType::kVoteResponse:
      // A grant carries the term of our request, which left only once that term was
      // durable (Send), and our term only grows.
      if (!m.reject && new_term) return Refuse(m, "grants a vote in a term we never asked for");
      return Status::Ok();
    // Not checked: a granted kPreVoteResponse's term against ours + 1. A pre-vote request
    // leaves before our term is durable, so after a crash that lost the term, an honest
    // grant may be several terms ahead (raft_sim --seed 115 --lease).
    case MessageType::kReadIndexResponse:
      // Answers our request, which carried our term and left only once it was durable.
      if (new_term) return Refuse(m, "answers a read index request of a term we never had");
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

}  // namespace raft
