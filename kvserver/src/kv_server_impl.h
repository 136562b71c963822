// KvServer::Impl, shared by kv_server.cc (lifecycle, join, routing, forwarding),
// http_data.cc (/kv), http_control.cc (/join, /leave, /status, /metrics, /health),
// http_probes.cc (/livez, /readyz), http_backup.cc (/backup) and http_watch.cc (/watch).
//
// Threads: HTTP handlers run on the HttpServer's I/O threads and never block; Raft
// completions arrive on the Node's io or apply thread and either answer directly (the
// Responder posts to the connection's thread) or post their continuation to the I/O thread
// of the request (IoState is touched only there).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "auth.h"
#include "flags.h"
#include "http_forward.h"
#include "http_server.h"
#include "http_tls.h"
#include "http_util.h"
#include "kv_server.h"
#include "logger.h"
#include "prom_format.h"
#include "quota.h"
#include "raft/node.h"
#include "ranges_mode.h"
#include "rocks_state_machine.h"

namespace kv {

// HTTP request counters by route, method and code, and request latency by route, for
// /metrics. Lock-free (relaxed atomics in fixed tables): counted on every answer, from
// any thread.
class HttpCounters {
 public:
  // Routes and methods outside the fixed lists count as "other"; codes outside 100..599
  // as 599. `seconds`: from the complete request to its answer (negative: not timed).
  void Count(std::string_view route, std::string_view method, int code, double seconds = -1);
  // kv_http_requests_total and kv_http_request_duration_seconds.
  void Render(PromWriter& w) const;

  static constexpr std::string_view kRoutes[] = {
      "/kv/{key}", "/kv",          "/join",   "/leave",  "/transfer-leader",
      "/status",   "/metrics",     "/health", "/livez",  "/readyz",
      "/backup",   "/backup/{id}", "/watch",  "refused", "other"};
  static constexpr std::string_view kMethods[] = {"GET", "PUT", "DELETE", "POST", "other"};

 private:
  static constexpr std::size_t kCodes = 500;  // 100..599
  static constexpr std::size_t kRouteCount = std::size(kRoutes);
  static constexpr std::size_t kMethodCount = std::size(kMethods);
  std::array<std::atomic<std::uint64_t>, kRouteCount * kMethodCount * kCodes> counts_{};
  // Per route: a count per bucket of raft::NodeMetrics::kLatencyBucketsUs (the last is
  // above every bound), and the sum in microseconds.
  static constexpr std::size_t kBuckets = raft::NodeMetrics::kBuckets + 1;
  std::array<std::atomic<std::uint64_t>, kRouteCount * kBuckets> latency_{};
  std::array<std::atomic<std::uint64_t>, kRouteCount> latency_sum_us_{};
};

// One request being served: what the route handlers and their continuations share.
struct Call {
  Call(HttpRequest r, RequestInfo i, Responder res)
      : req(std::move(r)), info(std::move(i)), respond(std::move(res)) {}
  HttpRequest req;
  Target target;
  RequestInfo info;
  Responder respond;
  std::string_view route;  // for metrics: a fixed string
  // When the request was complete and handed to the server (latency metric).
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  // Ranges mode: how many times a split sent this request back to routing (Reroute).
  int reroutes = 0;
};
using CallPtr = std::shared_ptr<Call>;

// A GET /kv page of `items` (at most `limit`; `next` set when more may follow), or 400
// for a key text mode cannot show (http_data.cc).
HttpResponse ListPageAnswer(const std::vector<std::pair<std::string, std::string>>& items,
                            std::size_t limit, bool b64, std::size_t max_list_bytes);

// The state machine's options from the flags (both modes).
RocksOptions RocksOptionsOf(const ServerFlags& flags);

// Milliseconds since the Unix epoch: TTL expiry times (docs/state-format.md).
inline std::uint64_t WallClockMs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

struct KvServer::Impl : HttpHandler {
  ServerFlags flags;
  StructuredLogger* logger = nullptr;
  // HTTP authentication (-auth-file); unset: every route is open.
  std::optional<AuthTable> auth;
  std::string join_token;   // -join-token-file: presented by JoinCluster
  std::string listen_host;  // the -laddr host (Host header checks)
  bool fresh = false;       // no Raft state on disk at start
  // -join given and this node not a voter of the configuration it recovered: fresh, or
  // a joiner stopped before its join completed (it asks again). Set before Serve.
  bool needs_join = false;
  // The cluster id (cluster_id.h): "" on a joiner until JoinCluster learns it.
  std::string ClusterId() const {
    std::lock_guard<std::mutex> l(cluster_id_mu);
    return cluster_id;
  }
  mutable std::mutex cluster_id_mu;
  std::string cluster_id;  // guarded by cluster_id_mu
  std::unique_ptr<RocksStateMachine> sm;
  std::unique_ptr<Quota> quota;  // -quota-bytes
  std::unique_ptr<raft::Node> node;
  // Ranges mode (-shards >= 2, ranges_mode.h): set instead of sm and node, which stay
  // null; the routes that need them answer 501 (kv_server_ranges.cc).
  std::unique_ptr<RangesMode> ranges;
  // HTTPS on -laddr and to other nodes (-join, forwarding) when -cert-file is set.
  std::unique_ptr<HttpTlsContexts> http_tls;
  std::unique_ptr<HttpServer> http;
  HttpCounters counters;
  std::atomic<bool> shutting_down{false};
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop_requested = false;  // guarded by stop_mu
  raft::Status join_failure;    // guarded by stop_mu: why JoinCluster gave up

  // Per I/O thread; touched only on that thread.
  struct IoState {
    std::unique_ptr<LeaderClient> forward;
    // Read barriers, per range (0: the Node): at most one in flight; requests that arrive
    // meanwhile share the next (issued after they arrived, so each still sees every write
    // acknowledged before it).
    struct Barriers {
      bool in_flight = false;
      std::vector<std::function<void(const raft::Status&)>> waiting;
    };
    std::map<std::uint64_t, Barriers> barriers;
    // The leader's HTTP address, refreshed when the leader changes.
    raft::NodeId leader_cached = raft::kNoNode;
    std::string leader_addr;
  };
  std::vector<std::unique_ptr<IoState>> io_state;

  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(flags.request_timeout_ms);
  }
  void Log(raft::LogLevel level, std::string_view msg, std::vector<raft::LogField> fields) const {
    if (logger) logger->Log(level, "kvserver", msg, fields);
  }

  // HttpHandler.
  void Handle(HttpRequest req, const RequestInfo& info, Responder respond) override;
  void CountRefused(int code) override;
  bool LastOnConnection(const HttpRequest& req) const override;  // GET /watch

  // Answers a call (any thread) and counts it.
  void Answer(const CallPtr& call, HttpResponse res);

  void HandleData(const CallPtr& call);     // http_data.cc
  void HandleControl(const CallPtr& call);  // http_control.cc
  void HandleProbe(const CallPtr& call);    // http_probes.cc: /livez, /readyz

  // http_backup.cc: POST /backup, GET and DELETE /backup/{id}.
  void HandleBackup(const CallPtr& call);
  std::string BackupDir() const;  // <data>/backups
  raft::Status ClearBackups();    // at start: backups do not outlive their process
  // Keeps `keep` and the newest others, up to a fixed count; removes the rest.
  void PruneBackups(const std::string& keep);
  std::atomic<bool> backup_running{false};  // one backup written at a time
  // Ranges mode: the backup of every range (ranges_backup.h), written on a thread of its
  // own (it waits on each range's barrier and backup in turn: WriteRangesBackupFile);
  // joined before the next backup starts, and at shutdown (backup_cancel set: it stops
  // after the range in progress) before the host stops, which would leave it waiting.
  void BackupRanges(const CallPtr& call, const std::string& id);
  HttpResponse WriteRangesBackupFile(const std::string& id, const std::string& parts_dir,
                                     bool stale);
  std::thread backup_thread;
  std::atomic<bool> backup_cancel{false};

  // http_watch.cc: GET /watch streams the change history.
  struct Watcher;
  void HandleWatch(const CallPtr& call);
  // From the state machine's apply thread: wakes every watcher (never blocks).
  void OnApplied(raft::Index applied);
  void RemoveWatcher(Watcher* w);
  void EndWatches();  // shutdown: every stream ends
  std::size_t WatchersOpen() const;
  mutable std::mutex watch_mu;
  std::vector<std::shared_ptr<Watcher>> watchers;  // guarded by watch_mu

  // Where a key's requests go: the node's one group, or in ranges mode the key's range.
  struct Shard {
    RocksStateMachine* sm = nullptr;
    std::uint64_t range = 0;  // 0: the Node
    // Ranges mode, listings: the range as routed (its span, where a listing clamps).
    RangeDescriptor routed;
  };
  // The shard of `key`; nullopt with the answer in `refusal` (ranges mode: the directory
  // or the range is not known here yet, or a forwarded request's X-Kv-Range names
  // another range), or with a refusal of status `unknown` when the request was rerouted
  // to wait for the range a split made (answered later).
  std::optional<Shard> ShardOf(const CallPtr& call, std::string_view key, HttpResponse* refusal);
  bool IsLeader(const Shard& s) const;
  void Propose(const Shard& s, std::string data, raft::Host::Callback done);
  // Forwards the call to the leader of the shard's range (Forward's answers).
  void Forward(const CallPtr& call, const Shard& s);
  void ForwardTo(const CallPtr& call, const std::string& addr, std::uint64_t range,
                 std::chrono::milliseconds extra_wait);

  // Runs `then` on the call's I/O thread once a read barrier of `range` (0: the Node's)
  // issued after this call completed (with its status).
  void AfterReadBarrier(const CallPtr& call, std::uint64_t range,
                        std::function<void(const raft::Status&)> then);
  void AfterReadBarrier(const CallPtr& call, std::function<void(const raft::Status&)> then) {
    AfterReadBarrier(call, 0, std::move(then));
  }
  void IssueBarrier(std::size_t io_index, std::uint64_t range);

  // kv_server_ranges.cc: what ranges mode does differently.
  static raft::Status StartRanges(Impl* impl, const std::string& cluster_id,
                                  const std::string& peer_secret);
  // GET /kv in ranges mode: the ranges overlapping the listing, each after its barrier,
  // in key order.
  void ListRanges(const CallPtr& call, std::size_t limit);
  // The ranges that may hold keys with `prefix` after `start_after`, in key order; nullopt
  // with a 503 in `refusal` when one is not hosted here yet (or none is known).
  std::optional<std::vector<Shard>> ShardsOverlapping(const std::string& prefix,
                                                      const std::string& start_after,
                                                      HttpResponse* refusal) const;
  // /status, /metrics, /health, /join, /leave in ranges mode; the other control routes
  // get 501.
  void HandleRangesControl(const CallPtr& call);
  // Ranges mode: a split moved the key (or a listing's span) after this request was
  // routed; it is routed again (HandleData) after a short pause, at most kMaxReroutes
  // times, then answered 503 with `why`. Any thread.
  static constexpr int kMaxReroutes = 5;
  void Reroute(const CallPtr& call, const std::string& why);
  // POST /split?key=K (ranges mode, on the meta range's leader): orders the split of K's
  // range at K and answers once the directory shows it (docs/http-api.md).
  void SplitRange(const CallPtr& call);
  // Ranges mode: false on the meta range's leader; else the request is forwarded to it
  // (waiting `extra_wait` more than a request's timeout), or answered 503 when no leader
  // is known, and true.
  bool ForwardToMetaLeader(const CallPtr& call, std::chrono::milliseconds extra_wait);
  std::string RangesStatusJson() const;
  void RangesMetrics(PromWriter& w) const;
  void RangesUpkeepLoop();
  raft::Status JoinRanges(const std::string& via, const std::string& answer);
  // POST /leave on the meta range's leader: marks the node leaving, answers once it is out.
  void LeaveRanges(const CallPtr& call, const std::string& name);

  // Forwards the call to the leader (one hop): 503 when no leader is known, the request
  // was already forwarded once, or nothing reached the leader; 504 once it was sent and
  // the answer was lost. `extra_wait`: added to the answer deadline (/join).
  void Forward(const CallPtr& call, std::chrono::milliseconds extra_wait = {});
  bool IsLeader() const;
  // The leader's HTTP address, or "" when unknown (GetStatus; control plane).
  std::string LeaderHttpAddr() const;
  // Host, Origin and credentials (auth.h); answers and returns false when refused.
  bool Admit(const CallPtr& call);

  raft::Status JoinCluster();  // startup: POST /join to flags.join until accepted
  // Upkeep, on its own thread until stop, every second: the quota (observes the size and,
  // while the alarm is raised and keys were deleted since the last pass, compacts so
  // that the deleted values free their space and the alarm can clear); a leader whose
  // state machine stalls hands leadership over.
  void UpkeepLoop();
  // On the leader (upkeep thread): removes learners not heard from for
  // -learner-timeout-ms. `last_heard` is the loop's memory: learner id -> when the
  // leader last saw it active (or first saw it).
  void ReapLearners(std::map<raft::NodeId, std::chrono::steady_clock::time_point>* last_heard);
  // On the leader (upkeep thread): proposes an expire command for each TTL key due by
  // this node's clock (up to 1000 a pass) and waits for them; a new leader finds the
  // same pending expiries in its state and carries them out.
  void ExpireDue();
  // Transfers leadership to the most caught-up voter when this node leads (waits up to
  // 2 s); `why` is logged.
  void HandOverLeadership(const char* why);
  // The node's failure (Raft log) or else the state machine's, "" when healthy.
  std::string Failure() const;
  // Why a linearizable read cannot be served here ("" when it can): the Raft log failed
  // (the node left Raft: the barrier would time out) or the state machine cannot apply
  // (the barrier would wait for it). Cheap when healthy (per read).
  std::string ReadFailure() const;
  void RequestStop();

  std::string StatusJson() const;
  std::string MetricsText() const;
  HttpResponse MetricsAnswer() const;  // 200, MetricsText in Prometheus's text format
  void NodeRaftMetrics(PromWriter& w) const;
};

}  // namespace kv
