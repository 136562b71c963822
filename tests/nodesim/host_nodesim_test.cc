// The full-node simulator over hosts of many groups in CTest: a run without faults, runs
// with every fault, and a sweep (HOST_NODESIM_SEEDS overrides its count). host_sim.h.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host_sim.h"
#include "raft/host.h"
#include "sim_env.h"
#include "sim_file_system.h"
#include "sim_kv.h"
#include "sim_network.h"
#include "sim_world.h"

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

namespace {

using namespace std::chrono_literals;

// Three hosts on the simulated world, disk and network, driven by hand.
struct SimHosts {
  SimWorld world{42};
  SimNetwork net{&world};
  std::vector<std::unique_ptr<SimDisk>> disks;
  std::vector<std::unique_ptr<SimFileSystem>> fss;
  std::vector<std::map<raft::GroupId, std::unique_ptr<SimKv>>> kvs{3};
  std::vector<std::unique_ptr<raft::Host>> hosts;

  SimHosts() {
    std::map<raft::NodeId, std::string> addrs;
    for (int i = 0; i < 3; ++i)
      addrs[static_cast<raft::NodeId>(i + 1)].append("h").append(std::to_string(i));
    for (int i = 0; i < 3; ++i) {
      disks.push_back(std::make_unique<SimDisk>(&world.rng()));
      fss.push_back(std::make_unique<SimFileSystem>(disks.back().get()));
      raft::HostOptions o;
      o.self = static_cast<raft::NodeId>(i + 1);
      o.listen_addr = addrs[o.self];
      o.peers = addrs;
      o.data_dir = "/data";
      o.tick_ms = 10;
      o.snapshot_entries = 0;  // driven by hand, step by step: no snapshot jobs meanwhile
      auto h = raft::Host::StartWithEnv(
          o, std::make_unique<SimEnv>(&world, &net, i, fss.back().get(), 0));
      REQUIRE(h.ok());
      hosts.push_back(std::move(h).value());
    }
  }
  ~SimHosts() {
    for (auto& h : hosts) h->Stop();
  }
  void Create(raft::GroupId g) {
    for (int i = 0; i < 3; ++i) {
      kvs[static_cast<std::size_t>(i)][g] = std::make_unique<SimKv>();
      bool done = false;
      hosts[static_cast<std::size_t>(i)]->CreateGroup(
          g, {1, 2, 3}, kvs[static_cast<std::size_t>(i)][g].get(), [&done](raft::Status s) {
            REQUIRE(s.ok());
            done = true;
          });
      while (!done) REQUIRE(world.Step());
    }
  }
  void RunFor(std::chrono::milliseconds d) { world.RunUntil(world.Now() + d); }
  raft::GroupStatusInfo Status(int i, raft::GroupId g) {
    auto st = hosts[static_cast<std::size_t>(i)]->GroupStatus(g);
    REQUIRE(st.ok());
    return *st;
  }
};

}  // namespace

// While a leader's disk is stuck (its round cannot finish, so its group's Ready stays
// outstanding), its appends and heartbeats still leave (RawNode::TakeMessages): the
// followers keep it as leader and commit its writes. Without TakeMessages in Host's Pump
// they hear nothing for longer than an election timeout and elect another leader.
TEST_CASE("hostsim: a leader's stalled disk does not stall its groups' heartbeats", "[hostsim]") {
  SimHosts s;
  s.Create(1);
  s.RunFor(2s);
  const raft::NodeId leader = s.Status(0, 1).leader;
  REQUIRE(leader != raft::kNoNode);
  const int l = static_cast<int>(leader - 1);
  const raft::Term term = s.Status(0, 1).term;
  // The leader's disk lane stalls for 600 ms (60 ticks; the election timeout is 10-20)
  // with a write in flight.
  s.world.StallLane(l, raft::runtime::Lane::kDisk, s.world.Now() + 600ms);
  bool acked = false;
  s.hosts[static_cast<std::size_t>(l)]->Propose(
      1, EncodePut("k", "v"), 5s, [&acked](raft::Result<std::string> r) { acked = r.ok(); });
  s.RunFor(500ms);
  for (int i = 0; i < 3; ++i) {
    INFO("host " << i);
    CHECK(s.Status(i, 1).leader == leader);
    CHECK(s.Status(i, 1).term == term);
  }
  // The followers have the write committed (a quorum without the leader's disk); the
  // leader acknowledges once its own disk is back.
  const int f = (l + 1) % 3;
  CHECK(s.kvs[static_cast<std::size_t>(f)][1]->Get("k") == std::optional<std::string>("v"));
  s.RunFor(500ms);
  CHECK(acked);
}
