// kvbench: a closed-loop HTTP/1.1 load generator for kvserver and etcd. See --help and
// docs/performance.md.
#include <cstdio>
#include <string>

#include "flags.h"
#include "load_generator.h"
#include "proc_cpu.h"

namespace {

constexpr char kUsage[] = R"(usage: kvbench --addr HOST:PORT[,HOST:PORT...] [flags]

Closed-loop load: each connection keeps one request in flight (HTTP/1.1 keep-alive);
connections are spread round-robin over the addresses. One thread.

flags:
  --addr LIST          server addresses (default 127.0.0.1:3000)
  --target NAME        kvserver (PUT/GET /kv/{key}) or etcd (POST /v3/kv/put, /v3/kv/range
                       through the JSON gateway, base64 keys/values) (default kvserver)
  --connections N      concurrent connections (default 16)
  --duration S         measured seconds (default 10)
  --warmup S           unmeasured seconds before (default 2)
  --keys N             key space: keys k00000000..k(N-1), chosen uniformly (default 10000)
  --value-size B       bytes per written value (default 100)
  --read-ratio R       fraction of operations that are (linearizable) reads, 0..1 (default 0)
  --preload            write every key once before the warmup
  --spread-keys        keys start with a byte of 0x21..0x7e (index % 94), so that they
                       spread over the ranges of a kvserver run with -shards
  --timeout S          a connect or request older than this counts as a timeout and the
                       connection is reopened (default 5)
  --seed N             PRNG seed for key and operation choice (default 1)
  --path P             every operation is GET P (e.g. /health) instead of the key/value
                       workload; counted as reads, only 2xx succeeds
  --cpu-pids P,P,...   also report the CPU time (utime + stime from /proc/PID/stat) these
                       server processes used during the measured phase, and per operation
  --json               one JSON object on stdout instead of text

Exit status: 0 when at least one operation succeeded in the measured phase, 1 otherwise
(or when the preload failed), 2 for bad flags.
)";

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

std::string LatencyJson(const kvbench::Histogram& h) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "{\"count\":%llu,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
                "\"p999\":%.3f,\"max\":%.3f}",
                static_cast<unsigned long long>(h.count()), h.Mean() / 1e6,
                Ms(h.ValueAtPercentile(50)), Ms(h.ValueAtPercentile(90)),
                Ms(h.ValueAtPercentile(99)), Ms(h.ValueAtPercentile(99.9)), Ms(h.max()));
  return buf;
}

std::string ErrorsJson(const kvbench::ErrorCounts& e) {
  char buf[512];
  std::snprintf(
      buf, sizeof(buf),
      "{\"total\":%llu,\"connect\":%llu,\"timeout\":%llu,\"io\":%llu,\"parse\":%llu,"
      "\"http_3xx\":%llu,\"http_4xx\":%llu,\"http_5xx\":%llu}",
      static_cast<unsigned long long>(e.Total()), static_cast<unsigned long long>(e.connect),
      static_cast<unsigned long long>(e.timeout), static_cast<unsigned long long>(e.io),
      static_cast<unsigned long long>(e.parse), static_cast<unsigned long long>(e.http_3xx),
      static_cast<unsigned long long>(e.http_4xx), static_cast<unsigned long long>(e.http_5xx));
  return buf;
}

void PrintLatencyLine(const char* label, const kvbench::Histogram& h) {
  if (h.count() == 0) return;
  std::printf("%-8s ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (n=%llu)\n", label,
              Ms(h.ValueAtPercentile(50)), Ms(h.ValueAtPercentile(90)), Ms(h.ValueAtPercentile(99)),
              Ms(h.ValueAtPercentile(99.9)), Ms(h.max()),
              static_cast<unsigned long long>(h.count()));
}

}  // namespace

int main(int argc, char** argv) {
  kvbench::Flags flags(argc, argv, {"preload", "spread-keys", "json", "help", "h"});
  if (flags.Has("help") || flags.Has("h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  kvbench::LoadOptions o;
  o.endpoints = flags.Endpoints("addr", "127.0.0.1:3000");
  const std::string target = flags.String("target", "kvserver");
  o.connections = static_cast<int>(flags.Int("connections", 16));
  o.duration_s = flags.Double("duration", 10);
  o.warmup_s = flags.Double("warmup", 2);
  o.keys = static_cast<uint64_t>(flags.Int("keys", 10000));
  o.value_bytes = static_cast<size_t>(flags.Int("value-size", 100));
  o.read_ratio = flags.Double("read-ratio", 0);
  o.preload = flags.Bool("preload");
  o.spread_keys = flags.Bool("spread-keys");
  o.request_timeout_s = flags.Double("timeout", 5);
  o.seed = static_cast<uint64_t>(flags.Int("seed", 1));
  o.get_path = flags.String("path", "");
  const std::string cpu_pids = flags.String("cpu-pids", "");
  const bool json = flags.Bool("json");
  std::string problem = flags.error();
  if (problem.empty() && !cpu_pids.empty() && !kvbench::ParsePidList(cpu_pids, o.cpu_pids)) {
    problem = "--cpu-pids must be a comma-separated list of process ids";
  }
  if (problem.empty() && !o.get_path.empty() && o.get_path[0] != '/') {
    problem = "--path must start with '/'";
  }
  if (problem.empty() && !flags.Unused().empty())
    problem = std::string("unknown flag --").append(flags.Unused()[0]);
  if (problem.empty() && target != "kvserver" && target != "etcd") {
    problem = "--target must be kvserver or etcd";
  }
  if (problem.empty() && (o.connections < 1 || o.connections > 10000)) {
    problem = "--connections must be in 1..10000";
  }
  if (problem.empty() && (o.duration_s <= 0 || o.warmup_s < 0 || o.request_timeout_s <= 0)) {
    problem = "--duration and --timeout must be > 0, --warmup >= 0";
  }
  if (problem.empty() && (o.keys < 1 || o.read_ratio < 0 || o.read_ratio > 1)) {
    problem = "--keys must be >= 1 and --read-ratio in 0..1";
  }
  if (!problem.empty()) {
    std::fprintf(stderr, "kvbench: %s (try --help)\n", problem.c_str());
    return 2;
  }
  o.target = target == "etcd" ? kvbench::Target::kEtcd : kvbench::Target::kKvserver;

  const kvbench::LoadResult r = kvbench::RunLoad(o);
  const kvbench::PhaseResult& m = r.measure;
  const uint64_t ops = m.reads + m.writes;
  const double ops_per_s = m.elapsed_s > 0 ? static_cast<double>(ops) / m.elapsed_s : 0;
  std::string addrs;
  for (const auto& e : o.endpoints) {
    if (!addrs.empty()) addrs.push_back(',');
    addrs.append(e.HostPort());
  }
  // CPU microseconds of the listed servers per successful operation; -1: not measured.
  const double cpu_us_per_op =
      m.server_cpu_s >= 0 && ops > 0 ? m.server_cpu_s * 1e6 / static_cast<double>(ops) : -1;

  if (json) {
    std::printf(
        "{\"target\":\"%s\",\"addr\":\"%s\",\"connections\":%d,\"duration_s\":%.3f,"
        "\"warmup_s\":%.3f,\"keys\":%llu,\"value_size\":%zu,\"read_ratio\":%.3f,"
        "\"preload\":{\"ok\":%s,\"seconds\":%.3f,\"errors\":%s},"
        "\"ops\":%llu,\"reads\":%llu,\"writes\":%llu,\"not_found\":%llu,\"ops_per_s\":%.1f,"
        "\"errors\":%s,\"latency_ms\":%s,\"read_latency_ms\":%s,\"write_latency_ms\":%s,"
        "\"server_cpu_s\":%.3f,\"cpu_us_per_op\":%.1f}\n",
        target.c_str(), addrs.c_str(), o.connections, m.elapsed_s, o.warmup_s,
        static_cast<unsigned long long>(o.keys), o.value_bytes, o.read_ratio,
        r.preload_ok ? "true" : "false", r.preload.elapsed_s, ErrorsJson(r.preload.errors).c_str(),
        static_cast<unsigned long long>(ops), static_cast<unsigned long long>(m.reads),
        static_cast<unsigned long long>(m.writes), static_cast<unsigned long long>(m.not_found),
        ops_per_s, ErrorsJson(m.errors).c_str(), LatencyJson(m.latency_ns).c_str(),
        LatencyJson(m.read_latency_ns).c_str(), LatencyJson(m.write_latency_ns).c_str(),
        m.server_cpu_s, cpu_us_per_op);
  } else {
    std::printf(
        "kvbench: target %s  addr %s  connections %d  read-ratio %.2f  value %zu B  "
        "keys %llu\n",
        target.c_str(), addrs.c_str(), o.connections, o.read_ratio, o.value_bytes,
        static_cast<unsigned long long>(o.keys));
    if (o.preload) {
      std::printf("preload  %s in %.2f s (%llu errors)\n", r.preload_ok ? "done" : "FAILED",
                  r.preload.elapsed_s, static_cast<unsigned long long>(r.preload.errors.Total()));
    }
    std::printf(
        "ops      %llu in %.2f s = %.1f ops/s  (reads %llu, of which not found %llu; "
        "writes %llu)\n",
        static_cast<unsigned long long>(ops), m.elapsed_s, ops_per_s,
        static_cast<unsigned long long>(m.reads), static_cast<unsigned long long>(m.not_found),
        static_cast<unsigned long long>(m.writes));
    const auto& e = m.errors;
    std::printf(
        "errors   %llu  (connect %llu, timeout %llu, io %llu, parse %llu, 3xx %llu, "
        "4xx %llu, 5xx %llu)\n",
        static_cast<unsigned long long>(e.Total()), static_cast<unsigned long long>(e.connect),
        static_cast<unsigned long long>(e.timeout), static_cast<unsigned long long>(e.io),
        static_cast<unsigned long long>(e.parse), static_cast<unsigned long long>(e.http_3xx),
        static_cast<unsigned long long>(e.http_4xx), static_cast<unsigned long long>(e.http_5xx));
    PrintLatencyLine("latency", m.latency_ns);
    if (cpu_us_per_op >= 0) {
      std::printf("server   %.2f CPU s = %.1f CPU us per operation\n", m.server_cpu_s,
                  cpu_us_per_op);
    }
    if (m.reads > 0 && m.writes > 0) {
      PrintLatencyLine("reads", m.read_latency_ns);
      PrintLatencyLine("writes", m.write_latency_ns);
    }
  }
  return (r.preload_ok && ops > 0) ? 0 : 1;
}
