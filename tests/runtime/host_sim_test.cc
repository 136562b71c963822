// Many groups on three simulated processes (runtime::HostCore over the in-memory
// HostCluster), under random faults: lost, duplicated and delayed frames, isolated and
// crashed processes, with and without quiescence. Every frame goes through the
// version-4 codec; the cluster checks election safety and state machine safety of every
// group as it runs. At the end, with one process down, every group must elect a leader
// and commit on the other two (asleep, only the failure detector can notice a lost
// leader), and then, all three up, on every process.
//
// Storage is MemoryStorage per replica, or one storage::SharedLog per process, reopened
// after every crash (a third of the seeds). HOST_SIM_SEEDS=N in the environment runs
// seeds 1..N (default 24) per setting.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>

#include "host_cluster.h"

namespace raft::testing {

namespace {

constexpr GroupId kGroups = 12;

int Seeds() {
  const char* env = std::getenv("HOST_SIM_SEEDS");
  return env != nullptr ? std::max(1, std::atoi(env)) : 24;
}

std::string Value(std::uint64_t seed, std::int64_t tick, GroupId g) {
  std::string v = "s";
  v.append(std::to_string(seed)).append("t").append(std::to_string(tick));
  v.append("g").append(std::to_string(g));
  return v;
}

struct SimStats {
  std::uint64_t committed = 0;
  std::uint64_t wakes = 0;
};

// One seed: 600 ticks of random faults and proposals, then the liveness checks.
SimStats RunSeed(std::uint64_t seed, bool quiesce, const std::string& log_dir) {
  std::mt19937_64 rng(seed * 2654435761u + quiesce);
  HostClusterOptions o;
  o.shared_log_dir = log_dir;
  o.seed = seed;
  o.quiesce = quiesce;
  o.drop_rate = static_cast<double>(rng() % 10) / 100.0;  // 0-9%
  o.duplicate_rate = static_cast<double>(rng() % 5) / 100.0;
  o.max_delay_ticks = static_cast<int>(rng() % 3);
  HostCluster c(o);
  for (GroupId g = 1; g <= kGroups; ++g) c.AddGroup(g);

  std::map<NodeId, std::int64_t> down_until;  // isolated or crashed, until a tick
  std::map<NodeId, bool> is_crash;
  for (int t = 0; t < 600; ++t) {
    // At most one process down at a time, so a quorum can make progress.
    if (down_until.empty() && rng() % 40 == 0) {
      const NodeId p = 1 + rng() % 3;
      down_until[p] = c.now() + 5 + static_cast<std::int64_t>(rng() % 60);
      is_crash[p] = rng() % 2 == 0;
      if (is_crash[p]) {
        c.Crash(p);
      } else {
        c.Isolate(p);
      }
    }
    for (auto it = down_until.begin(); it != down_until.end();) {
      if (c.now() < it->second) {
        ++it;
        continue;
      }
      if (is_crash[it->first]) {
        c.Restart(it->first);
      } else {
        c.Heal(it->first);
      }
      it = down_until.erase(it);
    }
    // Bursts of proposals with rests between them, so that groups sleep and wake.
    if ((c.now() / 50) % 2 == 0 && rng() % 3 == 0) {
      const GroupId g = 1 + rng() % kGroups;
      const NodeId leader = c.Leader(g);
      if (leader != kNoNode) (void)c.Propose(leader, g, Value(seed, c.now(), g));  // may be refused
    }
    c.Tick();
  }
  for (auto& [p, until] : down_until) {
    if (is_crash[p]) {
      c.Restart(p);
    } else {
      c.Heal(p);
    }
  }
  c.Run(100);  // the groups settle, and most fall asleep with quiescence

  // Liveness with one process down: every group elects a leader among the other two and
  // commits there (asleep, only the failure detector notices a lost leader). Then with
  // all three: the process that was down catches up. Frames may still be lost (the drop
  // rate stays), so proposals are retried.
  const NodeId down = 1 + rng() % 3;
  const bool crash = rng() % 2 == 0;
  if (crash) {
    c.Crash(down);
  } else {
    c.Isolate(down);
  }
  auto commit_everywhere = [&](const std::set<NodeId>& on, std::int64_t tag) {
    for (GroupId g = 1; g <= kGroups; ++g) {
      const std::string value = Value(seed, tag, g);
      bool done = false;
      for (int attempt = 0; attempt < 20 && !done; ++attempt) {
        const NodeId leader = c.Leader(g);
        if (leader != kNoNode) (void)c.Propose(leader, g, value);
        c.Run(20);
        done = true;
        for (NodeId p : on) {
          const auto& applied = c.Applied(p, g);
          done = done && std::find(applied.begin(), applied.end(), value) != applied.end();
        }
      }
      INFO("seed " << seed << " quiesce " << quiesce << " group " << g << " process " << down
                   << (crash ? " crashed" : " isolated"));
      CHECK(done);
    }
  };
  std::set<NodeId> up = {1, 2, 3};
  up.erase(down);
  commit_everywhere(up, -1);
  if (crash) {
    c.Restart(down);
  } else {
    c.Heal(down);
  }
  commit_everywhere({1, 2, 3}, -2);
  SimStats st;
  st.committed = c.committed_entries();
  for (NodeId p = 1; p <= 3; ++p) st.wakes += c.host(p).counters().wakes_by_detector;
  return st;
}

}  // namespace

TEST_CASE(
    "many groups stay safe and live under lost, late and doubled frames, isolation and "
    "crashes",
    "[host][sim]") {
  const bool quiesce = GENERATE(true, false);
  // Storage: MemoryStorage per replica, or one SharedLog per process (reopened after
  // every crash).
  const bool shared_log = GENERATE(false, true);
  SimStats total;
  // Real files: a third of the seeds (8 by default) keeps the run short.
  const int seeds = shared_log ? std::max(1, Seeds() / 3) : Seeds();
  for (int seed = 1; seed <= seeds; ++seed) {
    INFO("seed " << seed << " quiesce " << quiesce << " shared log " << shared_log);
    std::string dir;
    if (shared_log) {
      dir = (std::filesystem::temp_directory_path() /
             ("host-sim-" + std::to_string(::getpid()) + "-" + std::to_string(seed)))
                .string();
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
    }
    SimStats st;
    REQUIRE_NOTHROW(st = RunSeed(static_cast<std::uint64_t>(seed), quiesce, dir));
    if (shared_log) std::filesystem::remove_all(dir);
    total.committed += st.committed;
    total.wakes += st.wakes;
  }
  // The runs did work: entries committed, and with quiescence the detector woke groups.
  CHECK(total.committed > static_cast<std::uint64_t>(seeds) * kGroups * 5);
  if (quiesce) CHECK(total.wakes > 0);
}

}  // namespace raft::testing
