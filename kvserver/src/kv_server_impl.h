// KvServer::Impl, shared by kv_server.cc (lifecycle, join), http_data.cc (/kv) and
// http_control.cc (/join, /leave, /status, /metrics, /health).
#pragma once

#include <httplib.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "flags.h"
#include "kv_server.h"
#include "logger.h"
#include "raft/node.h"
#include "rocks_state_machine.h"

namespace kv {

// HTTP request counters by route, method and code, for /metrics.
class HttpCounters {
 public:
  void Count(const std::string& route, const std::string& method, int code);
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> counts_;
};

struct KvServer::Impl {
  ServerFlags flags;
  StructuredLogger* logger = nullptr;
  std::string token;
  bool fresh = false;  // no Raft state on disk at start
  std::unique_ptr<RocksStateMachine> sm;
  std::unique_ptr<raft::Node> node;
  httplib::Server http;
  HttpCounters counters;
  std::atomic<bool> shutting_down{false};
  std::once_flag shutdown_once;

  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(flags.request_timeout_ms);
  }
  void Log(raft::LogLevel level, std::string_view msg, std::vector<raft::LogField> fields) const {
    if (logger) logger->Log(level, "kvserver", msg, fields);
  }

  void InstallRoutes();
  void InstallDataRoutes();
  void InstallControlRoutes();

  // Forwards the request to the leader (one hop). Returns false (and replies 503) when
  // no leader is known or the request was already forwarded once.
  void Forward(const httplib::Request& req, httplib::Response& res);
  bool IsLeader() const;
  // The leader's HTTP address, or "" when unknown.
  std::string LeaderHttpAddr() const;
  bool CheckToken(const httplib::Request& req, httplib::Response& res) const;

  raft::Status JoinCluster();  // startup: POST /join to flags.join until accepted

  std::string StatusJson() const;
  std::string MetricsText() const;
};

}  // namespace kv
