// The scaling model of issue 17: writes/s of a sharded cluster against its number of
// machines. M complete raft::Host processes, one per simulated machine, run on the
// full-node simulator's world in its machine model (sim_world.h): each machine has its
// own cores (the CPU time of every lane item, measured on this thread and charged to a
// core of the machine that ran it, plus the fixed costs below for what the model does
// not run for real) and its own disk (every fdatasync holds the disk lane for
// `sync_latency`); frames between machines take `net_delay_min..max`.
//
// The cluster: `ranges_per_machine * M` ranges (or a fixed `ranges`), range i on the
// min(3, M) machines from i on (round-robin), its leader moved to machine i mod M by
// leadership transfer before the load starts (leaders spread, as kvserver's ranges
// will be). The load: `clients_per_machine` closed-loop clients per machine, each
// writing keys spread evenly over the ranges. A client talks to its own machine, which
// charges the front end's work (`http_us`, the HTTP parse and answer the model does not
// run) and, when the range's leader is elsewhere, forwards the write there and back
// (`forward_us` at each end of each hop, plus the network delay each way), as kvserver's
// nodes forward to the leader. What is real: every Host's io, disk and apply lanes, the
// core, the version-4 frames, the shared log on a simulated disk.
//
// Fixed costs stand in for what is not run: the HTTP front end (`http_us` per request,
// `forward_us` per end of a forwarding hop), the kernel's send and receive of a frame
// (`frame_us`, charged to the sender) and RocksDB's write of an applied entry
// (`apply_us`); their defaults bring the model's CPU per write near kvserver's measured
// one (docs/performance.md, finding 21). Left out: bandwidth (frames only have latency),
// the kernel's cost of a log write (the simulated disk is memory), and routing misses
// (clients know every leader).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace raft::nodesim {

struct ScaleModelOptions {
  int machines = 3;
  int ranges_per_machine = 4;
  int ranges = 0;    // > 0: this many ranges whatever the machines (as `-shards N` without splits)
  int replicas = 3;  // per range (at most the machines)
  int clients_per_machine = 64;
  int cores = 2;
  std::chrono::microseconds sync_latency{500};  // this machine's fdatasync (finding 20)
  std::chrono::microseconds net_delay_min{100};
  std::chrono::microseconds net_delay_max{200};
  std::chrono::microseconds http_us{20};
  std::chrono::microseconds forward_us{15};
  std::chrono::microseconds frame_us{8};  // per frame, charged to its sender
  std::chrono::microseconds apply_us{4};  // per entry applied (RocksDB's write)
  // Clients send each write to its range's leader (a client that caches the range map)
  // instead of to their own machine: no forwarding.
  bool direct = false;
  // CPU time of an item: measured (times cpu_scale), or a fixed cost (deterministic runs).
  bool measure_cpu = true;
  double cpu_scale = 1.0;
  std::chrono::microseconds fixed_item{10};
  int value_bytes = 100;
  std::chrono::milliseconds warmup{500};   // load before the window
  std::chrono::milliseconds window{1000};  // writes counted in it
  std::uint64_t seed = 1;
};

struct ScaleModelResult {
  int machines = 0;
  int ranges = 0;
  std::uint64_t writes = 0;  // acknowledged within the window
  double writes_per_second = 0;
  double mean_latency_ms = 0;  // of those writes, from the client's send to its answer
  double cpu_utilization = 0;  // mean over machines: core time charged / (cores * window)
  double max_cpu_utilization = 0;
  double fsyncs_per_machine_second = 0;
  double cpu_us_per_write = 0;  // core time of every machine in the window per write
  double frames_per_write = 0;  // network frames sent in the window per write
  double forwarded = 0;         // fraction of the window's writes forwarded to a leader
  std::uint64_t failed = 0;     // writes answered with an error (in the whole run)
  std::string error;            // non-empty: the model could not run (e.g. no leaders)
};

ScaleModelResult RunScaleModel(const ScaleModelOptions& options);

}  // namespace raft::nodesim
