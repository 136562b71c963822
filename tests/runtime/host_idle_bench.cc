// host_idle_bench: what idle groups cost a host of many groups (issue 17's idle target:
// 10,000 quiesced groups on each of 3 processes under 5% of a core per process and under
// 1 KiB/s of heartbeat traffic per process pair; docs/performance.md, finding 18).
//
//   host_idle_bench [--groups N] [--ticks T] [--tick-ms MS] [--quiesce on|off]
//
// Three runtime::HostCore processes in one thread (tests/runtime/host_cluster.h), each
// hosting a replica of every group over MemoryStorage; every frame is encoded and
// decoded with the version-4 codec and counted with its header. The groups elect, commit
// one entry each, and idle. Measured over T ticks: each process's CPU time (its ticks,
// Readies, encoding and decoding, receiving), as a share of a core at one tick per MS
// milliseconds, and the bytes each pair of processes exchanges per second. Not measured:
// the socket writes and reads of a transport (one frame per pair per tick when idle) and
// the disk (idle groups write nothing).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "host_cluster.h"

int main(int argc, char** argv) {
  using raft::NodeId;
  using raft::testing::GroupId;
  std::size_t groups = 10000;
  int ticks = 200;
  double tick_ms = 100;
  bool quiesce = true;
  const char* usage =
      "usage: host_idle_bench [--groups N] [--ticks T] [--tick-ms MS] [--quiesce on|off]\n";
  for (int i = 1; i < argc; ++i) {
    if (i + 1 >= argc) {
      std::fputs(usage, stderr);
      return 2;
    }
    const char* v = argv[++i];
    if (!std::strcmp(argv[i - 1], "--groups")) {
      groups = std::strtoull(v, nullptr, 10);
    } else if (!std::strcmp(argv[i - 1], "--ticks")) {
      ticks = std::atoi(v);
    } else if (!std::strcmp(argv[i - 1], "--tick-ms")) {
      tick_ms = std::atof(v);
    } else if (!std::strcmp(argv[i - 1], "--quiesce")) {
      quiesce = std::strcmp(v, "off") != 0;
    } else {
      std::fputs(usage, stderr);
      return 2;
    }
  }
  if (groups == 0 || ticks <= 0 || tick_ms <= 0) {
    std::fputs(usage, stderr);
    return 2;
  }

  raft::testing::HostClusterOptions o;
  o.quiesce = quiesce;
  o.measure_cpu = true;
  raft::testing::HostCluster c(o);
  for (GroupId g = 1; g <= groups; ++g) c.AddGroup(g);
  c.Run(60);
  std::size_t leaders[4] = {0, 0, 0, 0};
  for (GroupId g = 1; g <= groups; ++g) {
    const NodeId leader = c.Leader(g);
    if (leader == raft::kNoNode || !c.Propose(leader, g, "x").ok()) {
      std::fprintf(stderr, "group %llu: no leader after 60 ticks\n",
                   static_cast<unsigned long long>(g));
      return 1;
    }
    ++leaders[leader];
  }
  c.Run(30);  // time to fall asleep, if they will

  c.ResetTraffic();
  c.ResetCpu();
  c.Run(ticks);
  const double seconds = ticks * tick_ms / 1000.0;
  std::printf("groups %zu x 3 processes, quiesce %s, %d ticks of %.0f ms (%.1f s)\n", groups,
              quiesce ? "on" : "off", ticks, tick_ms, seconds);
  std::printf("leaders per process: %zu %zu %zu\n", leaders[1], leaders[2], leaders[3]);
  for (NodeId p = 1; p <= 3; ++p) {
    const double cpu = c.cpu_seconds(p);
    std::printf("process %llu: awake groups %zu, cpu %.3f ms per tick = %.2f%% of a core\n",
                static_cast<unsigned long long>(p), c.host(p).awake_count(), cpu * 1000.0 / ticks,
                100.0 * cpu / seconds);
  }
  for (NodeId a = 1; a <= 3; ++a) {
    for (NodeId b = a + 1; b <= 3; ++b) {
      const auto& ab = c.traffic(a, b);
      const auto& ba = c.traffic(b, a);
      const double bytes = static_cast<double>(ab.bytes + ba.bytes);
      // What version 3 would send: one 118-byte RaftMessage frame per heartbeat and per
      // response, and no liveness frames (nothing to watch without quiescence).
      const double v3 = 118.0 * static_cast<double>(ab.beats + ba.beats + ab.acks + ba.acks);
      std::printf(
          "pair %llu-%llu: %.0f bytes/s (%.0f frames/s; beats %llu, acks %llu, messages "
          "%llu); uncoalesced heartbeats would be %.0f bytes/s\n",
          static_cast<unsigned long long>(a), static_cast<unsigned long long>(b), bytes / seconds,
          static_cast<double>(ab.frames + ba.frames) / seconds,
          static_cast<unsigned long long>(ab.beats + ba.beats),
          static_cast<unsigned long long>(ab.acks + ba.acks),
          static_cast<unsigned long long>(ab.message_frames + ba.message_frames), v3 / seconds);
    }
  }
  // Resident memory of the whole benchmark (3 processes' groups, storage and all).
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::strncmp(line, "VmRSS:", 6) == 0) {
        const double kib = std::atof(line + 6);
        std::printf("resident: %.0f MiB, %.1f KiB per replica\n", kib / 1024,
                    kib / static_cast<double>(3 * groups));
      }
    }
    std::fclose(f);
  }
  return 0;
}
