// KvServer lifecycle: start, join, serve, graceful shutdown; request forwarding.
#include "kv_server.h"

#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "elastic_pool.h"
#include "http_util.h"
#include "kv_server_impl.h"

namespace kv {
namespace {

// Pending connections the kernel queues before accept (the SYN backlog is capped by
// net.core.somaxconn).
constexpr int kHttpListenBacklog = 4096;

std::string RouteOf(const std::string& path) {
  if (path.rfind("/kv/", 0) == 0) return "/kv/{key}";
  for (const char* r :
       {"/kv", "/join", "/leave", "/transfer-leader", "/status", "/metrics", "/health"})
    if (path == r) return r;
  return "other";
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

KvServer::KvServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KvServer::~KvServer() {
  Shutdown();
  if (impl_->node) impl_->node->Stop();
  if (impl_->sm) impl_->sm->Close();
}

raft::Result<std::unique_ptr<KvServer>> KvServer::Start(const ServerFlags& flags,
                                                        StructuredLogger* logger) {
  auto impl = std::make_unique<Impl>();
  impl->flags = flags;
  impl->logger = logger;
  impl->token = flags.cluster_token;
  if (!flags.cluster_token_file.empty()) {
    std::ifstream f(flags.cluster_token_file);
    if (!f)
      return raft::Status(raft::ErrorCode::kInvalidArgument,
                          "cannot read -cluster-token-file " + flags.cluster_token_file);
    std::stringstream ss;
    ss << f.rdbuf();
    impl->token = Trim(ss.str());
  }
  std::error_code ec;
  std::filesystem::create_directories(flags.data, ec);
  if (ec)
    return raft::Status(raft::ErrorCode::kIOError,
                        "cannot create " + flags.data + ": " + ec.message());
  impl->fresh = !std::filesystem::exists(flags.data + "/raft/log");

  auto sm = RocksStateMachine::Open(flags.data + "/kv", RocksOptions{});
  if (!sm.ok()) return sm.status();
  impl->sm = std::move(sm).value();

  raft::NodeOptions o;
  o.self.name = flags.id;
  o.self.id = raft::NodeIdFromName(flags.id);
  o.self.raft_addr = flags.raddr;
  o.self.app_data = flags.laddr;
  o.data_dir = flags.data + "/raft";
  o.cluster_id = flags.cluster_id;
  o.cluster_secret = impl->token;
  o.bootstrap = impl->fresh && flags.join.empty();
  o.tick_ms = flags.tick_ms;
  o.core.heartbeat_ticks = flags.heartbeat_ticks;
  o.core.election_ticks = flags.election_ticks;
  o.snapshot_entries = flags.snapshot_entries;
  o.snapshot_trailing_entries = flags.snapshot_trailing;
  o.logger = logger;
  if (!impl->fresh && !flags.join.empty()) {
    impl->Log(raft::LogLevel::kInfo, "existing data found; -join ignored",
              {{"data", flags.data}, {"join", flags.join}});
  }
  auto node = raft::Node::Start(o, impl->sm.get());
  if (!node.ok()) return node.status();
  impl->node = std::move(node).value();

  Impl* p = impl.get();
  auto min_threads = static_cast<std::size_t>(flags.http_threads);
  auto max_threads = static_cast<std::size_t>(flags.http_max_threads);
  p->http.new_task_queue = [min_threads, max_threads] {
    return new ElasticPool(min_threads, max_threads);
  };
  p->http.set_payload_max_length(flags.max_value_bytes);
  p->http.set_read_timeout(std::chrono::seconds(5));
  p->http.set_write_timeout(std::chrono::seconds(5));
  p->http.set_keep_alive_max_count(100000);
  // Without it, Nagle + delayed ACK hold every reply after the first on a keep-alive
  // connection for ~40 ms (found by kvbench: 22 writes/s on one connection).
  p->http.set_tcp_nodelay(true);
  p->InstallRoutes();
  // Debian's cpp-httplib is a shared library built with a listen backlog of 5: a burst of
  // new connections (64 clients connecting at once) overflowed it, and the dropped SYNs
  // cost the clients 1-7 s of retransmission (found by kvbench: rare 3.3 s latencies and
  // timeouts). httplib hands the listening socket to the socket-options hook before it
  // binds; once bound, listen() again with a deeper backlog.
  int listen_fd = -1;
  p->http.set_socket_options([&listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd = sock;  // the last socket tried is the one that bound
  });
  std::string host;
  int port = 0;
  SplitHostPort(flags.laddr, &host, &port);
  if (!p->http.bind_to_port(host, port))
    return raft::Status(raft::ErrorCode::kIOError, "cannot listen on " + flags.laddr);
  if (listen_fd < 0 || ::listen(listen_fd, kHttpListenBacklog) != 0)
    return raft::Status(raft::ErrorCode::kIOError,
                        "cannot set the listen backlog on " + flags.laddr);
  impl->Log(raft::LogLevel::kInfo, "http listening", {{"laddr", flags.laddr}});
  return std::unique_ptr<KvServer>(new KvServer(std::move(impl)));
}

raft::Status KvServer::Serve() {
  Impl* p = impl_.get();
  std::thread joiner;
  if (p->fresh && !p->flags.join.empty()) {
    joiner = std::thread([p] {
      raft::Status s = p->JoinCluster();
      if (!s.ok()) {
        p->Log(raft::LogLevel::kError, "join failed; shutting down", {{"error", s.ToString()}});
        p->http.stop();
      }
    });
  }
  p->http.listen_after_bind();  // returns after stop(), once in-flight requests finished
  p->shutting_down = true;
  if (joiner.joinable()) joiner.join();
  // Leadership transfer, so the cluster does not wait an election timeout for us.
  auto st = p->node->GetStatus();
  if (st.role == raft::Role::kLeader) {
    raft::NodeId best = raft::kNoNode;
    raft::Index best_match = 0;
    for (const auto& ms : st.members) {
      if (ms.voter && ms.info.id != st.id && ms.match >= best_match) {
        best = ms.info.id;
        best_match = ms.match;
      }
    }
    if (best != raft::kNoNode) {
      auto s = p->node->TransferLeadership(best, std::chrono::seconds(2)).get();
      p->Log(raft::LogLevel::kInfo, "leadership handed over before shutdown",
             {{"to", std::to_string(best)}, {"result", s.ToString()}});
    }
  }
  p->node->Stop();
  p->sm->Close();
  p->Log(raft::LogLevel::kInfo, "shutdown complete", {});
  return raft::Status::Ok();
}

void KvServer::Shutdown() {
  std::call_once(impl_->shutdown_once, [this] {
    impl_->shutting_down = true;
    impl_->Log(raft::LogLevel::kInfo, "shutting down: no new HTTP requests", {});
    impl_->http.stop();
  });
}

void KvServer::Impl::InstallRoutes() {
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    counters.Count(RouteOf(req.path), req.method, res.status);
  });
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    ReplyError(res, res.status,
               res.status == 404 ? "no such route"
                                 : "request refused (HTTP " + std::to_string(res.status) + ")");
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        ReplyError(res, 500, what);
      });
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (shutting_down) {
      ReplyError(res, 503, "node is shutting down; retry another node");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!PercentDecode(req.target)) {
      ReplyError(res, 400, "malformed percent-encoding in the URL");
      return httplib::Server::HandlerResponse::Handled;
    }
    // Refuse ambiguous framing (a request-smuggling ingredient): every Content-Length
    // must be plain digits, and repeated ones must agree.
    std::size_t n = req.get_header_value_count("Content-Length");
    for (std::size_t i = 0; i < n; ++i) {
      std::string v = req.get_header_value("Content-Length", i);
      bool digits = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || v != req.get_header_value("Content-Length", 0)) {
        res.set_header("Connection", "close");
        ReplyError(res, 400, "malformed or conflicting Content-Length");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  InstallDataRoutes();
  InstallControlRoutes();
}

bool KvServer::Impl::IsLeader() const { return node->role() == raft::Role::kLeader; }

std::string KvServer::Impl::LeaderHttpAddr() const {
  auto st = node->GetStatus();
  for (const auto& ms : st.members)
    if (ms.info.id == st.leader) return ms.info.app_data;
  return "";
}

void KvServer::Impl::Forward(const httplib::Request& req, httplib::Response& res) {
  if (req.has_header("X-Kv-Forwarded"))
    return ReplyError(res, 503,
                      "this node is not the leader (request was already forwarded); retry");
  std::string addr = LeaderHttpAddr();
  std::string host;
  int port = 0;
  if (addr.empty() || !SplitHostPort(addr, &host, &port))
    return ReplyError(res, 503, "no leader known; retry");
  httplib::Client cli(host, port);
  cli.set_connection_timeout(std::chrono::seconds(2));
  cli.set_read_timeout(timeout() + std::chrono::seconds(65));  // /join may wait for catch-up
  cli.set_write_timeout(std::chrono::seconds(5));
  httplib::Request out;
  out.method = req.method;
  out.path = req.target;
  out.body = req.body;
  out.set_header("X-Kv-Forwarded", "1");
  for (const char* h : {"X-Cluster-Token", "Content-Type"})
    if (req.has_header(h)) out.set_header(h, req.get_header_value(h));
  auto r = cli.send(out);
  if (!r)
    return ReplyError(res, 503,
                      "leader at " + addr + " unreachable: " + httplib::to_string(r.error()));
  res.status = r->status;
  res.body = r->body;
  for (const char* h : {"Content-Type", "Retry-After"})
    if (r->has_header(h)) res.set_header(h, r->get_header_value(h));
}

raft::Status KvServer::Impl::JoinCluster() {
  std::string host;
  int port = 0;
  SplitHostPort(flags.join, &host, &port);
  nlohmann::json body = {{"id", flags.id}, {"raft_addr", flags.raddr}, {"http_addr", flags.laddr}};
  int backoff_ms = 200;
  while (!shutting_down) {
    httplib::Client cli(host, port);
    cli.set_connection_timeout(std::chrono::seconds(2));
    cli.set_read_timeout(std::chrono::seconds(90));
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("X-Cluster-Token", token);
    auto r = cli.Post("/join", headers, body.dump(), "application/json");
    if (r && r->status == 200) {
      Log(raft::LogLevel::kInfo, "joined the cluster", {{"via", flags.join}});
      return raft::Status::Ok();
    }
    if (r && (r->status == 400 || r->status == 401 || r->status == 409))
      return raft::Status(raft::ErrorCode::kInvalidArgument,
                          "join refused (" + std::to_string(r->status) + "): " + r->body);
    Log(raft::LogLevel::kWarn, "join attempt failed; retrying",
        {{"via", flags.join},
         {"error", r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error())}});
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 5000);
  }
  return raft::Status(raft::ErrorCode::kShutdown, "shutdown before joining");
}

}  // namespace kv
