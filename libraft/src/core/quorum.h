// Majority quorum math over a set of voters. Pure functions, checked against naive
// versions on random inputs in tests/core/quorum_test.cc.
#pragma once

#include <functional>
#include <map>
#include <set>

#include "raft/types.h"

namespace raft {

enum class VoteResult { kPending, kWon, kLost };

// The largest index that a majority of `voters` has matched. `match` returns a voter's
// acknowledged index (0 when unknown). Returns 0 for an empty voter set... callers never
// pass one.
Index CommittedIndex(const std::set<NodeId>& voters, const std::function<Index(NodeId)>& match);

// Outcome of an election given the responses so far (true = granted). Votes of
// non-voters are ignored.
VoteResult TallyVotes(const std::set<NodeId>& voters, const std::map<NodeId, bool>& votes);

// Whether the nodes for which `active` holds form a majority of `voters`.
bool QuorumActive(const std::set<NodeId>& voters, const std::function<bool(NodeId)>& active);

}  // namespace raft
