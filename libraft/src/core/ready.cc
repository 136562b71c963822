// Ready/Advance: how work leaves the core (see the durability contract in raw_node.h).
#include <algorithm>

#include "base/assert.h"
#include "core/mutation.h"
#include "core/raft_core.h"

namespace raft {

bool RaftCore::RemovalToReport() const {
  // Only once the removal is committed: a removal that is merely appended may still be
  // truncated away.
  return was_member_ && !removed_reported_ && !conf().Contains(cfg_.id) &&
         !conf_.At(log_.committed()).Contains(cfg_.id);
}

bool RaftCore::HasReady() const {
  if (ready_outstanding_) return false;
  if (SoftState{lead_, role_} != prev_soft_) return true;
  if (HardState{term_, vote_, log_.committed()} != prev_hard_) return true;
  if (log_.unstable().snapshot() || !log_.unstable().entries().empty()) return true;
  if (!msgs_.empty() || !msgs_after_persist_.empty() || !read_states_.empty()) return true;
  if (role_ == Role::kLeader && (bcast_pending_ || commit_bcast_pending_ || heartbeat_pending_))
    return true;
  if (!committed_paused_ && log_.HasNextCommittedEntries()) return true;
  if (RemovalToReport()) return true;
  return false;
}

Ready RaftCore::GetReady() {
  RAFT_ASSERT(!ready_outstanding_ && "GetReady called twice without Advance");
  FlushLeader();
  Ready rd;
  SoftState soft{lead_, role_};
  if (soft != prev_soft_) rd.soft_state = soft;
  HardState hard{term_, vote_, log_.committed()};
  if (hard != prev_hard_) rd.hard_state = hard;
  if (log_.unstable().snapshot()) rd.snapshot = *log_.unstable().snapshot();
  rd.entries = log_.unstable().entries();
  rd.must_sync = rd.snapshot || !rd.entries.empty() || hard.term != prev_hard_.term ||
                 hard.vote != prev_hard_.vote;
  if (!committed_paused_) {
    rd.committed_entries = log_.NextCommittedEntries(cfg_.max_committed_bytes_per_ready);
    AcceptApplying(rd.committed_entries);
  }
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.messages_after_persist = std::move(msgs_after_persist_);
  msgs_after_persist_.clear();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  if (RemovalToReport()) {
    rd.removed = true;
    removed_reported_ = true;
  }
  ready_outstanding_ = true;
  return rd;
}

std::vector<Message> RaftCore::TakeMessages() {
  FlushLeader();
  std::vector<Message> out = std::move(msgs_);
  msgs_.clear();
  return out;
}

void RaftCore::AcceptApplying(const std::vector<Entry>& ents) {
  if (ents.empty()) return;
  log_.AcceptApplying(ents.back().index);
  if (role_ == Role::kLeader) {
    std::uint64_t n = 0;
    for (const auto& e : ents) n += e.data.size();
    uncommitted_bytes_ = uncommitted_bytes_ > n ? uncommitted_bytes_ - n : 0;
  }
}

std::vector<Entry> RaftCore::TakeCommitted() {
  // Only entries durable here (below the unstable tail, which holds the outstanding
  // Ready's entries until Advance): the state machine must never get ahead of the log on
  // this node's disk. While a snapshot waits to be installed nothing is handed out: the
  // entries after it are applied on top of it, after the Ready that installs it.
  if (log_.unstable().snapshot() || committed_paused_) return {};
  auto [lo, hi] = log_.NextCommittedRange();
  if (!mutation::Active(mutation::Kind::kTakeUndurable)) hi = std::min(hi, log_.LastStableIndex());
  if (lo > hi) return {};
  const std::uint64_t budget =
      cfg_.max_committed_bytes_per_ready == 0 ? UINT64_MAX : cfg_.max_committed_bytes_per_ready;
  auto ents = log_.Slice(lo, hi + 1, budget);
  RAFT_ASSERT(ents.has_value());
  AcceptApplying(*ents);
  return std::move(*ents);
}

void RaftCore::Advance(const Ready& rd) {
  RAFT_ASSERT(ready_outstanding_ && "Advance without GetReady");
  ready_outstanding_ = false;
  if (rd.soft_state) prev_soft_ = *rd.soft_state;
  if (rd.hard_state) {
    prev_hard_ = *rd.hard_state;
    durable_term_ = std::max(durable_term_, rd.hard_state->term);
  }
  if (rd.snapshot) {
    log_.StableSnapTo(rd.snapshot->index);
    log_.AppliedTo(rd.snapshot->index);  // the state machine was restored from it
  }
  if (!rd.entries.empty()) {
    const Entry& last = rd.entries.back();
    log_.StableTo(last.index, last.term);
  }
  // Everything handed out so far (this Ready's committed entries and any taken by
  // TakeCommitted meanwhile) now counts as applied.
  if (log_.applying() > log_.applied()) log_.AppliedTo(log_.applying());
  conf_.Prune(log_.committed());
  if (role_ == Role::kLeader) {
    // Our own entries now count: they are durable.
    auto self = prs_.find(cfg_.id);
    if (self != prs_.end() && self->second.MaybeUpdate(log_.LastStableIndex())) {
      MaybeCommitAsLeader();
    }
  }
}

}  // namespace raft
