// KvServer lifecycle: start, join, serve, graceful shutdown; request forwarding.
#include "kv_server.h"

#include <httplib.h>  // the client of JoinCluster
#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "cluster_id.h"
#include "http_client.h"
#include "kv_command.h"
#include "kv_server_impl.h"
#include "ranges_backup.h"
#include "rocks_state_machine_fs.h"

namespace kv {
namespace {

// Pending connections the kernel queues before accept (the SYN backlog is capped by
// net.core.somaxconn).
constexpr int kHttpListenBacklog = 4096;
// Descriptors kept for everything but HTTP connections: RocksDB's SSTs
// (RocksOptions::max_open_files), log segments, snapshots, Raft peers.
constexpr rlim_t kReservedFds = 1200;

std::string_view RouteOf(std::string_view path) {
  if (path.substr(0, 4) == "/kv/") return "/kv/{key}";
  if (path.substr(0, 8) == "/backup/") return "/backup/{id}";
  for (std::string_view r : {"/kv", "/join", "/leave", "/transfer-leader", "/status", "/metrics",
                             "/health", "/livez", "/readyz", "/backup", "/watch", "/split"})
    if (path == r) return r;
  return "other";
}

// Raises the soft descriptor limit to the hard one; returns the soft limit in force.
rlim_t RaiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) return want.rlim_cur;
  }
  return rl.rlim_cur;
}

// Warnings for an HTTP port reachable from the network in cleartext (keys, values and
// tokens can be read and changed on the way) or without authentication (anyone who reaches
// it reads, writes and changes membership): security review F-9, issue 14.
void WarnIfExposed(const ServerFlags& flags, const std::string& host, StructuredLogger* logger) {
  std::string raft_host;
  int raft_port = 0;
  if (flags.peer_secret_file.empty() && SplitHostPort(flags.raddr, &raft_host, &raft_port) &&
      !IsLoopbackHost(raft_host))
    logger->Log(raft::LogLevel::kWarn, "kvserver",
                "the Raft port listens beyond loopback without a peer secret: anyone who reaches "
                "it can pose as a member; set -peer-secret-file",
                {{"raddr", flags.raddr}});
  if (IsLoopbackHost(host)) return;
  if (!flags.https())
    logger->Log(raft::LogLevel::kWarn, "kvserver",
                "HTTP listens beyond loopback without TLS: requests, values and tokens cross the "
                "network in cleartext; set -cert-file and -key-file to serve HTTPS",
                {{"laddr", flags.laddr}});
  if (flags.auth_file.empty())
    logger->Log(raft::LogLevel::kWarn, "kvserver",
                "HTTP listens beyond loopback without authentication: anyone who reaches it can "
                "read, write and change the membership; set -auth-file",
                {{"laddr", flags.laddr}});
}

// A -join address whose HTTPS certificate does not verify: the join ends (another seed
// would not verify either).
raft::Status CertificateRefused(const HttpAddr& addr) {
  return raft::Status(raft::ErrorCode::kInvalidArgument,
                      std::string("the HTTPS certificate of ")
                          .append(addr.ToString())
                          .append(" does not verify against -trusted-ca-file (or does not "
                                  "name that host)"));
}

// JoinCluster's first step with each seed: the cluster's id from its /status, stored and
// given to the Node when this node did not know it. "" when done; otherwise why this seed
// could not say (the caller tries the next). An error when the cluster's id is not the
// one this node must have (stored, or -cluster-id).
raft::Result<std::string> LearnClusterId(KvServer::Impl* p, httplib::Client& cli,
                                         const httplib::Headers& headers, const HttpAddr& addr) {
  auto r = cli.Get("/status", headers);
  // Refusals end the join as they do for /join itself (another seed would say the same).
  if (!r && r.error() == httplib::Error::SSLServerVerification) return CertificateRefused(addr);
  if (r && (r->status == 401 || r->status == 403))
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "join refused (" + std::to_string(r->status) + "): " + r->body);
  if (!r) return "asking for the cluster id: " + httplib::to_string(r.error());
  if (r->status != 200)
    return "asking for the cluster id: " + std::to_string(r->status) + " " + r->body;
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  std::string id;
  if (!j.is_discarded() && j.is_object() && j.contains("cluster_id") && j["cluster_id"].is_string())
    id = j["cluster_id"].get<std::string>();
  if (!ValidClusterId(id)) return std::string("its /status names no valid cluster_id");
  const std::string mine = p->ClusterId();
  const std::string& wanted = !mine.empty() ? mine : p->flags.cluster_id;
  if (!wanted.empty() && wanted != id)
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "the cluster at " + addr.ToString() + " is " + id + ", but this node " +
                            (mine.empty() ? "was given -cluster-id " : "belongs to ") + wanted);
  if (mine.empty()) {
    if (raft::Status s = WriteClusterId(p->flags.data, id); !s.ok()) return s;
    {
      std::lock_guard<std::mutex> l(p->cluster_id_mu);
      p->cluster_id = id;
    }
    if (p->node) p->node->SetClusterId(id);
    if (p->ranges) p->ranges->host().SetClusterId(id);
    p->Log(raft::LogLevel::kInfo, "learned the cluster id",
           {{"cluster_id", id}, {"via", addr.ToString()}});
  }
  return std::string();
}

}  // namespace

RocksOptions RocksOptionsOf(const ServerFlags& flags) {
  RocksOptions rocks;
  rocks.history_entries = flags.watch_history;
  // The history counts against the quota like the data: it may take a quarter of it.
  rocks.history_bytes = flags.quota_bytes == 0
                            ? flags.watch_history_bytes
                            : std::min(flags.watch_history_bytes, flags.quota_bytes / 4);
  return rocks;
}

KvServer::KvServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KvServer::~KvServer() {
  impl_->RequestStop();
  if (impl_->http) impl_->http->Stop();
  if (impl_->sm) impl_->sm->Interrupt();  // a stalled Apply must not block Stop
  if (impl_->node) impl_->node->Stop();
  if (impl_->sm) impl_->sm->Close();
  // A ranges backup in progress waits on the host: it ends before the host stops.
  impl_->backup_cancel = true;
  if (impl_->backup_thread.joinable()) impl_->backup_thread.join();
  if (impl_->ranges) impl_->ranges->Stop();
}

raft::Result<std::unique_ptr<KvServer>> KvServer::Start(const ServerFlags& flags,
                                                        StructuredLogger* logger) {
  auto impl = std::make_unique<Impl>();
  impl->flags = flags;
  impl->logger = logger;
  if (!flags.auth_file.empty()) {
    std::string warning;
    auto table = AuthTable::Load(flags.auth_file, &warning);
    if (!table.ok()) return table.status();
    if (!warning.empty())
      logger->Log(raft::LogLevel::kWarn, "kvserver", warning, {{"auth_file", flags.auth_file}});
    impl->auth = std::move(table).value();
    impl->Log(raft::LogLevel::kInfo, "HTTP authentication on",
              {{"auth_file", flags.auth_file},
               {"tokens", std::to_string(impl->auth->tokens())},
               {"common_names", std::to_string(impl->auth->common_names())},
               {"metrics_auth", flags.metrics_auth ? "true" : "false"}});
  }
  std::string peer_secret;
  if (!flags.peer_secret_file.empty()) {
    auto secret = ReadSecretFile(flags.peer_secret_file, "-peer-secret-file");
    if (!secret.ok()) return secret.status();
    peer_secret = std::move(secret).value();
  }
  if (!flags.join_token_file.empty()) {
    auto token = ReadSecretFile(flags.join_token_file, "-join-token-file");
    if (!token.ok()) return token.status();
    impl->join_token = std::move(token).value();
    if (!BearerToken(std::string("Bearer ").append(impl->join_token)))
      return raft::Status(
          raft::ErrorCode::kInvalidArgument,
          std::string("-join-token-file ")
              .append(flags.join_token_file)
              .append(" does not hold a token (A-Z a-z 0-9 - . _ ~ + /, no space)"));
    // Nodes normally share one auth file: a join token it does not make admin will be
    // refused by the member this node joins through.
    if (impl->auth && impl->auth->TokenRole(impl->join_token) != Role::kAdmin)
      impl->Log(raft::LogLevel::kWarn,
                "the -join-token-file token is not an admin token of -auth-file; a cluster with "
                "this auth file will refuse its join",
                {{"join_token_file", flags.join_token_file}});
  }
  if (!flags.restore.empty()) {
    if (!flags.join.empty() || flags.force_new_cluster)
      return raft::Status(raft::ErrorCode::kInvalidArgument,
                          "-restore seeds a new cluster with this node as its only member: "
                          "drop -join and -force-new-cluster (other nodes join it afterwards)");
    std::error_code ec;
    if (std::filesystem::exists(flags.data, ec) && !std::filesystem::is_empty(flags.data, ec))
      return raft::Status(raft::ErrorCode::kInvalidArgument,
                          "-restore: data directory " + flags.data +
                              " is not empty (restore only into an empty or new directory)");
    if (IsRangesBackup(flags.restore)) {
      // Checked as it is extracted (RangesMode::Start).
      logger->Log(raft::LogLevel::kInfo, "kvserver", "restoring from a ranges backup",
                  {{"file", flags.restore}});
    } else {
      if (flags.shards >= 2)
        return raft::Status(raft::ErrorCode::kInvalidArgument,
                            "-restore: " + flags.restore +
                                " is a single group's backup, which restores a single-group "
                                "node: drop -shards");
      auto backup = raft::VerifyBackupFile(flags.restore);
      if (!backup.ok())
        return raft::Status(backup.status().code(), "-restore: " + backup.status().message());
      logger->Log(raft::LogLevel::kInfo, "kvserver", "restoring from a backup",
                  {{"file", flags.restore},
                   {"index", std::to_string(backup->meta.index)},
                   {"term", std::to_string(backup->meta.term)},
                   {"bytes", std::to_string(backup->bytes)}});
    }
  }
  if (raft::Status s = fs::MakeDirs(flags.data); !s.ok()) return s;  // 0700 if new
  // Backups served over HTTP (http_backup.cc) do not outlive the process that wrote them.
  if (raft::Status s = impl->ClearBackups(); !s.ok()) return s;
  if (std::string warning = fs::LoosePermissions(flags.data); !warning.empty())
    logger->Log(raft::LogLevel::kWarn, "kvserver", warning, {{"dir", flags.data}});
  // Ranges mode: asked for (-shards), or this directory was started in it.
  // A ranges restore cut short (ranges_mode.cc): refused before the mode is decided (the
  // crash may have come before <data>/host, which says "ranges mode", was made).
  if (flags.restore.empty())
    if (raft::Status s = RestoreCutShort(flags.data); !s.ok()) return s;
  // A ranges backup restores a ranges node.
  const bool ranges_mode = flags.shards >= 2 || std::filesystem::exists(flags.data + "/host") ||
                           (!flags.restore.empty() && IsRangesBackup(flags.restore));
  if (ranges_mode && flags.force_new_cluster)
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "-force-new-cluster is not built in ranges mode (-shards)");
  if (!ranges_mode && std::filesystem::exists(flags.data + "/raft/log") && flags.shards >= 2)
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "-shards: " + flags.data +
                            " holds a single-group node; ranges mode starts only on an empty "
                            "directory");
  impl->fresh = !std::filesystem::exists(flags.data + (ranges_mode ? "/host" : "/raft/log"));
  // -force-new-cluster is for one start: left in place, a later restart would remove the
  // members that joined since. A marker file makes that restart fail instead.
  const std::string forced_marker = flags.data + "/force-new-cluster.done";
  if (flags.force_new_cluster && impl->fresh)
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "-force-new-cluster: " + flags.data +
                            " holds no Raft state to start a cluster from (run it on a "
                            "surviving member's data directory)");
  if (flags.force_new_cluster && std::filesystem::exists(forced_marker))
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "-force-new-cluster was already applied to " + flags.data +
                            ": remove the flag (it would remove the members that joined "
                            "since); for a new recovery, delete " +
                            forced_marker);

  // The cluster id: stored; else, on data from before ids were stored, the old default;
  // else generated by a bootstrapping node; else (a joiner) learned by JoinCluster.
  auto stored_id = ReadClusterId(flags.data);
  if (!stored_id.ok()) return stored_id.status();
  std::string cluster_id = *stored_id;
  if (!cluster_id.empty()) {
    if (!flags.cluster_id.empty() && flags.cluster_id != cluster_id)
      return raft::Status(raft::ErrorCode::kInvalidArgument,
                          "-cluster-id " + flags.cluster_id + ": " + flags.data +
                              " belongs to cluster " + cluster_id);
  } else if (flags.join.empty() || (!impl->fresh && !flags.cluster_id.empty())) {
    if (!flags.cluster_id.empty()) {
      cluster_id = flags.cluster_id;
    } else if (!impl->fresh) {
      cluster_id = kLegacyClusterId;
    } else {
      auto fresh_id = NewClusterId();
      if (!fresh_id.ok()) return fresh_id.status();
      cluster_id = *fresh_id;
    }
    if (raft::Status s = WriteClusterId(flags.data, cluster_id); !s.ok()) return s;
  }
  impl->cluster_id = cluster_id;

  if (ranges_mode) {
    if (raft::Status s = Impl::StartRanges(impl.get(), cluster_id, peer_secret); !s.ok()) return s;
  } else {
    auto sm = RocksStateMachine::Open(flags.data + "/kv", RocksOptionsOf(flags));
    if (!sm.ok()) return sm.status();
    impl->sm = std::move(sm).value();
    impl->sm->SetAppliedListener([p = impl.get()](raft::Index i) { p->OnApplied(i); });
    impl->quota = std::make_unique<Quota>(flags.quota_bytes);

    raft::NodeOptions o;
    o.self.name = flags.id;
    o.self.id = raft::NodeIdFromName(flags.id);
    o.self.raft_addr = flags.raft_advertise();
    o.self.app_data = flags.http_advertise();
    o.listen_addr = flags.raddr;
    o.data_dir = flags.data + "/raft";
    o.cluster_id = cluster_id.empty() ? kUnknownClusterId : cluster_id;  // see JoinCluster
    o.cluster_secret = peer_secret;
    o.peer_tls.cert_file = flags.peer_cert_file;
    o.peer_tls.key_file = flags.peer_key_file;
    o.peer_tls.trusted_ca_file = flags.peer_trusted_ca_file;
    o.bootstrap = impl->fresh && flags.join.empty() && flags.restore.empty();
    o.restore_from = flags.restore;
    o.force_new_cluster = flags.force_new_cluster;
    if (o.bootstrap)  // said loudly: a node meant to join but started without -join forks
      impl->Log(raft::LogLevel::kWarn,
                "no -join and an empty data directory: bootstrapping a NEW cluster with this "
                "node as its only member (to join an existing cluster instead, stop it, empty "
                "the data directory and start it with -join)",
                {{"data", flags.data}});
    o.tick_ms = flags.tick_ms;
    o.core.heartbeat_ticks = flags.heartbeat_ticks;
    o.core.election_ticks = flags.election_ticks;
    o.snapshot_entries = flags.snapshot_entries;
    o.snapshot_trailing_entries = flags.snapshot_trailing;
    o.catchup_log_bytes = flags.snapshot_catchup_bytes;
    o.max_snapshot_bytes = flags.max_snapshot_bytes;
    o.logger = logger;
    auto node = raft::Node::Start(o, impl->sm.get());
    if (!node.ok()) return node.status();
    impl->node = std::move(node).value();
    if (!flags.join.empty()) {
      // A joiner stopped before its join completed has Raft state but is no voter: one
      // that received nothing yet (before it learned the cluster id, say), or a learner
      // still catching up. It asks again. A removed member (data, not in its own
      // configuration) does not: it stays out, as before.
      const raft::NodeStatusInfo st = impl->node->GetStatus();
      bool voter = false, learner = false;
      for (const auto& m : st.members) {
        if (m.info.id != st.id) continue;
        voter = m.voter;
        learner = !m.voter;
      }
      const bool empty = st.last_index == 0 && st.snapshot_index == 0;
      impl->needs_join = impl->fresh || learner || (!voter && empty);
      if (!impl->needs_join) {
        impl->Log(raft::LogLevel::kInfo, "existing data found; -join ignored",
                  {{"data", flags.data}, {"join", flags.join}});
      } else if (!impl->fresh) {
        impl->Log(raft::LogLevel::kInfo,
                  "existing data, but this node is not a voter yet: joining again",
                  {{"data", flags.data}, {"join", flags.join}});
      }
    }
    if (impl->ClusterId().empty() && !impl->needs_join) {
      // Data from before cluster ids, started with -join but a voter already.
      if (raft::Status s = WriteClusterId(flags.data, kLegacyClusterId); !s.ok()) return s;
      {
        std::lock_guard<std::mutex> l(impl->cluster_id_mu);
        impl->cluster_id = kLegacyClusterId;
      }
      impl->node->SetClusterId(kLegacyClusterId);
    }
  }  // single-group mode
  if (flags.force_new_cluster) {
    std::ofstream marker(forced_marker);
    marker << "force_new_cluster applied; remove -force-new-cluster from the flags\n";
    marker.close();
    if (!marker || !fs::FsyncPath(forced_marker).ok())
      impl->Log(raft::LogLevel::kWarn,
                "could not write the -force-new-cluster marker; remove the flag before the "
                "next restart",
                {{"path", forced_marker}});
  }

  rlim_t fds = RaiseFdLimit();
  std::size_t max_conns = flags.http_max_conns;
  if (fds < kReservedFds + max_conns) {
    max_conns = fds > kReservedFds + 64 ? static_cast<std::size_t>(fds - kReservedFds) : 64;
    impl->Log(
        raft::LogLevel::kWarn, "descriptor limit too low for -http-max-conns; lowered",
        {{"rlimit_nofile", std::to_string(fds)}, {"http_max_conns", std::to_string(max_conns)}});
  }
  HttpServerOptions ho;
  std::string host;
  int port = 0;
  if (!SplitHostPort(flags.laddr, &host, &port))
    return raft::Status(raft::ErrorCode::kInvalidArgument, "malformed -laddr " + flags.laddr);
  ho.host = host;
  impl->listen_host = host;
  ho.port = static_cast<std::uint16_t>(port);
  ho.threads = flags.http_threads;
  ho.max_conns = max_conns;
  ho.max_header_bytes = flags.http_max_header_bytes;
  ho.max_body_bytes = flags.max_value_bytes;
  ho.pipeline_depth = flags.http_pipeline_depth;
  ho.max_inflight_bytes = std::max<std::size_t>(4u << 20, 2 * flags.max_value_bytes);
  ho.header_timeout = std::chrono::milliseconds(flags.http_header_timeout_ms);
  ho.body_timeout = std::chrono::milliseconds(flags.http_body_timeout_ms);
  ho.idle_timeout = std::chrono::milliseconds(flags.http_idle_timeout_ms);
  ho.write_timeout = std::chrono::milliseconds(flags.http_write_timeout_ms);
  ho.listen_backlog = kHttpListenBacklog;
  ho.logger = logger;
  if (flags.https()) {
    auto tls = HttpTlsContexts::Load(
        {flags.cert_file, flags.key_file, flags.trusted_ca_file, flags.client_cert_auth});
    if (!tls.ok()) return tls.status();
    impl->http_tls = std::move(tls).value();
    ho.tls = impl->http_tls.get();
  }
  WarnIfExposed(flags, host, logger);
  auto http = HttpServer::Listen(ho, impl.get());
  if (!http.ok()) return http.status();
  impl->http = std::move(http).value();
  LeaderClient::Options fo;
  fo.max_answer_bytes = flags.max_value_bytes + flags.max_list_bytes + (1u << 20);
  fo.tls = impl->http_tls.get();
  for (std::size_t i = 0; i < impl->http->threads(); ++i) {
    auto st = std::make_unique<Impl::IoState>();
    st->forward = std::make_unique<LeaderClient>(impl->http->io(i).get_executor(), fo);
    impl->io_state.push_back(std::move(st));
  }
  impl->Log(raft::LogLevel::kInfo, "http listening",
            {{"laddr", flags.laddr},
             {"scheme", flags.https() ? "https" : "http"},
             {"client_cert_auth", flags.client_cert_auth ? "true" : "false"},
             {"auth", impl->auth ? "on" : "off"}});
  return std::unique_ptr<KvServer>(new KvServer(std::move(impl)));
}

raft::Status KvServer::Serve() {
  Impl* p = impl_.get();
  std::thread joiner;
  if (p->needs_join) {
    joiner = std::thread([p] {
      raft::Status s = p->JoinCluster();
      if (!s.ok()) {
        p->Log(raft::LogLevel::kError, "join failed; shutting down", {{"error", s.ToString()}});
        if (s.code() != raft::ErrorCode::kShutdown) {  // not a signal during the join
          std::lock_guard<std::mutex> l(p->stop_mu);
          p->join_failure = s;
        }
        p->RequestStop();
      }
    });
  }
  std::thread io([p] { p->http->Run(); });
  std::thread upkeep([p] {
    if (p->ranges) {
      p->RangesUpkeepLoop();
    } else {
      p->UpkeepLoop();
    }
  });
  {
    std::unique_lock<std::mutex> l(p->stop_mu);
    p->stop_cv.wait(l, [p] { return p->stop_requested; });
  }
  // 1. HTTP: stop accepting, answer what is in flight (new requests get 503), then close.
  p->shutting_down = true;
  p->http->StopAccepting();
  p->EndWatches();  // streams have no end of their own
  const auto drain_deadline =
      std::chrono::steady_clock::now() + p->timeout() + std::chrono::seconds(2);
  while (p->http->open_connections() > 0 && std::chrono::steady_clock::now() < drain_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  p->http->Stop();
  io.join();
  if (joiner.joinable()) joiner.join();
  upkeep.join();  // a compaction in progress finishes first
  if (p->ranges) {
    // A ranges backup waits on the host: it ends (after its range in progress) first.
    p->backup_cancel = true;
    if (p->backup_thread.joinable()) p->backup_thread.join();
    // 2. Every group this node leads handed over at once (the upkeep is stopped: it
    // would balance them back), so the cluster does not wait an election timeout.
    const auto [handed, led] = p->ranges->HandOverLeaderships(std::chrono::seconds(2));
    if (led > 0)
      p->Log(
          raft::LogLevel::kInfo, "ranges' leadership handed over",
          {{"why", "shutdown"}, {"handed", std::to_string(handed)}, {"led", std::to_string(led)}});
    // 3-4. Raft, then the ranges' DBs.
    p->ranges->Stop();
  } else {
    // 2. Raft: hand leadership over, so the cluster does not wait an election timeout for
    // us.
    p->HandOverLeadership("shutdown");
    p->sm->Interrupt();  // entries not applied yet are replayed at restart
    p->node->Stop();
    // 3. RocksDB.
    p->sm->Close();
  }
  p->Log(raft::LogLevel::kInfo, "shutdown complete", {});
  std::lock_guard<std::mutex> l(p->stop_mu);
  return p->join_failure;  // a refused join exits with an error
}

void KvServer::Shutdown() {
  impl_->Log(raft::LogLevel::kInfo, "shutting down: no new HTTP requests", {});
  impl_->RequestStop();
}

raft::Status KvServer::ReloadCertificates() {
  // Both ports, each on its own: a bad file for one does not keep the other's new files
  // out. The first error is returned.
  raft::Status result;
  if (impl_->http_tls) {
    raft::Status s = impl_->http_tls->Reload();
    if (s.ok()) {
      impl_->Log(raft::LogLevel::kInfo, "HTTPS certificates reloaded; new connections use them",
                 {{"cert_file", impl_->flags.cert_file}});
    } else {
      impl_->Log(raft::LogLevel::kError,
                 "HTTPS certificate reload failed; still serving the previous ones",
                 {{"error", s.ToString()}});
      result = s;
    }
  }
  if (impl_->flags.peer_tls() && (impl_->node || impl_->ranges)) {
    // Node::ReloadTls and Host::ReloadTls log their outcome (component "raft").
    raft::Status s = impl_->node ? impl_->node->ReloadTls() : impl_->ranges->host().ReloadTls();
    if (!s.ok() && result.ok()) result = s;
  }
  return result;
}

void KvServer::Impl::RequestStop() {
  shutting_down = true;
  std::lock_guard<std::mutex> l(stop_mu);
  stop_requested = true;
  stop_cv.notify_all();
}

void KvServer::Impl::HandOverLeadership(const char* why) {
  auto st = node->GetStatus();
  if (st.role != raft::Role::kLeader) return;
  raft::NodeId best = raft::kNoNode;
  std::string best_name;
  raft::Index best_match = 0;
  for (const auto& ms : st.members) {
    if (ms.voter && ms.info.id != st.id && ms.match >= best_match) {
      best = ms.info.id;
      best_name = ms.info.name;
      best_match = ms.match;
    }
  }
  if (best == raft::kNoNode) return;
  auto s = node->TransferLeadership(best, std::chrono::seconds(2)).get();
  Log(raft::LogLevel::kInfo, "leadership handed over",
      {{"why", why}, {"to", best_name}, {"result", s.ToString()}});
}

void KvServer::Impl::ReapLearners(
    std::map<raft::NodeId, std::chrono::steady_clock::time_point>* last_heard) {
  if (flags.learner_timeout_ms == 0) return;
  const auto st = node->GetStatus();
  if (st.role != raft::Role::kLeader) {  // a new leader starts its own clock
    last_heard->clear();
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  const auto limit = std::chrono::milliseconds(flags.learner_timeout_ms);
  std::map<raft::NodeId, std::chrono::steady_clock::time_point> next;
  for (const auto& ms : st.members) {
    if (ms.voter) continue;
    auto it = last_heard->find(ms.info.id);
    const auto seen = ms.recent_active || it == last_heard->end() ? now : it->second;
    next[ms.info.id] = seen;
    if (now - seen < limit) continue;
    // Not a voter: removing it changes no quorum. A node that comes back joins again.
    raft::Result<std::string> r = node->RemoveMember(ms.info.id, timeout()).get();
    const auto silent_s = std::chrono::duration_cast<std::chrono::seconds>(now - seen).count();
    Log(r.ok() ? raft::LogLevel::kWarn : raft::LogLevel::kError,
        r.ok() ? "removed a learner the leader has not heard from (an abandoned join)"
               : "could not remove a silent learner",
        {{"node", ms.info.name},
         {"silent_s", std::to_string(silent_s)},
         {"result", r.ok() ? std::string("ok") : r.status().ToString()}});
    if (r.ok()) next.erase(ms.info.id);
  }
  *last_heard = std::move(next);
}

void KvServer::Impl::ExpireDue() {
  if (!IsLeader() || !sm->Failure().empty()) return;
  auto due = sm->DueExpiries(WallClockMs(), 1000);
  if (!due.ok()) {
    Log(raft::LogLevel::kWarn, "cannot read pending expiries",
        {{"error", due.status().ToString()}});
    return;
  }
  std::vector<std::future<raft::Result<std::string>>> pending;
  pending.reserve(due->size());
  for (auto& [key, at] : *due) {
    Command c;
    c.op = Op::kExpire;
    c.key = std::move(key);
    c.expire_at_ms = at;
    pending.push_back(node->Propose(EncodeCommand(c), timeout()));
  }
  std::size_t failed = 0;
  for (auto& f : pending)
    if (!f.get().ok()) ++failed;
  if (failed > 0)  // not lost: the expiry keys stay until an expire command applies
    Log(raft::LogLevel::kInfo, "some expiries were not committed; retried next pass",
        {{"failed", std::to_string(failed)}, {"due", std::to_string(pending.size())}});
}

void KvServer::Impl::UpkeepLoop() {
  std::uint64_t deletes_compacted = sm->DeletesApplied();
  std::map<raft::NodeId, std::chrono::steady_clock::time_point> learners_heard;
  std::unique_lock<std::mutex> l(stop_mu);
  while (!stop_cv.wait_for(l, std::chrono::seconds(1), [this] { return stop_requested; })) {
    l.unlock();
    ReapLearners(&learners_heard);
    ExpireDue();
    // A leader whose state machine stalls (full disk) cannot answer writes: let a
    // healthy member lead.
    if (!sm->Failure().empty()) HandOverLeadership("state machine cannot apply");
    if (quota->limit() == 0) {
      l.lock();
      continue;
    }
    const bool was_raised = quota->alarm();
    quota->Observe(sm->ApproximateSizeBytes());
    const std::uint64_t deletes = sm->DeletesApplied();
    if (quota->alarm() && deletes != deletes_compacted) {
      deletes_compacted = deletes;
      raft::Status s = sm->Compact();
      if (!s.ok()) Log(raft::LogLevel::kWarn, "compaction failed", {{"error", s.ToString()}});
      quota->Observe(sm->ApproximateSizeBytes());
    }
    if (quota->alarm() != was_raised) {
      Log(quota->alarm() ? raft::LogLevel::kWarn : raft::LogLevel::kInfo,
          quota->alarm() ? "quota alarm raised: writes refused (507) until space is freed"
                         : "quota alarm cleared: writes accepted again",
          {{"quota_bytes", std::to_string(quota->limit())},
           {"size_bytes", std::to_string(sm->ApproximateSizeBytes())}});
    }
    l.lock();
  }
}

std::string KvServer::Impl::Failure() const {
  if (ranges) return ranges->Failure();
  std::string f = node->GetStatus().failure;
  return f.empty() ? sm->Failure() : f;
}

std::string KvServer::Impl::ReadFailure() const {
  if (ranges) return ranges->Failure();
  // storage_failed() is one atomic load: GetStatus() only on the failure path.
  return node->storage_failed() ? Failure() : sm->Failure();
}

void KvServer::Impl::CountRefused(int code) { counters.Count("refused", "other", code); }

void KvServer::Impl::Answer(const CallPtr& call, HttpResponse res) {
  // A 500's details (RocksDB status strings, paths) go to the log, not to the client
  // (security review F-15).
  if (res.result() == http::status::internal_server_error) {
    Log(raft::LogLevel::kError, "internal error answering a request",
        {{"route", std::string(call->route)}, {"detail", res.body()}});
    res = ErrorAnswer(500, "internal error; see the node's log");
  }
  counters.Count(
      call->route, call->req.method_string(), res.result_int(),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - call->start).count());
  call->respond(std::move(res));
}

bool KvServer::Impl::LastOnConnection(const HttpRequest& req) const {
  if (req.method() != http::verb::get) return false;
  auto t = ParseTarget(req.target());
  return t && RouteOf(t->path) == "/watch";
}

void KvServer::Impl::Handle(HttpRequest req, const RequestInfo& info, Responder respond) {
  auto call = std::make_shared<Call>(std::move(req), info, std::move(respond));
  std::string_view target = call->req.target();
  auto t = ParseTarget(target);
  call->route = RouteOf(t ? t->path : target.substr(0, target.find('?')));
  if (!t) return Answer(call, ErrorAnswer(400, "malformed percent-encoding in the URL"));
  call->target = std::move(*t);
  if (!Admit(call)) return;
  if (shutting_down)
    return Answer(call, ErrorAnswer(503, "node is shutting down; retry another node"));
  if (call->route == "/kv/{key}" || call->route == "/kv") return HandleData(call);
  if (call->route == "/watch") return HandleWatch(call);
  if (ranges) return HandleRangesControl(call);
  if (call->route == "/backup" || call->route == "/backup/{id}") return HandleBackup(call);
  HandleControl(call);
}

bool KvServer::Impl::Admit(const CallPtr& call) {
  const HttpRequest& req = call->req;
  // DNS rebinding (F-10): on loopback, only our own name or an IP literal as Host.
  if (auto host = req.find(http::field::host);
      host != req.end() && !HostAllowed(host->value(), listen_host)) {
    Answer(call, ErrorAnswer(403,
                             "unexpected Host header for a server on loopback (DNS "
                             "rebinding?); use an IP address, localhost or the -laddr host"));
    return false;
  }
  // A browser page must not drive the API (CSRF, DNS rebinding: security review F-10).
  // kvserver serves no page of its own, so no browser request is same-origin: any Origin is
  // refused; non-browser clients send none.
  if (req.count(http::field::origin) != 0) {
    Answer(call, ErrorAnswer(403, "requests from browser pages (Origin) are refused"));
    return false;
  }
  if (!auth) return true;
  std::optional<std::string_view> authorization;
  if (auto it = req.find(http::field::authorization); it != req.end())
    authorization = std::string_view(it->value());
  std::optional<std::string_view> cn;
  if (call->info.client_cn) cn = *call->info.client_cn;
  std::string_view path = call->target.path;
  AuthDecision d =
      Authorize(*auth, AccessFor(path, req.method_string(), flags.metrics_auth), authorization, cn);
  if (d.status == 200) return true;
  HttpResponse res = ErrorAnswer(d.status, d.message);
  if (d.status == 401)
    res.set(http::field::www_authenticate, authorization
                                               ? R"(Bearer realm="kvserver", error="invalid_token")"
                                               : R"(Bearer realm="kvserver")");
  Answer(call, std::move(res));
  return false;
}

bool KvServer::Impl::IsLeader() const { return node->role() == raft::Role::kLeader; }

std::string KvServer::Impl::LeaderHttpAddr() const {
  auto st = node->GetStatus();
  for (const auto& ms : st.members)
    if (ms.info.id == st.leader) return ms.info.app_data;
  return "";
}

void KvServer::Impl::Forward(const CallPtr& call, std::chrono::milliseconds extra_wait) {
  if (call->req.count("X-Kv-Forwarded") != 0)
    return Answer(call, ErrorAnswer(503,
                                    "this node is not the leader (request was already "
                                    "forwarded); retry"));
  IoState& io = *io_state[call->info.io_index];
  raft::NodeId leader = node->leader();
  if (leader == raft::kNoNode) return Answer(call, ErrorAnswer(503, "no leader known; retry"));
  if (leader != io.leader_cached) {
    io.leader_addr = LeaderHttpAddr();
    io.leader_cached = io.leader_addr.empty() ? raft::kNoNode : leader;
  }
  if (io.leader_addr.empty()) return Answer(call, ErrorAnswer(503, "no leader known; retry"));
  ForwardTo(call, io.leader_addr, 0, extra_wait);
}

void KvServer::Impl::ForwardTo(const CallPtr& call, const std::string& addr, std::uint64_t range,
                               std::chrono::milliseconds extra_wait) {
  if (call->req.count("X-Kv-Forwarded") != 0)
    return Answer(call, ErrorAnswer(503,
                                    "this node is not the leader (request was already "
                                    "forwarded); retry"));
  IoState& io = *io_state[call->info.io_index];
  HttpRequest out{call->req.method(), call->req.target(), 11};
  out.set("X-Kv-Forwarded", "1");
  // The range the request was routed to: a leader that routes the key elsewhere refuses.
  if (range != 0) out.set("X-Kv-Range", std::to_string(range));
  if (auto it = call->req.find(http::field::content_type); it != call->req.end())
    out.set(http::field::content_type, it->value());
  // The leader authorizes the forwarded request again, with the client's credential.
  if (auto it = call->req.find(http::field::authorization); it != call->req.end())
    out.set(http::field::authorization, it->value());
  // Ranges mode keeps the body: a leader that finds the key moved by a split answers 409
  // "wrong range", and the request is routed again from here.
  out.body() = ranges ? call->req.body() : std::move(call->req.body());
  io.forward->Send(
      addr, std::move(out), timeout() + std::chrono::seconds(1) + extra_wait,
      [this, call, addr](ForwardResult r) {
        switch (r.kind) {
          case ForwardResult::Kind::kAnswered: {
            if (ranges && r.res.result() == http::status::conflict &&
                r.res.body().find(kWrongRangeError) != std::string::npos &&
                (call->route == "/kv/{key}" || call->route == "/kv"))
              return Reroute(call, "the key's range split while the request was forwarded");
            HttpResponse res{r.res.result(), 11};
            for (auto f : {http::field::content_type, http::field::retry_after})
              if (auto it = r.res.find(f); it != r.res.end()) res.set(f, it->value());
            res.body() = std::move(r.res.body());
            return Answer(call, std::move(res));
          }
          case ForwardResult::Kind::kNotSent:
            return Answer(call, ErrorAnswer(503, r.error + "; retry"));
          case ForwardResult::Kind::kUnknown:
            return Answer(call, ErrorAnswer(504, "forwarded to the leader at " + addr + ", but " +
                                                     r.error + ": the outcome is unknown"));
        }
      });
}

void KvServer::Impl::AfterReadBarrier(const CallPtr& call, std::uint64_t range,
                                      std::function<void(const raft::Status&)> then) {
  IoState::Barriers& b = io_state[call->info.io_index]->barriers[range];
  b.waiting.push_back(std::move(then));
  if (!b.in_flight) IssueBarrier(call->info.io_index, range);
}

void KvServer::Impl::IssueBarrier(std::size_t io_index, std::uint64_t range) {
  IoState::Barriers& b = io_state[io_index]->barriers[range];
  b.in_flight = true;
  auto batch =
      std::make_shared<std::vector<std::function<void(const raft::Status&)>>>(std::move(b.waiting));
  b.waiting.clear();
  auto done = [this, io_index, range, batch](raft::Result<std::string> r) {
    boost::asio::post(http->io(io_index), [this, io_index, range, batch, s = r.status()] {
      for (auto& f : *batch) f(s);
      IoState::Barriers& b = io_state[io_index]->barriers[range];
      b.in_flight = false;
      if (!b.waiting.empty()) IssueBarrier(io_index, range);
    });
  };
  if (range == 0) {
    node->ReadBarrier(timeout(), std::move(done));
  } else {
    ranges->host().ReadBarrier(range, timeout(), std::move(done));
  }
}

raft::Status KvServer::Impl::JoinCluster() {
  // -join is a comma-separated list of members (checked by the flags), tried in turn.
  std::vector<HttpAddr> seeds;
  for (const std::string& seed : SplitJoinSeeds(flags.join)) {
    auto addr = ParseHttpAddr(seed, flags.https(), "-join");
    if (!addr.ok()) return addr.status();
    seeds.push_back(*addr);
  }
  // This node's own certificate and CA (etcd's way): the member it joins through must
  // trust the one, and its certificate must chain to the other.
  const HttpClientTls tls{flags.trusted_ca_file, flags.cert_file, flags.key_file};
  nlohmann::json body = {{"id", flags.id},
                         {"raft_addr", flags.raft_advertise()},
                         {"http_addr", flags.http_advertise()}};
  if (ranges) body["mode"] = "ranges";  // a cluster of the other mode refuses the join
  int backoff_ms = 200;
  while (!shutting_down) {
    // One pass over the seeds; a refusal (400, 401, 403, 409, 415) or a certificate that does not
    // verify ends the join (another seed would say the same); anything else tries the
    // next seed, and after the last one the pass starts again after a backoff.
    for (std::size_t i = 0; i < seeds.size() && !shutting_down; ++i) {
      const HttpAddr& addr = seeds[i];
      auto client = MakeHttpClient(addr, tls);
      if (!client.ok()) return client.status();
      httplib::Client& cli = **client;
      cli.set_connection_timeout(std::chrono::seconds(2));
      cli.set_read_timeout(std::chrono::seconds(90));
      httplib::Headers headers;
      if (!join_token.empty())
        headers.emplace("Authorization", std::string("Bearer ").append(join_token));
      // First the cluster's id: the leader starts replicating to this node before /join
      // answers, and this node's Raft port refuses every handshake until it knows it.
      auto learned = LearnClusterId(this, cli, headers, addr);
      if (!learned.ok()) return learned.status();
      std::string failure = *learned;  // why this attempt failed ("": it did not)
      if (failure.empty()) {
        auto r = cli.Post("/join", headers, body.dump(), "application/json");
        if (r && r->status == 200) {
          if (ranges) {
            if (raft::Status s = JoinRanges(addr.ToString(), r->body); !s.ok()) return s;
          }
          Log(raft::LogLevel::kInfo, "joined the cluster", {{"via", addr.ToString()}});
          return raft::Status::Ok();
        }
        if (!r && r.error() == httplib::Error::SSLServerVerification)
          return CertificateRefused(addr);
        if (r && (r->status == 400 || r->status == 401 || r->status == 403 || r->status == 409 ||
                  r->status == 415))
          return raft::Status(raft::ErrorCode::kInvalidArgument,
                              "join refused (" + std::to_string(r->status) + "): " + r->body);
        failure = r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error());
      }
      Log(raft::LogLevel::kWarn,
          i + 1 < seeds.size() ? "join attempt failed; trying the next -join address"
                               : "join attempt failed; retrying",
          {{"via", addr.ToString()}, {"error", failure}});
    }
    if (shutting_down) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 5000);
  }
  return raft::Status(raft::ErrorCode::kShutdown, "shutdown before joining");
}

}  // namespace kv
