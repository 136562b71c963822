// raft_sim: sweep seeds, or replay one with a trace.
//   raft_sim --seeds 1..1000 [--nodes N] [--profile NAME] [--ticks T] [--lease] [--quiesce]
//            [--no-fork] [-v]
//   raft_sim --seed 42 [--nodes N] [--profile NAME] [--ticks T] [--lease] [--quiesce] [--trace]
// --lease runs every node with lease reads (ReadOnlyOption::kLeaseBased).
// --quiesce runs every node with Config::quiesce and a host failure detector (cluster.h).
// A sweep prints one line per failing seed with the command that replays it, then a
// summary; the exit status is 1 if any seed failed. Each seed runs in a forked child so
// that a core assertion (abort) fails that seed, not the sweep.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "swarm.h"

namespace {

constexpr unsigned kSeedSeconds = 60;

using raft::sim::RunOptions;
using raft::sim::RunResult;

void Usage() {
  std::fprintf(stderr,
               "usage: raft_sim --seeds A..B [--nodes 3|5|7] [--profile NAME] [--ticks T] "
               "[--lease] [--quiesce] [--no-fork] [-v]\n"
               "       raft_sim --seed N [--nodes 3|5|7] [--profile NAME] [--ticks T] [--lease] "
               "[--quiesce] [--trace]\n"
               "profiles:");
  for (const auto& p : raft::sim::ProfileNames()) std::fprintf(stderr, " %s", p.c_str());
  std::fprintf(stderr, "\n");
  std::exit(2);
}

// Runs one seed in this process; prints the failure (if any); returns the exit status.
int RunHere(const RunOptions& o, bool verbose) {
  RunResult r = raft::sim::RunSeed(o);
  if (!r.ok) {
    std::printf("FAIL seed %llu (%d nodes): %s\n  mix: %s\n  replay: %s\n",
                static_cast<unsigned long long>(o.seed), r.nodes, r.failure.c_str(), r.mix.c_str(),
                raft::sim::ReplayCommand(o).c_str());
  } else if (verbose || o.trace) {
    std::printf(
        "ok   seed %llu: %d nodes, %lld ticks, %zu committed, %zu ops, %zu terms%s%s%s | %s\n",
        static_cast<unsigned long long>(o.seed), r.nodes, static_cast<long long>(r.ticks),
        r.committed, r.ops_completed, r.terms_with_leader,
        o.quiesce ? (", " + std::to_string(static_cast<int>(r.asleep * 100)) + "% asleep").c_str()
                  : "",
        r.lin_note.empty() ? "" : " | ", r.lin_note.c_str(), r.mix.c_str());
  }
  std::fflush(stdout);
  return r.ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  RunOptions o;
  std::uint64_t lo = 0, hi = 0;
  bool sweep = false, single = false, fork_each = true, verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (a == "--seeds") {
      std::string v = next();
      auto dots = v.find("..");
      if (dots == std::string::npos) Usage();
      lo = std::stoull(v.substr(0, dots));
      hi = std::stoull(v.substr(dots + 2));
      sweep = true;
    } else if (a == "--seed") {
      o.seed = std::stoull(next());
      single = true;
    } else if (a == "--nodes") {
      o.nodes = std::stoi(next());
      if (o.nodes < 1 || o.nodes > 9) Usage();
    } else if (a == "--profile") {
      o.profile = next();
      if (!raft::sim::IsProfile(o.profile)) Usage();
    } else if (a == "--ticks") {
      o.fault_ticks = std::stoi(next());
    } else if (a == "--lease") {
      o.lease_reads = true;
    } else if (a == "--quiesce") {
      o.quiesce = true;
    } else if (a == "--trace") {
      o.trace = true;
    } else if (a == "--no-fork") {
      fork_each = false;
    } else if (a == "-v") {
      verbose = true;
    } else {
      Usage();
    }
  }
  if (sweep == single) Usage();
  if (single) return RunHere(o, true);

  std::uint64_t failed = 0;
  for (std::uint64_t s = lo; s <= hi; ++s) {
    o.seed = s;
    if (!fork_each) {
      failed += RunHere(o, verbose) != 0;
      continue;
    }
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      return 2;
    }
    if (pid == 0) {
      // Child: the core's RAFT_ASSERT aborts; keep its message on stderr. A seed that
      // runs longer than kSeedSeconds (a livelock) is killed by the alarm.
      alarm(kSeedSeconds);
      std::_Exit(RunHere(o, verbose));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    ++failed;
    if (WIFSIGNALED(status)) {
      std::printf("FAIL seed %llu: %s (signal %d, see stderr)\n  replay: %s\n",
                  static_cast<unsigned long long>(s),
                  WTERMSIG(status) == SIGALRM ? "livelock: seed ran too long" : "core aborted",
                  WTERMSIG(status), raft::sim::ReplayCommand(o).c_str());
      std::fflush(stdout);
    }
  }
  std::printf("%llu of %llu seeds failed (%s profile%s%s)\n",
              static_cast<unsigned long long>(failed), static_cast<unsigned long long>(hi - lo + 1),
              o.profile.c_str(), o.lease_reads ? ", lease reads" : "",
              o.quiesce ? ", quiescence" : "");
  return failed == 0 ? 0 : 1;
}
