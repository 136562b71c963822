// Progress: the leader's view of one peer's log (etcd-io/raft tracker/progress.go).
//
//   kProbe      position unknown: one Append at a time, paused until an answer or a
//               heartbeat response (msg_app_probe_sent_).
//   kReplicate  position known: Appends are pipelined up to the in-flight window, next_
//               advanced optimistically.
//   kSnapshot   a snapshot at pending_snapshot_ is being streamed; no Appends until the
//               runtime reports the outcome or the peer acknowledges past it.
// Invariant: match_ < next_.
#pragma once

#include <cstdint>

#include "core/inflights.h"
#include "raft/raw_node.h"
#include "raft/types.h"

namespace raft {

class Progress {
 public:
  Progress(Index next, std::uint32_t max_inflight_msgs, std::uint64_t max_inflight_bytes)
      : next_(next), inflights_(max_inflight_msgs, max_inflight_bytes) {}

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(Index snapshot_index);

  // The peer acknowledged everything up to n. Returns whether match_ advanced.
  bool MaybeUpdate(Index n);
  // The peer rejected an append at `rejected`; `hint` is where it suggests we retry.
  // Returns false for a stale rejection.
  bool MaybeDecreaseTo(Index rejected, Index hint);
  // An Append carrying entries up to `last` (bytes of payload) was sent.
  void SentEntries(Index last, std::uint64_t bytes, bool had_entries);
  bool IsPaused() const;

  Index match() const { return match_; }
  Index next() const { return next_; }
  ProgressState state() const { return state_; }
  Index pending_snapshot() const { return pending_snapshot_; }
  bool recent_active() const { return recent_active_; }
  void set_recent_active(bool v) { recent_active_ = v; }
  void set_probe_sent(bool v) { msg_app_probe_sent_ = v; }
  Index sent_commit() const { return sent_commit_; }
  void set_sent_commit(Index c) { sent_commit_ = c; }
  void set_match(Index m) { match_ = m; }
  Inflights& inflights() { return inflights_; }

 private:
  Index match_ = 0;
  Index next_;
  ProgressState state_ = ProgressState::kProbe;
  Index pending_snapshot_ = 0;
  bool recent_active_ = false;
  bool msg_app_probe_sent_ = false;
  Index sent_commit_ = 0;
  Inflights inflights_;
};

}  // namespace raft
