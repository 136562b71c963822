// /metrics: Prometheus text exposition format (version 0.0.4), written with
// prom_format.h (exact integers) and process_stats.h (the process_* metrics).
#include "build_info.h"
#include "kv_server_impl.h"
#include "process_stats.h"
#include "prom_format.h"

namespace kv {
namespace {

std::vector<double> LatencyBoundsSeconds() {
  std::vector<double> b;
  for (std::size_t i = 0; i < raft::NodeMetrics::kBuckets; ++i)
    b.push_back(static_cast<double>(raft::NodeMetrics::kLatencyBucketsUs[i]) / 1e6);
  return b;
}

// The process_* metrics of the Prometheus client libraries; left out when /proc cannot
// be read.
void ProcessMetrics(PromWriter& w) {
  auto p = ReadProcessStats();
  if (!p) return;
  w.Counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
            p->cpu_seconds);
  w.Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p->resident_bytes);
  w.Gauge("process_open_fds", "Number of open file descriptors.", p->open_fds);
  if (p->max_fds > 0)
    w.Gauge("process_max_fds", "Maximum number of open file descriptors.", p->max_fds);
  w.Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
          p->start_time_seconds);
}

}  // namespace

void HttpCounters::Count(std::string_view route, std::string_view method, int code,
                         double seconds) {
  std::size_t r = kRouteCount - 1, m = kMethodCount - 1;
  for (std::size_t i = 0; i + 1 < kRouteCount; ++i)
    if (kRoutes[i] == route) r = i;
  for (std::size_t i = 0; i + 1 < kMethodCount; ++i)
    if (kMethods[i] == method) m = i;
  std::size_t c = code >= 100 && code <= 599 ? static_cast<std::size_t>(code - 100) : kCodes - 1;
  counts_[(r * kMethodCount + m) * kCodes + c].fetch_add(1, std::memory_order_relaxed);
  if (seconds < 0) return;
  const auto us = static_cast<std::uint64_t>(seconds * 1e6);
  std::size_t b = 0;
  while (b < raft::NodeMetrics::kBuckets && us > raft::NodeMetrics::kLatencyBucketsUs[b]) ++b;
  latency_[r * kBuckets + b].fetch_add(1, std::memory_order_relaxed);
  latency_sum_us_[r].fetch_add(us, std::memory_order_relaxed);
}

void HttpCounters::Render(PromWriter& w) const {
  w.Header("kv_http_requests_total", "counter", "HTTP requests by route, method and status code.");
  for (std::size_t r = 0; r < kRouteCount; ++r)
    for (std::size_t m = 0; m < kMethodCount; ++m)
      for (std::size_t c = 0; c < kCodes; ++c) {
        std::uint64_t n =
            counts_[(r * kMethodCount + m) * kCodes + c].load(std::memory_order_relaxed);
        if (n == 0) continue;
        w.Sample("kv_http_requests_total",
                 {{"route", std::string(kRoutes[r])},
                  {"method", std::string(kMethods[m])},
                  {"code", std::to_string(c + 100)}},
                 n);
      }
  w.Header("kv_http_request_duration_seconds", "histogram",
           "HTTP request latency by route: from the complete request to its answer.");
  const std::vector<double> bounds = LatencyBoundsSeconds();
  for (std::size_t r = 0; r < kRouteCount; ++r) {
    std::uint64_t counts[kBuckets];
    std::uint64_t total = 0;
    for (std::size_t b = 0; b < kBuckets; ++b)
      total += counts[b] = latency_[r * kBuckets + b].load(std::memory_order_relaxed);
    if (total == 0) continue;
    w.HistogramSamples(
        "kv_http_request_duration_seconds", {{"route", std::string(kRoutes[r])}}, bounds, counts,
        static_cast<double>(latency_sum_us_[r].load(std::memory_order_relaxed)) / 1e6);
  }
}

// The Raft node's and its state machine's metrics (single-group mode).
void KvServer::Impl::NodeRaftMetrics(PromWriter& w) const {
  auto st = node->GetStatus();
  auto m = node->GetMetrics();
  w.Header("kv_raft_role", "gauge", "Current role (1 for the role this node has).");
  for (auto r : {raft::Role::kFollower, raft::Role::kPreCandidate, raft::Role::kCandidate,
                 raft::Role::kLeader})
    w.Sample("kv_raft_role", {{"role", std::string(raft::RoleName(r))}},
             std::uint64_t{st.role == r ? 1u : 0u});
  w.Gauge("kv_raft_term", "Current Raft term.", std::uint64_t{st.term});
  w.Gauge("kv_raft_commit_index", "Highest log index known committed.", std::uint64_t{st.commit});
  w.Gauge("kv_raft_applied_index", "Highest log index applied to RocksDB.",
          std::uint64_t{st.applied});
  w.Gauge("kv_raft_last_index", "Last log index.", std::uint64_t{st.last_index});
  w.Gauge("kv_raft_snapshot_index", "Index of the latest snapshot.",
          std::uint64_t{st.snapshot_index});
  w.Gauge("kv_raft_has_leader", "1 when a leader is known.",
          std::uint64_t{st.leader != raft::kNoNode ? 1u : 0u});
  w.Gauge("kv_raft_storage_failed", "1 when storage failed and writes stopped.",
          std::uint64_t{st.failure.empty() ? 0u : 1u});
  w.Gauge("kv_state_machine_failed",
          "1 while the state machine cannot apply (a full disk) and retries.",
          std::uint64_t{sm->Failure().empty() ? 0u : 1u});
  w.Counter("kv_raft_leader_changes_total", "Leader changes seen by this node.", m.leader_changes);
  w.Counter("kv_raft_proposals_committed_total", "Proposals committed and applied here.",
            m.proposals_committed);
  w.Counter("kv_raft_proposals_failed_total", "Proposals that failed after being accepted.",
            m.proposals_failed);
  w.Counter("kv_raft_bytes_appended_total", "Payload bytes appended to the Raft log.",
            m.bytes_appended);
  w.Counter("kv_raft_fsyncs_total", "Log syncs (one per batch of entries).", m.fsyncs);
  w.Counter("kv_raft_snapshots_taken_total", "Snapshots written locally.", m.snapshots_taken);
  w.Counter("kv_raft_snapshots_installed_total", "Snapshots received and installed.",
            m.snapshots_installed);
  w.Counter("kv_raft_snapshots_sent_total", "Snapshot streams started to followers.",
            m.snapshots_sent);
  w.Counter("kv_raft_messages_refused_total",
            "Peer messages the Raft core refused (malformed, or impossible from an honest peer).",
            m.messages_refused);
  w.Counter("kv_raft_peer_conns_closed_total",
            "Raft connections closed because of bad input from the peer (a refused message, "
            "a malformed frame).",
            m.peer_conns_closed);
  w.Counter("kv_raft_peers_reaped_total",
            "Connections to Raft peer ids outside the membership (removed members, ids a "
            "dialer claimed) closed after NodeOptions::peer_reap_ms of silence.",
            m.peers_reaped);
  w.Gauge("kv_raft_apply_queue_bytes",
          "Bytes of committed entries waiting for the state machine (bounded by "
          "NodeOptions::max_apply_queue_bytes).",
          m.apply_queue_bytes);
  w.Counter("kv_raft_apply_pauses_total",
            "Times the apply queue reached its bound and committed entries were held back.",
            m.apply_pauses);
  w.Gauge("kv_raft_snapshot_last_duration_seconds",
          "Duration of the last snapshot taken or installed.",
          static_cast<double>(m.last_snapshot_ms) / 1000.0);
  w.Gauge("kv_raft_snapshot_prepare_seconds",
          "Time the apply thread spent freezing the state for the last snapshot taken.",
          static_cast<double>(m.last_snapshot_prepare_us) / 1e6);
  w.Gauge("kv_raft_snapshot_prepare_seconds_max",
          "The longest the apply thread spent freezing the state for one snapshot.",
          static_cast<double>(m.max_snapshot_prepare_us) / 1e6);
  static const std::vector<double> bounds = LatencyBoundsSeconds();
  w.Histogram("kv_raft_commit_latency_seconds", "Proposal to apply latency on the leader.", bounds,
              m.commit_latency, static_cast<double>(m.commit_latency_sum_us) / 1e6);
  w.Histogram("kv_raft_fsync_latency_seconds", "Latency of one log persist (write + sync).", bounds,
              m.fsync_latency, static_cast<double>(m.fsync_latency_sum_us) / 1e6);
  if (st.role == raft::Role::kLeader) {
    w.Header("kv_raft_peer_lag_entries", "gauge", "Entries the peer's log is behind the leader's.");
    for (const auto& ms : st.members)
      w.Sample("kv_raft_peer_lag_entries", {{"peer", ms.info.name}},
               std::uint64_t{st.last_index > ms.match ? st.last_index - ms.match : 0});
  }
  w.Gauge("kv_db_size_bytes", "Approximate size of the RocksDB state.",
          std::uint64_t{sm->ApproximateSizeBytes()});
  w.Gauge("kv_watchers", "Open GET /watch streams on this node.", std::uint64_t{WatchersOpen()});
}

HttpResponse KvServer::Impl::MetricsAnswer() const {
  HttpResponse res{http::status::ok, 11};
  res.set(http::field::content_type, "text/plain; version=0.0.4");
  res.body() = MetricsText();
  return res;
}

std::string KvServer::Impl::MetricsText() const {
  std::string out;
  PromWriter w(&out);
  const BuildInfo& b = GetBuildInfo();
  w.Header("kv_build_info", "gauge",
           "The version, git commit and build type of this binary (always 1).");
  w.Sample("kv_build_info",
           {{"version", std::string(b.version)},
            {"commit", std::string(b.commit)},
            {"build_type", std::string(b.build_type)}},
           std::uint64_t{1});
  ProcessMetrics(w);
  if (ranges) {
    RangesMetrics(w);
  } else {
    NodeRaftMetrics(w);
  }
  w.Gauge("kv_quota_bytes",
          "-quota-bytes: the state size above which writes are refused (0: none).",
          std::uint64_t{quota->limit()});
  w.Gauge("kv_quota_alarm", "1 while the NOSPACE alarm is raised (writes get 507).",
          std::uint64_t{quota->alarm() ? 1u : 0u});
  w.Counter("kv_quota_refused_writes_total", "Writes refused with 507 by the quota.",
            std::uint64_t{quota->refused()});
  auto hs = http->stats();
  w.Gauge("kv_http_connections", "Open HTTP connections.", std::uint64_t{hs.open});
  w.Counter("kv_http_connections_accepted_total", "HTTP connections accepted.", hs.accepted);
  w.Counter("kv_http_connections_evicted_total",
            "Idle HTTP connections closed to admit new ones at -http-max-conns.", hs.evicted);
  w.Counter("kv_http_connections_rejected_total",
            "New HTTP connections refused at -http-max-conns (none idle).", hs.rejected);
  w.Counter("kv_http_timeouts_total",
            "HTTP connections closed by a head, body, idle or write deadline.", hs.timeouts);
  w.Counter("kv_http_accept_errors_total", "Failed accepts (e.g. out of descriptors).",
            hs.accept_errors);
  w.Counter("kv_http_tls_handshake_failures_total",
            "HTTPS handshakes refused (plain HTTP, missing or untrusted client certificate).",
            hs.tls_handshake_failures);
  counters.Render(w);
  return out;
}

}  // namespace kv
