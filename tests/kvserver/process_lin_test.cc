// Linearizability of kvserver as seen by real HTTP clients: concurrent GET / PUT / CAS /
// DELETE on a few keys against every node while the leader is killed with -9 and
// restarted, checked with the WGL checker of tests/lin (the clients: lin_clients.h).
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "lin_checker.h"
#include "lin_clients.h"
#include "process_harness.h"

namespace kvtest {
namespace {

TEST_CASE("concurrent clients on every node see a linearizable history across a leader crash",
          "[cluster][linearizability]") {
  ProcessCluster cluster;
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  std::vector<std::string> addrs;
  for (std::size_t i = 0; i < 3; ++i) addrs.push_back(cluster.node(i).http_addr());

  SharedHistory history;
  Counters counters;
  {
    LinClients clients(4, addrs, {"x", "y", "z"}, history, counters);
    std::this_thread::sleep_for(1500ms);
    cluster.node(leader).Kill();
    std::this_thread::sleep_for(1500ms);
    cluster.node(leader).Start();
    std::this_thread::sleep_for(1500ms);
  }

  auto h = history.history();
  INFO(h.size() << " operations: " << counters.definite << " definite, " << counters.unknown
                << " unknown outcome");
  {
    std::lock_guard lock(counters.mu);
    INFO("first unexpected reply: " << counters.first_unexpected);
    CHECK(counters.unexpected == 0);
  }
  REQUIRE(counters.definite > 100);  // the run did something
  auto result = raft::lin::CheckHistory(h, {.states_max = 5'000'000});
  INFO(result.ToString());
  REQUIRE(result.verdict != raft::lin::Verdict::kInvalidHistory);
  REQUIRE(result.verdict != raft::lin::Verdict::kNotLinearizable);
  if (result.verdict == raft::lin::Verdict::kTimeout)
    WARN("checker undecided: " << result.ToString());
}

}  // namespace
}  // namespace kvtest
