// raft_nodesim: sweep or replay seeds of the full-node simulator (node_sim.h).
//   raft_nodesim --seeds 1000 [--start 1]    sweep; prints each failing seed, exits 1 if any
//   raft_nodesim --seed 42 --trace           replay one seed with its event trace
//   --all-faults                             every fault on (no swarm draw)
//   --fault-ms N --heal-ms N                 phase lengths (virtual time)
//   --time-box S                             stop a sweep after S seconds of real time
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "node_sim.h"

int main(int argc, char** argv) {
  using namespace raft::nodesim;
  NodeSimOptions o;
  std::uint64_t start = 1, count = 1;
  bool single = false;
  double time_box = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seed") {
      start = std::strtoull(next(), nullptr, 10);
      single = true;
    } else if (a == "--seeds") {
      count = std::strtoull(next(), nullptr, 10);
    } else if (a == "--start") {
      start = std::strtoull(next(), nullptr, 10);
    } else if (a == "--trace") {
      o.trace = true;
    } else if (a == "--all-faults") {
      o.swarm = false;
    } else if (a == "--fault-ms") {
      o.fault_time = std::chrono::milliseconds(std::atoi(next()));
    } else if (a == "--heal-ms") {
      o.heal_time = std::chrono::milliseconds(std::atoi(next()));
    } else if (a == "--time-box") {
      time_box = std::atof(next());
    } else {
      std::fprintf(stderr, "unknown argument %s (see the comment at the top of nodesim_main.cc)\n",
                   a.c_str());
      return 2;
    }
  }
  if (single) count = 1;
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t failures = 0, ran = 0, steps = 0;
  for (std::uint64_t seed = start; seed < start + count; ++seed) {
    if (time_box > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > time_box)
      break;
    o.seed = seed;
    NodeSimResult r = RunNodeSim(o);
    ++ran;
    steps += r.steps;
    if (!r.ok || single)
      std::printf("seed %llu: %s\n", static_cast<unsigned long long>(seed), r.Summary().c_str());
    if (!r.ok) ++failures;
    std::fflush(stdout);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%llu seeds from %llu, %llu failed, %llu steps, %.1f s\n",
              static_cast<unsigned long long>(ran), static_cast<unsigned long long>(start),
              static_cast<unsigned long long>(failures), static_cast<unsigned long long>(steps),
              secs);
  return failures == 0 ? 0 : 1;
}
