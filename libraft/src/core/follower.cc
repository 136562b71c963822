// Follower side: AppendEntries, heartbeats, snapshots, TimeoutNow, read index answers.
#include <algorithm>

#include "base/assert.h"
#include "core/mutation.h"
#include "core/raft_core.h"

namespace raft {

void RaftCore::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      HeardFromLeader(m.from);
      HandleAppend(m);
      break;
    case MessageType::kHeartbeat:
      HeardFromLeader(m.from);
      HandleHeartbeat(m);
      break;
    case MessageType::kSnapshot:
      HeardFromLeader(m.from);
      HandleSnapshot(m);
      break;
    case MessageType::kTimeoutNow:
      // Leadership transfer: campaign at once, skipping pre-vote and the voters' leader
      // stickiness. Obeyed only from the leader we follow, and only if our log ends exactly
      // where the leader's log ended when it sent this: the leader appends nothing while
      // its transfer runs and appends an empty entry when it aborts it, so a late or
      // duplicated TimeoutNow cannot depose a leader that has moved on.
      if (mutation::Active(mutation::Kind::kTimeoutNowAnySender) ||
          (m.from == lead_ && log_.LastPosition() == LogPosition{m.log_term, m.index})) {
        Hup(/*transfer=*/true);
      }
      break;
    case MessageType::kReadIndexResponse:
      if (!m.reject) read_states_.push_back(ReadState{m.index, m.context});
      break;
    default:
      break;  // responses meant for a leader or candidate we no longer are
  }
}

void RaftCore::HeardFromLeader(NodeId from) {
  election_elapsed_ = 0;
  lead_ = from;
  lease_promised_until_tick_ = ticks_ + static_cast<std::uint64_t>(cfg_.election_ticks);
}

void RaftCore::SendAppendAck(NodeId to, Index index) {
  // Unknown stays unknown: what we acknowledged before a restart may be higher.
  if (acked_in_term_) acked_in_term_ = std::max(*acked_in_term_, index);
  Message resp;
  resp.type = MessageType::kAppendResponse;
  resp.to = to;
  resp.term = term_;
  resp.index = index;
  Send(std::move(resp));
}

// Validate has checked that the entries are contiguous from m.index + 1; so when
// m.index >= committed, every entry lies above our commit index, and MaybeAppend's
// conflict is never a committed entry.
void RaftCore::HandleAppend(const Message& m) {
  if (m.index < log_.committed()) {
    // Everything up to our commit index matches the leader's log already.
    SendAppendAck(m.from, log_.committed());
    return;
  }
  std::vector<Entry> conf_entries;
  for (const Entry& e : m.entries) {
    if (e.type == EntryType::kConfChange) conf_entries.push_back(e);
  }
  std::optional<Index> truncated;
  Index last_before = log_.LastIndex();
  auto last_new = log_.MaybeAppend(m.index, m.log_term, m.commit, m.entries, &truncated);
  if (truncated) DropAcksFrom(*truncated);
  if (last_new) {
    // Configurations take effect when appended; a truncated suffix takes its
    // configurations with it.
    bool changed = false;
    Index appended_from = truncated ? *truncated : last_before + 1;
    if (truncated) changed |= conf_.TruncateFrom(*truncated);
    for (const Entry& e : conf_entries) {
      if (e.index >= appended_from) changed |= conf_.OnAppend(e);
    }
    if (changed) OnConfigChanged();
    SendAppendAck(m.from, *last_new);
    return;
  }
  // Reject with a hint: the largest index <= m.index whose term is <= m.log_term.
  // The leader skips every entry of a conflicting term in one round trip (thesis 5.3).
  Index hint = log_.FindConflictByTerm(std::min(m.index, log_.LastIndex()), m.log_term);
  Message resp;
  resp.type = MessageType::kAppendResponse;
  resp.to = m.from;
  resp.term = term_;
  resp.index = m.index;
  resp.reject = true;
  resp.reject_hint = hint;
  resp.log_term = log_.TermOrZero(hint);
  Send(std::move(resp));
}

void RaftCore::HandleHeartbeat(const Message& m) {
  // Validate bounds m.commit by what we acknowledged; the min only keeps CommitTo's
  // precondition local.
  log_.CommitTo(std::min(m.commit, log_.LastIndex()));
  if (MaybeQuiesceFollower(m)) return;
  Message resp;
  resp.type = MessageType::kHeartbeatResponse;
  resp.to = m.from;
  resp.term = term_;
  resp.read_seq = m.read_seq;
  Send(std::move(resp));
}

void RaftCore::HandleSnapshot(const Message& m) {
  SendAppendAck(m.from, Restore(m.snapshot) ? log_.LastIndex() : log_.committed());
}

bool RaftCore::Restore(const SnapshotMeta& meta) {
  if (meta.index <= log_.committed()) return false;  // an old snapshot: ignore it
  if (log_.MatchTerm(meta.index, meta.term)) {
    // The snapshot lies inside our log with a matching term: keep the suffix (see
    // testdata/snapshot_inside_log.txt).
    log_.CommitTo(meta.index);
    return false;
  }
  log_.Restore(meta);
  conf_.Reset(meta.index, meta.conf);
  prs_.clear();
  SyncProgress();
  return true;
}

void RaftCore::ReportLeaderLost(NodeId id) {
  if (role_ != Role::kFollower || id == kNoNode || lead_ != id) return;
  Unquiesce();
  // With kLeaseBased the leader may be alive and counting on our promise (a reset
  // connection, not a crash): keep it, and campaign on the normal timeout.
  if (cfg_.read_only == ReadOnlyOption::kLeaseBased) return;
  // Out of the lease: from now on this node may grant pre-votes and votes.
  election_elapsed_ = std::max(election_elapsed_, cfg_.election_ticks);
  // Campaign soon, at a random tick so that followers that lost the leader together do
  // not split the vote. The next Reset (a heartbeat, an election) restores the timeout.
  randomized_election_timeout_ =
      election_elapsed_ + 1 +
      static_cast<int>(prng_.Uniform(static_cast<std::uint64_t>(cfg_.election_ticks)));
}

// Acknowledgements of entries at or after `index` still waiting for the disk
// (msgs_after_persist_) became false when those entries were replaced before they were
// persisted: a new leader's append arrived while the disk was busy. Sent after the next
// persist, they would tell the old leader we hold entries we never stored (found by the
// simulator, seed 1195).
void RaftCore::DropAcksFrom(Index index) {
  std::erase_if(msgs_after_persist_, [&](const Message& m) {
    return m.type == MessageType::kAppendResponse && !m.reject && m.index >= index;
  });
}

}  // namespace raft
