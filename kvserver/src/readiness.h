// /readyz: whether this node should receive traffic (docs/http-api.md, "/livez and
// /readyz"). A pure function of the node's status, so that it is tested without a node.
#pragma once

#include <string>

#include "raft/node.h"

namespace kv {

// How far the applied index may trail the commit index for a node to count as caught up.
// A follower applies in batches, so a busy one is a few entries behind at any instant; a
// node restoring a snapshot or replaying a long log is far more.
inline constexpr raft::Index kReadyLagEntriesMax = 100;

struct Readiness {
  bool ready = false;
  // When not ready: a stable code for scripts and a sentence for people.
  //   shutting_down, storage_failed, not_member, learner, no_leader, applying
  std::string reason;
  std::string message;
};

// Ready when, checked in this order: the node is not shutting down; its storage has not
// failed (st.failure: the log's or the state machine's); `st.members` lists it (st.id)
// as a voter; a leader is known; and st.applied + lag_entries_max >= st.commit. The
// first check that fails is the reason.
Readiness CheckReadiness(const raft::NodeStatusInfo& st, bool shutting_down,
                         raft::Index lag_entries_max = kReadyLagEntriesMax);

}  // namespace kv
