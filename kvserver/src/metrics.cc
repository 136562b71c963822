// /metrics: Prometheus text exposition format (version 0.0.4).
#include <sstream>

#include "kv_server_impl.h"

namespace kv {
namespace {

void Gauge(std::ostringstream& o, const char* name, const char* help, double v) {
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n"
    << name << " " << v << "\n";
}
void Counter(std::ostringstream& o, const char* name, const char* help, std::uint64_t v) {
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " counter\n"
    << name << " " << v << "\n";
}
void Histogram(std::ostringstream& o, const char* name, const char* help,
               const std::uint64_t* buckets, std::uint64_t sum_us) {
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < raft::NodeMetrics::kBuckets; ++i) {
    cum += buckets[i];
    o << name << "_bucket{le=\"" << raft::NodeMetrics::kLatencyBucketsUs[i] / 1e6 << "\"} " << cum
      << "\n";
  }
  cum += buckets[raft::NodeMetrics::kBuckets];
  o << name << "_bucket{le=\"+Inf\"} " << cum << "\n";
  o << name << "_sum " << sum_us / 1e6 << "\n" << name << "_count " << cum << "\n";
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

void HttpCounters::Count(std::string_view route, std::string_view method, int code) {
  std::size_t r = kRouteCount - 1, m = kMethodCount - 1;
  for (std::size_t i = 0; i + 1 < kRouteCount; ++i)
    if (kRoutes[i] == route) r = i;
  for (std::size_t i = 0; i + 1 < kMethodCount; ++i)
    if (kMethods[i] == method) m = i;
  std::size_t c = code >= 100 && code <= 599 ? static_cast<std::size_t>(code - 100) : kCodes - 1;
  counts_[(r * kMethodCount + m) * kCodes + c].fetch_add(1, std::memory_order_relaxed);
}

std::string HttpCounters::Render() const {
  std::ostringstream o;
  o << "# HELP kv_http_requests_total HTTP requests by route, method and status code.\n"
       "# TYPE kv_http_requests_total counter\n";
  for (std::size_t r = 0; r < kRouteCount; ++r)
    for (std::size_t m = 0; m < kMethodCount; ++m)
      for (std::size_t c = 0; c < kCodes; ++c) {
        std::uint64_t n =
            counts_[(r * kMethodCount + m) * kCodes + c].load(std::memory_order_relaxed);
        if (n == 0) continue;
        o << "kv_http_requests_total{route=\"" << kRoutes[r] << "\",method=\"" << kMethods[m]
          << "\",code=\"" << c + 100 << "\"} " << n << "\n";
      }
  return o.str();
}

std::string KvServer::Impl::MetricsText() const {
  auto st = node->GetStatus();
  auto m = node->GetMetrics();
  std::ostringstream o;
  o << "# HELP kv_raft_role Current role (1 for the role this node has).\n# TYPE kv_raft_role "
       "gauge\n";
  for (auto r : {raft::Role::kFollower, raft::Role::kPreCandidate, raft::Role::kCandidate,
                 raft::Role::kLeader})
    o << "kv_raft_role{role=\"" << raft::RoleName(r) << "\"} " << (st.role == r ? 1 : 0) << "\n";
  Gauge(o, "kv_raft_term", "Current Raft term.", static_cast<double>(st.term));
  Gauge(o, "kv_raft_commit_index", "Highest log index known committed.",
        static_cast<double>(st.commit));
  Gauge(o, "kv_raft_applied_index", "Highest log index applied to RocksDB.",
        static_cast<double>(st.applied));
  Gauge(o, "kv_raft_last_index", "Last log index.", static_cast<double>(st.last_index));
  Gauge(o, "kv_raft_snapshot_index", "Index of the latest snapshot.",
        static_cast<double>(st.snapshot_index));
  Gauge(o, "kv_raft_has_leader", "1 when a leader is known.", st.leader != raft::kNoNode ? 1 : 0);
  Gauge(o, "kv_raft_storage_failed", "1 when storage failed and writes stopped.",
        st.failure.empty() ? 0 : 1);
  Counter(o, "kv_raft_leader_changes_total", "Leader changes seen by this node.", m.leader_changes);
  Counter(o, "kv_raft_proposals_committed_total", "Proposals committed and applied here.",
          m.proposals_committed);
  Counter(o, "kv_raft_proposals_failed_total", "Proposals that failed after being accepted.",
          m.proposals_failed);
  Counter(o, "kv_raft_bytes_appended_total", "Payload bytes appended to the Raft log.",
          m.bytes_appended);
  Counter(o, "kv_raft_fsyncs_total", "Log syncs (one per batch of entries).", m.fsyncs);
  Counter(o, "kv_raft_snapshots_taken_total", "Snapshots written locally.", m.snapshots_taken);
  Counter(o, "kv_raft_snapshots_installed_total", "Snapshots received and installed.",
          m.snapshots_installed);
  Counter(o, "kv_raft_snapshots_sent_total", "Snapshot streams started to followers.",
          m.snapshots_sent);
  Counter(o, "kv_raft_messages_refused_total",
          "Peer messages the Raft core refused (malformed, or impossible from an honest peer).",
          m.messages_refused);
  Counter(o, "kv_raft_peer_conns_closed_total",
          "Raft connections closed because of bad input from the peer (a refused message, "
          "a malformed frame).",
          m.peer_conns_closed);
  Gauge(o, "kv_raft_snapshot_last_duration_seconds",
        "Duration of the last snapshot taken or installed.",
        static_cast<double>(m.last_snapshot_ms) / 1000.0);
  Histogram(o, "kv_raft_commit_latency_seconds", "Proposal to apply latency on the leader.",
            m.commit_latency, m.commit_latency_sum_us);
  Histogram(o, "kv_raft_fsync_latency_seconds", "Latency of one log persist (write + sync).",
            m.fsync_latency, m.fsync_latency_sum_us);
  if (st.role == raft::Role::kLeader) {
    o << "# HELP kv_raft_peer_lag_entries Entries the peer's log is behind the leader's.\n"
         "# TYPE kv_raft_peer_lag_entries gauge\n";
    for (const auto& ms : st.members) {
      o << "kv_raft_peer_lag_entries{peer=\"" << Escape(ms.info.name) << "\"} "
        << (st.last_index > ms.match ? st.last_index - ms.match : 0) << "\n";
    }
  }
  Gauge(o, "kv_db_size_bytes", "Approximate size of the RocksDB state.",
        static_cast<double>(sm->ApproximateSizeBytes()));
  Gauge(o, "kv_quota_bytes",
        "-quota-bytes: the state size above which writes are refused (0: none).",
        static_cast<double>(quota->limit()));
  Gauge(o, "kv_quota_alarm", "1 while the NOSPACE alarm is raised (writes get 507).",
        quota->alarm() ? 1.0 : 0.0);
  Counter(o, "kv_quota_refused_writes_total", "Writes refused with 507 by the quota.",
          quota->refused());
  auto hs = http->stats();
  Gauge(o, "kv_http_connections", "Open HTTP connections.", static_cast<double>(hs.open));
  Counter(o, "kv_http_connections_accepted_total", "HTTP connections accepted.", hs.accepted);
  Counter(o, "kv_http_connections_evicted_total",
          "Idle HTTP connections closed to admit new ones at -http-max-conns.", hs.evicted);
  Counter(o, "kv_http_connections_rejected_total",
          "New HTTP connections refused at -http-max-conns (none idle).", hs.rejected);
  Counter(o, "kv_http_timeouts_total",
          "HTTP connections closed by a head, body, idle or write deadline.", hs.timeouts);
  Counter(o, "kv_http_accept_errors_total", "Failed accepts (e.g. out of descriptors).",
          hs.accept_errors);
  Counter(o, "kv_http_tls_handshake_failures_total",
          "HTTPS handshakes refused (plain HTTP, missing or untrusted client certificate).",
          hs.tls_handshake_failures);
  o << counters.Render();
  return o.str();
}

}  // namespace kv
