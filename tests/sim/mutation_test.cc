// Teeth (a test that cannot fail is worse than none): each rule-breaking switch of
// src/core/mutation.h must make the simulator's sweep fail. For each mutation the sweep
// runs seeds 1, 2, ... until a seed fails a SAFETY check (liveness failures do not count:
// they are not what the mutation breaks) or the core aborts on an invariant, at most
// kMaxSeeds. Prints how many seeds each mutation needed and which check caught it. Linked
// against raft_core_mutant only.
#include "core/mutation.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

#include "checker.h"
#include "figure8.h"
#include "seed_runner.h"

namespace {

using raft::mutation::Kind;
using raft::sim::RunOptions;

constexpr std::uint64_t kMaxSeeds = 300;

struct Caught {
  std::uint64_t seeds = 0;  // seeds run until caught; 0 = not caught
  std::string how;
};

Caught Hunt(Kind kind, const std::string& profile) {
  raft::mutation::g_active = kind;
  Caught c;
  for (std::uint64_t seed = 1; seed <= kMaxSeeds; ++seed) {
    RunOptions o;
    o.seed = seed;
    o.profile = profile;
    auto r = raft::sim::RunSeedIsolated(o);
    if (r.ok || r.failure.find("liveness") != std::string::npos) continue;
    c.seeds = seed;
    c.how = r.failure.substr(0, 300);
    break;
  }
  raft::mutation::g_active = Kind::kNone;
  return c;
}

void Expect(Kind kind, const char* name, const std::string& profile) {
  Caught c = Hunt(kind, profile);
  if (c.seeds != 0) {
    std::printf("mutation %-24s caught after %3llu seed(s) [%s]: %s\n", name,
                static_cast<unsigned long long>(c.seeds), profile.c_str(), c.how.c_str());
  } else {
    std::printf("mutation %-24s NOT caught in %llu seeds [%s]\n", name,
                static_cast<unsigned long long>(kMaxSeeds), profile.c_str());
  }
  std::fflush(stdout);
  INFO("mutation " << name << " must be caught by the sweep");
  CHECK(c.seeds != 0);
}

}  // namespace

TEST_CASE("mutation: count an old-term entry toward commit (Figure 8)", "[sim][mutation]") {
  Expect(Kind::kCommitOldTerm, "CommitOldTerm", "figure8");
}

TEST_CASE("mutation: old-term commit is caught by the scripted Figure 8", "[sim][mutation]") {
  raft::mutation::g_active = Kind::kCommitOldTerm;
  std::uint64_t caught_at = 0;
  std::string how;
  for (std::uint64_t seed = 1; seed <= 20 && caught_at == 0; ++seed) {
    try {
      raft::sim::RunScriptedFigure8(seed);
    } catch (const raft::sim::SimFailure& f) {
      caught_at = seed;
      how = f.what();
    }
  }
  raft::mutation::g_active = Kind::kNone;
  std::printf("mutation %-24s scripted Figure 8: %s%s\n", "CommitOldTerm",
              caught_at ? ("caught at seed " + std::to_string(caught_at) + ": ").c_str()
                        : "NOT caught in 20 seeds",
              how.c_str());
  CHECK(caught_at != 0);
}

TEST_CASE("mutation: grant a vote before it is durable", "[sim][mutation]") {
  Expect(Kind::kVoteWithoutPersist, "VoteWithoutPersist", "swarm");
}

TEST_CASE("mutation: skip the up-to-date check when voting", "[sim][mutation]") {
  Expect(Kind::kSkipUpToDateCheck, "SkipUpToDateCheck", "swarm");
}

TEST_CASE("mutation: apply one entry past the commit index", "[sim][mutation]") {
  Expect(Kind::kApplyBeforeCommit, "ApplyBeforeCommit", "swarm");
}

TEST_CASE("mutation: truncate on a stale append", "[sim][mutation]") {
  Expect(Kind::kTruncateOnStaleAppend, "TruncateOnStaleAppend", "swarm");
}

TEST_CASE("mutation: hand out committed entries not yet durable here", "[sim][mutation]") {
  Expect(Kind::kTakeUndurable, "TakeUndurable", "swarm");
}

TEST_CASE("baseline: the unmutated core passes the mutation sweep's first seeds",
          "[sim][mutation]") {
  raft::mutation::g_active = Kind::kNone;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    RunOptions o;
    o.seed = seed;
    auto r = raft::sim::RunSeedIsolated(o);
    INFO("seed " << seed << ": " << r.failure);
    CHECK((r.ok || r.failure.find("liveness") != std::string::npos));
  }
}
