// The closed-loop load generator: `connections` keep-alive HTTP/1.1 connections, each with
// exactly one request in flight, spread round-robin over the endpoints, all driven by one
// Asio io_context on the calling thread (the cores are shared with the servers under test).
//
// Phases: preload (optional: every key written once, keys handed out from a shared
// counter), warmup (load, nothing recorded), measure (load, recorded), then every socket is
// closed. A response that completes after the measure window closes is not counted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flags.h"
#include "histogram.h"
#include "workload.h"

namespace kvbench {

struct LoadOptions {
  std::vector<Endpoint> endpoints;
  Target target = Target::kKvserver;
  int connections = 16;
  double duration_s = 10;
  double warmup_s = 2;
  uint64_t keys = 10000;
  size_t value_bytes = 100;
  double read_ratio = 0;
  bool preload = false;
  bool spread_keys = false;      // KeyName's `spread`
  double request_timeout_s = 5;  // a request (or connect) older than this is a timeout
  uint64_t seed = 1;
  // Non-empty: every operation is `GET get_path` (a read; only 2xx succeeds) instead of the
  // key/value workload, e.g. "/health".
  std::string get_path;
  // Processes whose CPU time (utime + stime) is taken at the start and end of the measure
  // phase (PhaseResult::server_cpu_s).
  std::vector<int> cpu_pids;
};

struct ErrorCounts {
  uint64_t connect = 0;  // connect refused or failed
  uint64_t timeout = 0;  // no complete response within request_timeout_s
  uint64_t io = 0;       // connection reset or closed mid-request
  uint64_t parse = 0;    // malformed or unframed response
  uint64_t http_3xx = 0;
  uint64_t http_4xx = 0;  // 404 on a read is not an error (see not_found)
  uint64_t http_5xx = 0;
  uint64_t Total() const { return connect + timeout + io + parse + http_3xx + http_4xx + http_5xx; }
};

struct PhaseResult {
  double elapsed_s = 0;
  uint64_t reads = 0;      // successful (2xx, or 404 for a read)
  uint64_t writes = 0;     // successful (2xx)
  uint64_t not_found = 0;  // reads answered 404 (kvserver: key absent), counted in `reads`
  ErrorCounts errors;
  Histogram latency_ns;  // successful operations, request written to response parsed
  Histogram read_latency_ns;
  Histogram write_latency_ns;
  double server_cpu_s = -1;  // CPU seconds of LoadOptions::cpu_pids over the phase; -1: none
};

struct LoadResult {
  bool preload_ok = true;
  PhaseResult preload;
  PhaseResult measure;
};

// Runs all phases; returns when the measure phase is over (or the preload failed).
LoadResult RunLoad(const LoadOptions& options);

}  // namespace kvbench
