// HTTP client of the real-process harness (see process_harness.h) and helpers that read
// its replies. httplib stays in kv_client.cc.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "harness_util.h"

namespace kvtest {

struct HttpReply {
  int status = 0;  // 0: no HTTP response (refused, reset, timed out)
  std::string body;
  std::string error;  // transport error when status == 0
  std::string content_type;
  std::string retry_after;
  std::string www_authenticate;
  std::string raft_index;  // the X-Raft-Index header

  bool Ok() const { return status == 200; }
  // The body parsed as JSON; a discarded (is_discarded()) value when it is not JSON.
  nlohmann::json Json() const;
  // "HTTP 412 {...}" or "no response (Connection refused)", for failure messages.
  std::string Describe() const;
};

// HTTPS on the client side: the CA the server's certificate must chain to, and a client
// certificate (both or neither of cert_file and key_file).
struct ClientTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// HTTP client for one node ("host:port"). Keys and values are raw bytes; keys are
// percent-encoded here (every reserved byte, '/' included). Cheap and stateless (one
// connection per request): usable from any thread. With `tls`, HTTPS (TLS 1.3 or 1.2, the
// server's certificate and host verified). With `token`, every request carries
// "Authorization: Bearer <token>" unless it sets its own Authorization header.
class KvClient {
 public:
  explicit KvClient(std::string http_addr, Millis timeout = 10s,
                    std::optional<ClientTls> tls = std::nullopt, std::string token = {});

  HttpReply Put(std::string_view key, std::string_view value, std::string_view query = {}) const;
  HttpReply Get(std::string_view key, bool stale = false) const;
  HttpReply Del(std::string_view key) const;
  HttpReply Cas(std::string_view key, std::string_view prev_value, std::string_view value) const;
  HttpReply PutIfAbsent(std::string_view key, std::string_view value) const;
  // GET /kv?prefix=..&limit=..&start_after=..[&extra]; limit < 0 leaves it out.
  HttpReply List(std::string_view prefix, int limit = -1,
                 const std::optional<std::string>& start_after = std::nullopt,
                 std::string_view extra = {}) const;
  HttpReply Status() const;
  HttpReply Metrics() const;
  HttpReply Health() const;
  // `token`: sent as the bearer token instead of the client's own (when not empty).
  HttpReply Join(const std::string& id, const std::string& raft_addr, const std::string& http_addr,
                 const std::string& token = {}) const;
  HttpReply Leave(const std::string& id, const std::string& token = {}) const;

  // Any request; `target` is sent as is (already encoded).
  HttpReply Request(const std::string& method, const std::string& target,
                    const std::string& body = {}, const std::string& content_type = {},
                    const std::multimap<std::string, std::string>& headers = {}) const;

  const std::string& addr() const { return addr_; }

 private:
  std::string addr_;
  std::string host_;
  int port_ = 0;
  Millis timeout_;
  std::optional<ClientTls> tls_;
  std::string token_;
};

// Puts and requires 200, retrying 503 (no leader yet: nothing was written) for up to
// `limit`.
void PutOk(const KvClient& client, std::string_view key, std::string_view value,
           Millis limit = 10s);
// Requires GET (linearizable unless stale) to answer 200 with `value`.
void RequireValue(const KvClient& client, std::string_view key, std::string_view value,
                  bool stale = false);

// Members of a /status document as (id -> voter).
std::map<std::string, bool> Members(const nlohmann::json& status);
std::uint64_t JsonU64(const nlohmann::json& doc, const char* field);  // 0 when absent
// The value of the unlabelled sample `name` in Prometheus text `text`; -1 when absent.
double MetricSample(const std::string& text, const std::string& name);
// Whether a /status document says "leader" (any letter case: the spec does not fix it).
bool IsLeaderRole(const nlohmann::json& status);

}  // namespace kvtest
