#include "core/quorum.h"

#include <algorithm>
#include <vector>

namespace raft {

Index CommittedIndex(const std::set<NodeId>& voters, const std::function<Index(NodeId)>& match) {
  if (voters.empty()) return 0;
  std::vector<Index> m;
  m.reserve(voters.size());
  for (NodeId id : voters) m.push_back(match(id));
  // Sorted descending, the value at position (n/2) is matched by n/2+1 voters: a majority.
  std::size_t q = m.size() / 2;
  std::nth_element(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(q), m.end(),
                   std::greater<Index>());
  return m[q];
}

VoteResult TallyVotes(const std::set<NodeId>& voters, const std::map<NodeId, bool>& votes) {
  std::size_t granted = 0, rejected = 0;
  for (NodeId id : voters) {
    auto it = votes.find(id);
    if (it == votes.end()) continue;
    (it->second ? granted : rejected)++;
  }
  std::size_t q = voters.size() / 2 + 1;
  if (granted >= q) return VoteResult::kWon;
  if (voters.size() - rejected < q) return VoteResult::kLost;
  return VoteResult::kPending;
}

bool QuorumActive(const std::set<NodeId>& voters, const std::function<bool(NodeId)>& active) {
  std::size_t n = 0;
  for (NodeId id : voters) n += active(id) ? 1 : 0;
  return n >= voters.size() / 2 + 1;
}

}  // namespace raft
