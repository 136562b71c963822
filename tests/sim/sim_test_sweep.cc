// The fixed CI sweep (label sim): hundreds of swarm seeds across profiles, each in a forked
// child. A failing seed prints its replay command. The long sweep is documented in
// docs/testing.md.
#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

#include "seed_runner.h"

namespace raft::sim::test {
namespace {

void Sweep(const std::string& profile, std::uint64_t first, std::uint64_t last,
           bool lease_reads = false, bool quiesce = false) {
  std::uint64_t failed = 0;
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    RunOptions o;
    o.seed = seed;
    o.profile = profile;
    o.lease_reads = lease_reads;
    o.quiesce = quiesce;
    IsolatedResult r = RunSeedIsolated(o);
    if (r.ok) continue;
    ++failed;
    std::printf("FAIL seed %llu [%s]: %s\n  replay: %s\n", static_cast<unsigned long long>(seed),
                profile.c_str(), r.failure.c_str(), ReplayCommand(o).c_str());
  }
  std::fflush(stdout);
  INFO(failed << " of " << (last - first + 1) << " seeds failed in profile " << profile);
  CHECK(failed == 0);
}

}  // namespace

TEST_CASE("sweep: swarm profile, seeds 1..300", "[sim][sweep]") { Sweep("swarm", 1, 300); }
TEST_CASE("sweep: all faults at once, seeds 1..100", "[sim][sweep]") { Sweep("all", 1, 100); }
TEST_CASE("sweep: figure8 profile, seeds 1..60", "[sim][sweep]") { Sweep("figure8", 1, 60); }
TEST_CASE("sweep: membership profile, seeds 1..60", "[sim][sweep]") { Sweep("membership", 1, 60); }
TEST_CASE("sweep: snapshot profile, seeds 1..60", "[sim][sweep]") { Sweep("snapshot", 1, 60); }
// Lease reads on (safety.md section 1): transfers, ReportLeaderLost on crashes and
// restarts are all in these mixes; the clients' reads are answered from the lease.
TEST_CASE("sweep: lease reads, swarm profile, seeds 1..300", "[sim][sweep][lease]") {
  Sweep("swarm", 1, 300, /*lease_reads=*/true);
}
TEST_CASE("sweep: lease reads, membership profile, seeds 1..100", "[sim][sweep][lease]") {
  Sweep("membership", 1, 100, /*lease_reads=*/true);
}
// Quiescence (docs/core.md, "Quiescence"): idle groups sleep, the hosts' failure detector
// wakes them (Cluster::WatchProcesses); every fault of the mixes, clients idle at times.
TEST_CASE("sweep: quiescence, swarm profile, seeds 1..200", "[sim][sweep][quiesce]") {
  Sweep("swarm", 1, 200, /*lease_reads=*/false, /*quiesce=*/true);
}
TEST_CASE("sweep: quiescence with lease reads, all faults, seeds 1..100", "[sim][sweep][quiesce]") {
  Sweep("all", 1, 100, /*lease_reads=*/true, /*quiesce=*/true);
}

}  // namespace raft::sim::test

namespace raft::sim::test {

// Seeds that once failed (FOUND_BUGS.md); they must stay green forever.
TEST_CASE("sweep: regression seeds", "[sim][sweep]") {
  for (std::uint64_t seed : {1, 3, 14, 20, 22, 1195}) Sweep("swarm", seed, seed);
  for (std::uint64_t seed : {9, 26, 56, 65, 73, 1456}) Sweep("all", seed, seed);
  Sweep("all", 4106, 4106, /*lease_reads=*/true);  // checker: torn write of a later term
}

}  // namespace raft::sim::test
