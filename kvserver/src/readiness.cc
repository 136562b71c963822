#include "readiness.h"

#include <fmt/format.h>

namespace kv {

Readiness CheckReadiness(const raft::NodeStatusInfo& st, bool shutting_down,
                         raft::Index lag_entries_max) {
  auto no = [](std::string reason, std::string message) {
    return Readiness{false, std::move(reason), std::move(message)};
  };
  if (shutting_down) return no("shutting_down", "the node is shutting down");
  if (!st.failure.empty())
    return no("storage_failed", fmt::format("storage failed; writes stopped: {}", st.failure));
  const raft::MemberStatus* self = nullptr;
  for (const auto& ms : st.members)
    if (ms.info.id == st.id) self = &ms;
  if (self == nullptr)
    return no("not_member", "this node is not a member of a cluster (yet): joining, or removed");
  if (!self->voter)
    return no("learner", "this node is a learner, catching up before it is promoted to voter");
  if (st.leader == raft::kNoNode) return no("no_leader", "no leader known");
  if (st.applied + lag_entries_max < st.commit)
    return no("applying",
              fmt::format("applied index {} is {} entries behind commit index {} "
                          "(ready within {})",
                          st.applied, st.commit - st.applied, st.commit, lag_entries_max));
  return Readiness{true, "", ""};
}

}  // namespace kv
