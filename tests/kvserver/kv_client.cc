// HTTP client of the real-process harness; see kv_client.h.
#include "kv_client.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace kvtest {
namespace {

using Clock = std::chrono::steady_clock;

constexpr Millis kConnectTimeout = 2s;

// No Catch2 assertion here: KvClients are built on the worker threads of the linearizability
// tests, and Catch2 v2's assertion macros are not thread-safe (TSan reports them).
std::pair<std::string, int> SplitHostPort(const std::string& addr) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) {
    throw std::invalid_argument(fmt::format("KvClient: address '{}' is not host:port", addr));
  }
  return {addr.substr(0, colon), std::stoi(addr.substr(colon + 1))};
}

}  // namespace

nlohmann::json HttpReply::Json() const { return nlohmann::json::parse(body, nullptr, false); }

std::string HttpReply::Describe() const {
  if (status == 0) return fmt::format("no response ({})", error);
  std::string shown = body.size() > 400 ? body.substr(0, 400) + "..." : body;
  return fmt::format("HTTP {} {}", status, Printable(shown));
}

KvClient::KvClient(std::string http_addr, Millis timeout, std::optional<ClientTls> tls,
                   std::string token)
    : addr_(std::move(http_addr)),
      timeout_(timeout),
      tls_(std::move(tls)),
      token_(std::move(token)) {
  auto [host, port] = SplitHostPort(addr_);
  host_ = host;
  port_ = port;
}

HttpReply KvClient::Request(const std::string& method, const std::string& target,
                            const std::string& body, const std::string& content_type,
                            const std::multimap<std::string, std::string>& headers) const {
  httplib::Client cli = tls_ ? httplib::Client(fmt::format("https://{}:{}", host_, port_),
                                               tls_->cert_file, tls_->key_file)
                             : httplib::Client(host_, port_);
  if (tls_ && !tls_->ca_file.empty()) cli.set_ca_cert_path(tls_->ca_file);
  if (tls_) cli.enable_server_certificate_verification(true);
  cli.set_url_encode(false);  // targets are encoded by the caller, byte for byte
  cli.set_connection_timeout(kConnectTimeout);
  cli.set_read_timeout(timeout_);
  cli.set_write_timeout(timeout_);
  httplib::Request req;
  req.method = method;
  req.path = target;
  req.body = body;
  for (const auto& [name, value] : headers) req.set_header(name, value);
  if (!token_.empty() && headers.count("Authorization") == 0)
    req.set_header("Authorization", std::string("Bearer ").append(token_));
  if (!content_type.empty()) req.set_header("Content-Type", content_type);
  HttpReply reply;
  auto res = cli.send(req);
  if (!res) {
    reply.error = httplib::to_string(res.error());
    return reply;
  }
  reply.status = res->status;
  reply.body = res->body;
  reply.content_type = res->get_header_value("Content-Type");
  reply.retry_after = res->get_header_value("Retry-After");
  reply.www_authenticate = res->get_header_value("WWW-Authenticate");
  reply.raft_index = res->get_header_value("X-Raft-Index");
  return reply;
}

HttpReply KvClient::Put(std::string_view key, std::string_view value,
                        std::string_view query) const {
  std::string target = "/kv/" + PercentEncode(key);
  if (!query.empty()) target.append("?").append(query);  // appends: GCC 12 -O3 -Wrestrict
  return Request("PUT", target, std::string(value), "application/octet-stream");
}

HttpReply KvClient::Get(std::string_view key, bool stale) const {
  std::string target = "/kv/" + PercentEncode(key);
  if (stale) target += "?consistency=stale";
  return Request("GET", target);
}

HttpReply KvClient::Del(std::string_view key) const {
  return Request("DELETE", "/kv/" + PercentEncode(key));
}

HttpReply KvClient::Cas(std::string_view key, std::string_view prev_value,
                        std::string_view value) const {
  return Put(key, value, "prev_value=" + PercentEncode(prev_value));
}

HttpReply KvClient::PutIfAbsent(std::string_view key, std::string_view value) const {
  return Put(key, value, "prev_exist=false");
}

HttpReply KvClient::List(std::string_view prefix, int limit,
                         const std::optional<std::string>& start_after,
                         std::string_view extra) const {
  std::string target = "/kv?prefix=" + PercentEncode(prefix);
  if (limit >= 0) target += fmt::format("&limit={}", limit);
  if (start_after) target += "&start_after=" + PercentEncode(*start_after);
  if (!extra.empty()) target.append("&").append(extra);
  return Request("GET", target);
}

HttpReply KvClient::Status() const { return Request("GET", "/status"); }
HttpReply KvClient::Metrics() const { return Request("GET", "/metrics"); }
HttpReply KvClient::Health() const { return Request("GET", "/health"); }

HttpReply KvClient::Join(const std::string& id, const std::string& raft_addr,
                         const std::string& http_addr, const std::string& token) const {
  nlohmann::json body = {{"id", id}, {"raft_addr", raft_addr}, {"http_addr", http_addr}};
  std::multimap<std::string, std::string> headers;
  if (!token.empty()) headers.emplace("Authorization", std::string("Bearer ").append(token));
  return Request("POST", "/join", body.dump(), "application/json", headers);
}

HttpReply KvClient::Leave(const std::string& id, const std::string& token) const {
  nlohmann::json body = {{"id", id}};
  std::multimap<std::string, std::string> headers;
  if (!token.empty()) headers.emplace("Authorization", std::string("Bearer ").append(token));
  return Request("POST", "/leave", body.dump(), "application/json", headers);
}

void PutOk(const KvClient& client, std::string_view key, std::string_view value, Millis limit) {
  HttpReply r;
  auto deadline = Clock::now() + limit;
  do {
    r = client.Put(key, value);
    if (r.status != 503) break;
    std::this_thread::sleep_for(50ms);
  } while (Clock::now() < deadline);
  INFO("PUT " << Printable(key) << " via " << client.addr() << ": " << r.Describe());
  REQUIRE(r.status == 200);
}

void RequireValue(const KvClient& client, std::string_view key, std::string_view value,
                  bool stale) {
  HttpReply r = client.Get(key, stale);
  INFO("GET " << Printable(key) << (stale ? " (stale)" : "") << " via " << client.addr() << ": "
              << r.Describe() << "; expected " << Printable(value));
  REQUIRE(r.status == 200);
  REQUIRE(r.body == value);
}

std::map<std::string, bool> Members(const nlohmann::json& status) {
  std::map<std::string, bool> out;
  if (!status.is_object() || !status.contains("members") || !status["members"].is_array()) {
    return out;
  }
  for (const auto& m : status["members"]) {
    if (!m.is_object()) continue;
    out[m.value("id", std::string())] = m.value("voter", false);
  }
  return out;
}

bool IsLeaderRole(const nlohmann::json& status) {
  if (!status.is_object()) return false;
  std::string role = status.value("role", std::string());
  for (auto& c : role) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return role == "leader";
}

std::uint64_t JsonU64(const nlohmann::json& doc, const char* field) {
  if (!doc.is_object() || !doc.contains(field)) return 0;
  const auto& v = doc[field];
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer())
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, v.get<std::int64_t>()));
  return 0;
}

double MetricSample(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return -1;
}

}  // namespace kvtest
