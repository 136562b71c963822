// The full-node simulator over hosts of many groups in CTest: a run without faults, runs
// with every fault, and a sweep (HOST_NODESIM_SEEDS overrides its count). host_sim.h.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "host_sim.h"

using namespace raft::nodesim;

TEST_CASE("hostsim: many groups without faults converge, every write acknowledged", "[hostsim]") {
  HostSimOptions o;
  o.seed = 7;
  o.groups = 8;
  o.swarm = false;
  o.mix = FaultMix{false, false, false, false, false, false, false,
                   false, false, false, false, false, false};
  NodeSimResult r = RunHostSim(o);
  INFO(r.Summary());
  REQUIRE(r.ok);
  CHECK(r.ops_ok > 100);
  CHECK(r.ops_unknown == 0);
  CHECK(r.reads_ok > 50);
}

TEST_CASE("hostsim: every fault at once", "[hostsim]") {
  std::uint64_t crashes = 0, failed = 0, transfers = 0, ops = 0;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    HostSimOptions o;
    o.seed = seed;
    o.swarm = false;
    NodeSimResult r = RunHostSim(o);
    INFO("seed " << seed << ": " << r.Summary());
    CHECK(r.ok);
    crashes += r.crashes;
    failed += r.failed_nodes;
    transfers += r.transfers;
    ops += r.ops_ok;
  }
  // The faults do happen, and writes get through them.
  CHECK(crashes > 10);
  CHECK(failed > 0);
  CHECK(transfers > 10);
  CHECK(ops > 100);
}

TEST_CASE("hostsim: sweep", "[hostsim][sweep]") {
  std::uint64_t n = 500;
  if (const char* env = std::getenv("HOST_NODESIM_SEEDS")) n = std::strtoull(env, nullptr, 10);
  std::uint64_t failures = 0;
  for (std::uint64_t seed = 1000; seed < 1000 + n; ++seed) {
    HostSimOptions o;
    o.seed = seed;
    NodeSimResult r = RunHostSim(o);
    if (!r.ok) {
      ++failures;
      UNSCOPED_INFO("seed " << seed << ": " << r.Summary());
    }
  }
  CHECK(failures == 0);
}
