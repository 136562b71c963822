// The full-node simulator in CTest: fixed runs, the regression seeds, and a sweep of at
// least 1,000 seeds (NODESIM_SEEDS overrides the count). docs/testing.md.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "node_sim.h"

using namespace raft::nodesim;

namespace {
NodeSimResult RunSeed(std::uint64_t seed, bool swarm = true) {
  NodeSimOptions o;
  o.seed = seed;
  o.swarm = swarm;
  NodeSimResult r = RunNodeSim(o);
  INFO("seed " << seed << ": " << r.Summary());
  CHECK(r.ok);
  return r;
}
}  // namespace

TEST_CASE("nodesim: a run without faults converges, every write acknowledged", "[nodesim]") {
  NodeSimOptions o;
  o.seed = 7;
  o.swarm = false;
  o.mix = FaultMix{false, false, false, false, false, false, false,
                   false, false, false, false, false, false};
  NodeSimResult r = RunNodeSim(o);
  INFO(r.Summary());
  REQUIRE(r.ok);
  CHECK(r.ops_ok > 100);
  CHECK(r.ops_unknown == 0);
  CHECK(r.reads_ok > 50);
  CHECK(r.snapshots_taken > 0);
}

TEST_CASE("nodesim: every fault at once", "[nodesim]") {
  std::uint64_t crashes = 0, installed = 0, removed = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    NodeSimResult r = RunSeed(seed, /*swarm=*/false);
    crashes += r.crashes;
    installed += r.snapshots_installed;
    removed += r.members_removed;
  }
  // The faults do happen (a run that silently injected nothing would prove nothing).
  CHECK(crashes > 20);
  CHECK(installed > 0);
  CHECK(removed > 0);
}

TEST_CASE("nodesim: regression seeds", "[nodesim]") {
  // Seeds that once found a bug (docs/testing.md, "Full-node simulation"); each must pass.
  // 18, 165: DiskStorage::TermAt(0) aborted with a snapshot recorded and nothing compacted.
  // 679, 1455: DiskStorage::TermAt(first - 1) aborted after a newer snapshot replaced
  // the one whose term answered it.
  // 16317: the harness waited forever for a request a crash had dropped (client-side
  // timeouts since). 51614: the apply thread restored an installed snapshot by name
  // after a newer one's cleanup removed it, and aborted.
  // (A seed's schedule depends on the simulator's code: 18 to 1455 found their bugs
  // before the client-side timeouts changed every schedule; the storage tests pin them.)
  for (std::uint64_t seed : {18, 165, 679, 1455, 16317, 51614}) RunSeed(seed);
}

TEST_CASE("nodesim: sweep", "[nodesim][sweep]") {
  std::uint64_t n = 1000;
  if (const char* env = std::getenv("NODESIM_SEEDS")) n = std::strtoull(env, nullptr, 10);
  std::uint64_t failures = 0;
  for (std::uint64_t seed = 1000; seed < 1000 + n; ++seed) {
    NodeSimOptions o;
    o.seed = seed;
    NodeSimResult r = RunNodeSim(o);
    if (!r.ok) {
      ++failures;
      UNSCOPED_INFO("seed " << seed << ": " << r.Summary());
    }
  }
  CHECK(failures == 0);
}
