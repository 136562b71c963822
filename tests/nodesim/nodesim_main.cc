// raft_nodesim: sweep or replay seeds of the full-node simulator (node_sim.h).
//   raft_nodesim --seeds 1000 [--start 1]    sweep; prints each failing seed, exits 1 if any
//   raft_nodesim --seed 42 --trace           replay one seed with its event trace
//   --all-faults                             every fault on (no swarm draw)
//   --fault-ms N --heal-ms N                 phase lengths (virtual time)
//   --time-box S                             stop a sweep after S seconds of real time
//   --jobs J                                 run each seed in its own child process, J at
//                                            a time (an abort is then a failed seed, not
//                                            the end of the sweep)
//   --hosts G                                the simulator over hosts (host_sim.h): three
//                                            raft::Host processes of G groups each
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "host_sim.h"
#include "node_sim.h"

namespace {

// The run of one seed: whole nodes, or (host_groups > 0) hosts of that many groups with
// the same phases, faults and trace.
raft::nodesim::NodeSimResult RunOne(raft::nodesim::NodeSimOptions o, int host_groups,
                                    std::uint64_t seed) {
  o.seed = seed;
  if (host_groups <= 0) return raft::nodesim::RunNodeSim(o);
  raft::nodesim::HostSimOptions h;
  h.seed = seed;
  h.groups = host_groups;
  h.fault_time = o.fault_time;
  h.heal_time = o.heal_time;
  h.swarm = o.swarm;
  h.trace = o.trace;
  return raft::nodesim::RunHostSim(h);
}

struct Child {
  std::uint64_t seed;
  int fd;  // the read end of the pipe its summary comes back through
};

// Forks a child that runs `seed` and writes "<steps> ok" or "<steps> <summary>".
pid_t Spawn(const raft::nodesim::NodeSimOptions& o, int host_groups, std::uint64_t seed,
            Child* child) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    close(fds[0]);
    raft::nodesim::NodeSimResult r = RunOne(o, host_groups, seed);
    std::string line = std::to_string(r.steps) + " " + (r.ok ? "ok" : r.Summary());
    if (write(fds[1], line.data(), line.size()) < 0) _exit(3);
    _exit(0);
  }
  close(fds[1]);
  *child = Child{seed, fds[0]};
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace raft::nodesim;
  NodeSimOptions o;
  std::uint64_t start = 1, count = 1;
  bool single = false;
  double time_box = 0;
  int jobs = 0;
  int host_groups = 0;
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
    } else if (a == "--hosts") {
      host_groups = std::atoi(next());
    } else if (a == "--jobs") {
      jobs = std::atoi(next());
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
  if (jobs > 0 && !single) {
    std::map<pid_t, Child> running;
    std::uint64_t seed = start;
    auto out_of_time = [&] {
      return time_box > 0 &&
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >
                 time_box;
    };
    while (true) {
      while (static_cast<int>(running.size()) < jobs && seed < start + count && !out_of_time()) {
        Child c;
        pid_t pid = Spawn(o, host_groups, seed++, &c);
        running.emplace(pid, c);
      }
      if (running.empty()) break;
      int status = 0;
      pid_t pid = wait(&status);
      auto it = running.find(pid);
      if (it == running.end()) continue;
      // The child has exited: its line (far below the pipe's buffer) is all there.
      std::string out;
      char buf[4096];
      ssize_t n;
      while ((n = read(it->second.fd, buf, sizeof(buf))) > 0)
        out.append(buf, static_cast<std::size_t>(n));
      close(it->second.fd);
      ++ran;
      const auto space = out.find(' ');
      if (space != std::string::npos) steps += std::strtoull(out.c_str(), nullptr, 10);
      const std::string verdict = space == std::string::npos ? "" : out.substr(space + 1);
      if (verdict != "ok") {
        ++failures;
        std::printf("seed %llu: %s\n", static_cast<unsigned long long>(it->second.seed),
                    verdict.empty() ? "FAIL: the process aborted (replay it without --jobs)"
                                    : verdict.c_str());
        std::fflush(stdout);
      }
      running.erase(it);
    }
  }
  for (std::uint64_t seed = start; jobs == 0 && seed < start + count; ++seed) {
    if (time_box > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > time_box)
      break;
    NodeSimResult r = RunOne(o, host_groups, seed);
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
