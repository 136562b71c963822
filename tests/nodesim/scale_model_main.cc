// raft_scale_model: writes/s of a sharded cluster against its number of machines, in the
// full-node simulator's machine model (scale_model.h; docs/performance.md, finding 21).
//   raft_scale_model [--machines 1,2,3,4,6,8,12,16] [--ranges-per-machine 4 | --ranges N]
//                    [--clients-per-machine 64] [--cores 2] [--sync-us 500]
//                    [--net-us 100-200] [--http-us 20] [--forward-us 15] [--frame-us 8]
//                    [--apply-us 4] [--direct]
//                    [--window-ms 1000] [--warmup-ms 500] [--fixed-cost-us N] [--seed S]
// One line per cluster size: writes/s, per machine, against linear from the first size
// that holds every range's replicas (0 before it).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "scale_model.h"

namespace {

std::vector<int> ParseList(const char* s) {
  std::vector<int> out;
  std::string cur;
  for (const char* p = s;; ++p) {
    if (*p == ',' || *p == '\0') {
      if (!cur.empty()) out.push_back(std::atoi(cur.c_str()));
      cur.clear();
      if (*p == '\0') break;
    } else {
      cur.push_back(*p);
    }
  }
  return out;
}

int Usage() {
  std::fprintf(stderr,
               "usage: raft_scale_model [--machines LIST] [--ranges-per-machine N | --ranges N] "
               "[--clients-per-machine N] [--cores N] [--sync-us N] [--net-us LO-HI] "
               "[--http-us N] [--forward-us N] [--frame-us N] [--apply-us N] [--window-ms N] "
               "[--warmup-ms N] "
               "[--fixed-cost-us N] [--seed S] [--direct]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using std::chrono::microseconds;
  using std::chrono::milliseconds;
  raft::nodesim::ScaleModelOptions o;
  std::vector<int> sizes = {1, 2, 3, 4, 6, 8, 12, 16};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--direct") {
      o.direct = true;
      continue;
    }
    if (i + 1 >= argc) return Usage();
    const char* v = argv[++i];
    if (a == "--machines") {
      sizes = ParseList(v);
    } else if (a == "--ranges") {
      o.ranges = std::atoi(v);
    } else if (a == "--ranges-per-machine") {
      o.ranges_per_machine = std::atoi(v);
    } else if (a == "--clients-per-machine") {
      o.clients_per_machine = std::atoi(v);
    } else if (a == "--cores") {
      o.cores = std::atoi(v);
    } else if (a == "--sync-us") {
      o.sync_latency = microseconds(std::atoi(v));
    } else if (a == "--net-us") {
      const char* dash = std::strchr(v, '-');
      if (dash == nullptr) return Usage();
      o.net_delay_min = microseconds(std::atoi(v));
      o.net_delay_max = microseconds(std::atoi(dash + 1));
    } else if (a == "--http-us") {
      o.http_us = microseconds(std::atoi(v));
    } else if (a == "--frame-us") {
      o.frame_us = microseconds(std::atoi(v));
    } else if (a == "--apply-us") {
      o.apply_us = microseconds(std::atoi(v));
    } else if (a == "--forward-us") {
      o.forward_us = microseconds(std::atoi(v));
    } else if (a == "--window-ms") {
      o.window = milliseconds(std::atoi(v));
    } else if (a == "--warmup-ms") {
      o.warmup = milliseconds(std::atoi(v));
    } else if (a == "--fixed-cost-us") {
      o.measure_cpu = false;
      o.fixed_item = microseconds(std::atoi(v));
    } else if (a == "--seed") {
      o.seed = std::strtoull(v, nullptr, 10);
    } else {
      return Usage();
    }
  }
  if (sizes.empty() || o.cores < 1 || o.ranges_per_machine < 1 || o.clients_per_machine < 1)
    return Usage();
  std::printf(
      "machines ranges   writes/s  per-machine  vs-linear  latency-ms  cpu-mean  cpu-max  "
      "cpu-us/write  fsyncs/s/machine  frames/write  forwarded  failed\n");
  double base_per_machine = 0;
  for (int m : sizes) {
    o.machines = m;
    const raft::nodesim::ScaleModelResult r = raft::nodesim::RunScaleModel(o);
    if (!r.error.empty()) {
      std::printf("%8d  error: %s\n", m, r.error.c_str());
      return 1;
    }
    // Linear from the first size that replicates every range fully (smaller clusters
    // replicate less, so do less work per write).
    const double per = r.writes_per_second / m;
    if (base_per_machine == 0 && (m >= o.replicas || m == sizes.back())) base_per_machine = per;
    std::printf(
        "%8d %6d %10.0f %12.0f %10.2f %11.2f %9.2f %8.2f %13.1f %17.0f %13.2f %10.2f %7llu\n", m,
        r.ranges, r.writes_per_second, per, base_per_machine > 0 ? per / base_per_machine : 0,
        r.mean_latency_ms, r.cpu_utilization, r.max_cpu_utilization, r.cpu_us_per_write,
        r.fsyncs_per_machine_second, r.frames_per_write, r.forwarded,
        static_cast<unsigned long long>(r.failed));
    std::fflush(stdout);
  }
  return 0;
}
