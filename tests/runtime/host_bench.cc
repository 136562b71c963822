// host_bench: issue 17's targets measured on the whole raft::Host runtime (every lane,
// the shared log on real files with real fdatasyncs, the version-4 transport on
// loopback), three hosts in this one process.
//
//   host_bench idle  [--groups N] [--seconds S] [--dir D]
//       N groups on each host elect, commit one entry each and fall asleep; then the
//       process's CPU time (all threads of the three hosts, divided by three: one
//       host's share) and the loopback bytes per pair of hosts are measured.
//   host_bench write [--groups N] [--clients C] [--seconds S] [--dir D]
//       C closed-loop writers (each waits for its write before the next), spread over N
//       groups round-robin, propose 100-byte values on each group's leader. The same load
//       for any N: writes/s, and fdatasyncs of the shared log per second per host. The
//       issue's target: syncs/s do not grow with N.
//
// The hosts' data directories are created under D (default: a fresh one in /tmp,
// removed at the end). Not a test: docs/performance.md records its numbers.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "raft/host.h"
#include "runtime_test_util.h"

namespace {

using raft::GroupId;
using raft::Host;
using raft::NodeId;
using namespace std::chrono_literals;

// Counts applies; stores nothing (the benchmark measures the host, not a state machine).
class CountingSm final : public raft::StateMachine {
 public:
  void Apply(const std::vector<raft::Entry>& entries, std::vector<std::string>* results) override {
    applied_ += entries.size();
    results->assign(entries.size(), std::string());
  }
  raft::Index AppliedIndex() override { return 0; }
  raft::Result<std::unique_ptr<raft::SnapshotSource>> PrepareSnapshot() override {
    return raft::Status(raft::ErrorCode::kInvalidArgument, "no snapshots in host_bench");
  }
  raft::Status Restore(raft::SnapshotReader*, const raft::SnapshotMeta&) override {
    return raft::Status(raft::ErrorCode::kInvalidArgument, "no snapshots in host_bench");
  }

 private:
  std::atomic<std::uint64_t> applied_{0};
};

double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

struct Trio {
  std::map<NodeId, std::unique_ptr<Host>> hosts;
  std::map<NodeId, std::vector<std::unique_ptr<CountingSm>>> sms;

  NodeId Leader(GroupId g) const {
    auto st = hosts.at(1)->GroupStatus(g);
    return st.ok() ? st->leader : raft::kNoNode;
  }
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "host_bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: host_bench idle|write [--groups N] [--clients C] [--seconds S] [--dir D]\n";
  if (argc < 2 || (std::strcmp(argv[1], "idle") != 0 && std::strcmp(argv[1], "write") != 0)) {
    std::fputs(usage, stderr);
    return 2;
  }
  const bool idle = std::strcmp(argv[1], "idle") == 0;
  std::size_t groups = idle ? 10000 : 10;
  std::size_t clients = 64;
  double seconds = idle ? 20 : 10;
  std::string dir;
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 >= argc) {
      std::fputs(usage, stderr);
      return 2;
    }
    const char* v = argv[i + 1];
    if (!std::strcmp(argv[i], "--groups")) {
      groups = std::strtoull(v, nullptr, 10);
    } else if (!std::strcmp(argv[i], "--clients")) {
      clients = std::strtoull(v, nullptr, 10);
    } else if (!std::strcmp(argv[i], "--seconds")) {
      seconds = std::atof(v);
    } else if (!std::strcmp(argv[i], "--dir")) {
      dir = v;
    } else {
      std::fputs(usage, stderr);
      return 2;
    }
  }
  if (groups == 0 || clients == 0 || seconds <= 0) {
    std::fputs(usage, stderr);
    return 2;
  }
  const bool own_dir = dir.empty();
  if (own_dir) dir = "/tmp/host_bench-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);

  std::map<NodeId, std::string> addrs;
  for (NodeId p = 1; p <= 3; ++p) addrs[p] = "127.0.0.1:" + std::to_string(raft::test::FreePort());
  Trio trio;
  for (NodeId p = 1; p <= 3; ++p) {
    raft::HostOptions o;
    o.self = p;
    o.listen_addr = addrs[p];
    o.peers = addrs;
    o.data_dir = dir + "/" + std::to_string(p);
    o.snapshot_entries = 0;  // its state machine takes none: the write path alone
    auto h = Host::Start(o);
    if (!h.ok()) return Fail("start: " + h.status().ToString());
    trio.hosts[p] = std::move(h).value();
  }

  // Create every group on the three hosts in parallel (each bootstrap is one fdatasync).
  const auto c0 = std::chrono::steady_clock::now();
  std::vector<std::thread> creators;
  std::atomic<bool> create_failed{false};
  for (NodeId p = 1; p <= 3; ++p) {
    creators.emplace_back([&, p] {
      for (GroupId g = 1; g <= groups; ++g) {
        trio.sms[p].push_back(std::make_unique<CountingSm>());
        if (!trio.hosts[p]->CreateGroup(g, {1, 2, 3}, trio.sms[p].back().get()).ok())
          create_failed = true;
      }
    });
  }
  for (auto& t : creators) t.join();
  if (create_failed) return Fail("CreateGroup failed");
  const double create_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();

  // Every group elects and commits one entry (then falls asleep).
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  std::vector<GroupId> pending;
  for (GroupId g = 1; g <= groups; ++g) pending.push_back(g);
  while (!pending.empty() && std::chrono::steady_clock::now() < deadline) {
    std::vector<std::pair<GroupId, std::future<raft::Result<std::string>>>> writes;
    for (GroupId g : pending) {
      const NodeId leader = trio.Leader(g);
      if (leader != raft::kNoNode)
        writes.emplace_back(g, trio.hosts[leader]->Propose(g, "first", 10s));
    }
    std::vector<GroupId> left;
    for (GroupId g : pending) left.push_back(g);
    for (auto& [g, f] : writes)
      if (f.get().ok()) left.erase(std::find(left.begin(), left.end(), g));
    pending.swap(left);
    if (!pending.empty()) std::this_thread::sleep_for(100ms);
  }
  if (!pending.empty()) return Fail(std::to_string(pending.size()) + " groups did not commit");
  std::map<NodeId, std::size_t> leaders;
  for (GroupId g = 1; g <= groups; ++g) ++leaders[trio.Leader(g)];
  std::printf("%zu groups x 3 hosts: created in %.1f s; leaders per host:", groups, create_s);
  for (auto& [p, n] : leaders) std::printf(" %llu:%zu", static_cast<unsigned long long>(p), n);
  std::printf("\n");

  if (idle) {
    std::this_thread::sleep_for(5s);  // time to fall asleep
    const double cpu0 = ProcessCpuSeconds();
    const double lo0 = raft::test::LoopbackBytes();
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = ProcessCpuSeconds() - cpu0;
    const double lo1 = raft::test::LoopbackBytes();
    std::printf("idle, %.1f s measured: CPU %.2f%% of a core per host (the process's %.2f%% / 3)\n",
                wall, 100.0 * cpu / wall / 3.0, 100.0 * cpu / wall);
    for (NodeId p = 1; p <= 3; ++p) {
      const raft::HostMetrics m = trio.hosts[p]->GetMetrics();
      std::printf("host %llu: awake groups %llu of %llu\n", static_cast<unsigned long long>(p),
                  static_cast<unsigned long long>(m.awake_groups),
                  static_cast<unsigned long long>(m.groups));
    }
    if (lo0 >= 0 && lo1 >= 0) {
      std::printf(
          "per host pair on the loopback interface (TCP/IP headers and acks included): "
          "%.0f bytes/s\n",
          (lo1 - lo0) / 3.0 / wall);
    }
  } else {
    std::map<NodeId, raft::HostMetrics> m0;
    for (auto& [p, h] : trio.hosts) m0[p] = h->GetMetrics();
    std::atomic<std::uint64_t> done{0}, failed{0};
    std::atomic<bool> stop{false};
    const std::string value(100, 'v');
    std::vector<std::thread> writers;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t c = 0; c < clients; ++c) {
      writers.emplace_back([&, c] {
        const GroupId g = 1 + c % groups;
        while (!stop) {
          const NodeId leader = trio.Leader(g);
          if (leader == raft::kNoNode) {
            std::this_thread::sleep_for(10ms);
            continue;
          }
          auto r = trio.hosts[leader]->Propose(g, value, 10s).get();
          ++(r.ok() ? done : failed);
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : writers) t.join();
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("write, %zu clients over %zu groups, %.1f s: %.0f writes/s (%llu failed)\n",
                clients, groups, wall, static_cast<double>(done.load()) / wall,
                static_cast<unsigned long long>(failed.load()));
    for (auto& [p, h] : trio.hosts) {
      const raft::HostMetrics m = h->GetMetrics();
      const double syncs = static_cast<double>(m.log_syncs - m0[p].log_syncs);
      const double rounds = static_cast<double>(m.disk_rounds - m0[p].disk_rounds);
      const double readies = static_cast<double>(m.readies_persisted - m0[p].readies_persisted);
      std::printf(
          "host %llu: %.0f fdatasyncs/s, %.0f disk rounds/s, %.1f group Readies per round\n",
          static_cast<unsigned long long>(p), syncs / wall, rounds / wall,
          rounds > 0 ? readies / rounds : 0.0);
    }
  }
  for (auto& [p, h] : trio.hosts) h->Stop();
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}
