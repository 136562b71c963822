#include "core/progress.h"

#include <algorithm>

#include "base/assert.h"

namespace raft {

void Progress::BecomeProbe() {
  if (state_ == ProgressState::kSnapshot) {
    // Resume after the snapshot if it was delivered, else where we knew the peer was.
    next_ = std::max(match_ + 1, pending_snapshot_ + 1);
  } else {
    next_ = match_ + 1;
  }
  state_ = ProgressState::kProbe;
  pending_snapshot_ = 0;
  msg_app_probe_sent_ = false;
  inflights_.Reset();
}

void Progress::BecomeReplicate() {
  state_ = ProgressState::kReplicate;
  next_ = match_ + 1;
  pending_snapshot_ = 0;
  msg_app_probe_sent_ = false;
  inflights_.Reset();
}

void Progress::BecomeSnapshot(Index snapshot_index) {
  state_ = ProgressState::kSnapshot;
  pending_snapshot_ = snapshot_index;
  msg_app_probe_sent_ = false;
  inflights_.Reset();
}

bool Progress::MaybeUpdate(Index n) {
  bool updated = false;
  if (match_ < n) {
    match_ = n;
    updated = true;
    msg_app_probe_sent_ = false;
  }
  next_ = std::max(next_, n + 1);
  return updated;
}

bool Progress::MaybeDecreaseTo(Index rejected, Index hint) {
  if (state_ == ProgressState::kReplicate) {
    // Stale if the rejected append is at or below what we know matches.
    if (rejected <= match_) return false;
    next_ = match_ + 1;  // the caller switches to probing
    return true;
  }
  // Probe / snapshot: only the rejection of the last probe (at next_-1) counts.
  if (next_ - 1 != rejected) return false;
  next_ = std::max(std::min(rejected, hint + 1), match_ + 1);
  msg_app_probe_sent_ = false;
  return true;
}

void Progress::SentEntries(Index last, std::uint64_t bytes, bool had_entries) {
  switch (state_) {
    case ProgressState::kReplicate:
      if (had_entries) {
        next_ = last + 1;
        inflights_.Add(last, bytes);
      }
      break;
    case ProgressState::kProbe:
      msg_app_probe_sent_ = true;
      break;
    case ProgressState::kSnapshot:
      RAFT_ASSERT(false && "append sent to a peer receiving a snapshot");
  }
}

bool Progress::IsPaused() const {
  switch (state_) {
    case ProgressState::kProbe:
      return msg_app_probe_sent_;
    case ProgressState::kReplicate:
      return inflights_.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

}  // namespace raft
