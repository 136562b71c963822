// Differential tests: the optimized quorum functions against naive definitions on
// random inputs (etcd-io/raft quorum/quick_test.go is the model).
#include "core/quorum.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

namespace raft {
namespace {

// Naive commit index: the largest candidate index matched by a majority.
Index NaiveCommitted(const std::set<NodeId>& voters, const std::map<NodeId, Index>& match) {
  Index best = 0;
  for (auto& [_, candidate] : match) {
    std::size_t n = 0;
    for (NodeId v : voters) n += (match.count(v) ? match.at(v) : 0) >= candidate ? 1 : 0;
    if (n > voters.size() / 2) best = std::max(best, candidate);
  }
  return best;
}

VoteResult NaiveTally(const std::set<NodeId>& voters, const std::map<NodeId, bool>& votes) {
  std::size_t yes = 0, no = 0, missing = 0;
  for (NodeId v : voters) {
    if (!votes.count(v)) {
      ++missing;
    } else if (votes.at(v)) {
      ++yes;
    } else {
      ++no;
    }
  }
  if (2 * yes > voters.size()) return VoteResult::kWon;
  if (2 * (yes + missing) <= voters.size()) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace

TEST_CASE("CommittedIndex equals the naive majority index on random inputs", "[quorum]") {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 20000; ++iter) {
    std::set<NodeId> voters;
    std::map<NodeId, Index> match;
    int n = 1 + static_cast<int>(rng() % 9);
    for (int i = 1; i <= n; ++i) {
      voters.insert(static_cast<NodeId>(i));
      if (rng() % 4 != 0) match[static_cast<NodeId>(i)] = rng() % 12;
    }
    // Non-voters' matches must not count.
    match[100] = rng() % 12;
    auto f = [&](NodeId id) { return match.count(id) ? match.at(id) : Index{0}; };
    REQUIRE(CommittedIndex(voters, f) == NaiveCommitted(voters, match));
  }
}

TEST_CASE("TallyVotes equals the naive tally on random inputs", "[quorum]") {
  std::mt19937_64 rng(11);
  for (int iter = 0; iter < 20000; ++iter) {
    std::set<NodeId> voters;
    std::map<NodeId, bool> votes;
    int n = 1 + static_cast<int>(rng() % 9);
    for (int i = 1; i <= n; ++i) {
      voters.insert(static_cast<NodeId>(i));
      int r = static_cast<int>(rng() % 3);
      if (r < 2) votes[static_cast<NodeId>(i)] = r == 0;
    }
    votes[200] = true;  // a learner's or stranger's vote is never counted
    REQUIRE(TallyVotes(voters, votes) == NaiveTally(voters, votes));
  }
}

TEST_CASE("QuorumActive needs a strict majority", "[quorum]") {
  std::set<NodeId> v{1, 2, 3, 4};
  REQUIRE_FALSE(QuorumActive(v, [](NodeId id) { return id <= 2; }));
  REQUIRE(QuorumActive(v, [](NodeId id) { return id <= 3; }));
}

}  // namespace raft
