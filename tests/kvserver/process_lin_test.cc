// Linearizability of kvserver as seen by real HTTP clients: concurrent GET / PUT / CAS /
// DELETE on a few keys against every node while the leader is killed with -9 and
// restarted, checked with the WGL checker of tests/lin (the clients: lin_clients.h).
#include <catch2/catch.hpp>
#include <thread>

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

  CheckLinearizable(history, counters, 100, "a leader killed and restarted");
}

}  // namespace
}  // namespace kvtest
