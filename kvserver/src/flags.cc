#include "flags.h"

#include <charconv>
#include <functional>
#include <map>

#include "http_client.h"
#include "utf8.h"

namespace kv {
namespace {

struct FlagDef {
  const char* name;
  const char* help;
  std::function<std::string(const ServerFlags&)> get;
  std::function<bool(ServerFlags&, const std::string&)> set;
  bool is_bool = false;
};

template <typename T>
bool ParseNum(const std::string& s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

#define KV_STR(field, help)                                                   \
  FlagDef {                                                                   \
#field, help, [](const ServerFlags& f) { return f.field; },                 \
        [](ServerFlags& f, const std::string& v) { f.field = v; return true; } \
  }
#define KV_NAMED_STR(flag, field, help)                       \
  FlagDef {                                                   \
    flag, help, [](const ServerFlags& f) { return f.field; }, \
        [](ServerFlags& f, const std::string& v) {            \
          f.field = v;                                        \
          return true;                                        \
        }                                                     \
  }
#define KV_NUM(flag, field, help)                                                                 \
  FlagDef {                                                                                       \
    flag, help, [](const ServerFlags& f) { return std::to_string(f.field); },                     \
        [](ServerFlags& f, const std::string& v) { return ParseNum(v, &f.field) && f.field > 0; } \
  }

const std::vector<FlagDef>& Defs() {
  static const std::vector<FlagDef> defs = {
      KV_STR(id, "node name, unique in the cluster (required)"),
      KV_STR(laddr, "HTTP listen address host:port (also advertised to the cluster)"),
      KV_STR(raddr, "Raft listen address host:port (also advertised to the cluster)"),
      KV_STR(join,
             "HTTP addresses of members to join, comma-separated, tried in turn (host:port "
             "in this node's scheme, or http://host:port, https://host:port); ignored when "
             "-data holds state"),
      KV_STR(data, "data directory (default ./data/<id>)"),
      KV_NUM("tick-ms", tick_ms, "milliseconds per Raft tick"),
      KV_NUM("heartbeat-ticks", heartbeat_ticks, "ticks between leader heartbeats"),
      KV_NUM("election-ticks", election_ticks, "election timeout in ticks (randomized up to 2x)"),
      KV_NUM("snapshot-entries", snapshot_entries, "applied entries between snapshots"),
      KV_NUM("snapshot-trailing", snapshot_trailing, "log entries kept behind a snapshot"),
      KV_NUM("max-key-bytes", max_key_bytes, "largest key accepted (413 above)"),
      KV_NUM("max-value-bytes", max_value_bytes, "largest value accepted (413 above)"),
      KV_NUM("max-list-bytes", max_list_bytes,
             "size of a listing page: keys + values, and its JSON (at least one item; 'next' "
             "continues)"),
      FlagDef{"quota-bytes",
              "size of the key-value state above which writes get 507 and the NOSPACE alarm "
              "rises (0: no quota)",
              [](const ServerFlags& f) { return std::to_string(f.quota_bytes); },
              [](ServerFlags& f, const std::string& v) { return ParseNum(v, &f.quota_bytes); }},
      KV_NUM("http-threads", http_threads, "HTTP I/O threads (event loops)"),
      KV_NUM("http-max-conns", http_max_conns,
             "open HTTP connections; at the cap a new one evicts the longest idle"),
      KV_NUM("http-max-header-bytes", http_max_header_bytes, "request line + headers (431 above)"),
      KV_NUM("http-header-timeout-ms", http_header_timeout_ms,
             "deadline for a request head once it started (408)"),
      KV_NUM("http-body-timeout-ms", http_body_timeout_ms,
             "deadline for a request body after its head (408)"),
      KV_NUM("http-idle-timeout-ms", http_idle_timeout_ms,
             "an idle keep-alive connection is closed after this"),
      KV_NUM("http-write-timeout-ms", http_write_timeout_ms,
             "a client that does not read its answers for this long is disconnected"),
      KV_NUM("http-pipeline-depth", http_pipeline_depth,
             "requests in flight per connection (answered in order)"),
      KV_NUM("request-timeout-ms", request_timeout_ms, "commit/read wait before 504"),
      FlagDef{
          "learner-timeout-ms",
          "the leader removes a learner it has not heard from for this long (an abandoned "
          "join; 0: never)",
          [](const ServerFlags& f) { return std::to_string(f.learner_timeout_ms); },
          [](ServerFlags& f, const std::string& v) { return ParseNum(v, &f.learner_timeout_ms); }},
      FlagDef{"log-level", "debug, info, warn or error",
              [](const ServerFlags& f) { return f.log_level; },
              [](ServerFlags& f, const std::string& v) {
                f.log_level = v;
                return v == "debug" || v == "info" || v == "warn" || v == "error";
              }},
      FlagDef{"log-json", "write logs as JSON lines",
              [](const ServerFlags& f) { return std::string(f.log_json ? "true" : "false"); },
              [](ServerFlags& f, const std::string& v) {
                if (v != "true" && v != "false") return false;
                f.log_json = v == "true";
                return true;
              },
              true},
      FlagDef{"cluster-id", "cluster name checked in the Raft handshake",
              [](const ServerFlags& f) { return f.cluster_id; },
              [](ServerFlags& f, const std::string& v) {
                f.cluster_id = v;
                return !v.empty();
              }},
      KV_NAMED_STR("auth-file", auth_file,
                   "HTTP credentials: lines 'TOKEN ROLE' or 'cn:NAME ROLE' (read, readwrite, "
                   "admin); every route then needs one but /health, /livez, /readyz, /metrics"),
      FlagDef{"metrics-auth", "with -auth-file: /metrics needs the read role too",
              [](const ServerFlags& f) { return std::string(f.metrics_auth ? "true" : "false"); },
              [](ServerFlags& f, const std::string& v) {
                if (v != "true" && v != "false") return false;
                f.metrics_auth = v == "true";
                return true;
              },
              true},
      KV_NAMED_STR("peer-secret-file", peer_secret_file,
                   "file holding the Raft handshake's shared secret (same on every node; never "
                   "sent over HTTP)"),
      KV_NAMED_STR("join-token-file", join_token_file,
                   "file holding the bearer token (admin role in the cluster's -auth-file) this "
                   "node presents to -join"),
      KV_NAMED_STR(
          "cert-file", cert_file,
          "PEM certificate (chain) of this node: serve HTTPS (TLS 1.3) on -laddr; also its "
          "client certificate for -join and forwarding; reloaded on SIGHUP"),
      KV_NAMED_STR("key-file", key_file, "PEM private key of -cert-file"),
      KV_NAMED_STR("trusted-ca-file", trusted_ca_file,
                   "PEM CA that client certificates (-client-cert-auth) and other nodes' HTTPS "
                   "certificates must chain to (default for the latter: the system's CAs)"),
      FlagDef{
          "client-cert-auth",
          "HTTPS: refuse clients without a certificate verified against -trusted-ca-file",
          [](const ServerFlags& f) { return std::string(f.client_cert_auth ? "true" : "false"); },
          [](ServerFlags& f, const std::string& v) {
            if (v != "true" && v != "false") return false;
            f.client_cert_auth = v == "true";
            return true;
          },
          true},
      KV_NAMED_STR("peer-cert-file", peer_cert_file,
                   "PEM certificate (chain) of this node on the Raft port (-raddr): TLS 1.3 "
                   "with mutual verification; needs -peer-key-file and -peer-trusted-ca-file; "
                   "reloaded on SIGHUP"),
      KV_NAMED_STR("peer-key-file", peer_key_file, "PEM private key of -peer-cert-file"),
      KV_NAMED_STR("peer-trusted-ca-file", peer_trusted_ca_file,
                   "PEM CA that the other nodes' Raft port certificates must chain to"),
  };
  return defs;
}

}  // namespace

raft::Result<ServerFlags> ParseServerFlags(const std::vector<std::string>& args) {
  ServerFlags f;
  std::map<std::string, const FlagDef*> by_name;
  for (const auto& d : Defs()) by_name[d.name] = &d;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "-h" || a == "-help" || a == "--help") {
      f.help = true;
      continue;
    }
    if (a == "-version" || a == "--version") {
      f.version = true;
      continue;
    }
    if (a.size() < 2 || a[0] != '-')
      return raft::Status(raft::ErrorCode::kInvalidArgument, "unexpected argument '" + a + "'");
    std::string name = a.substr(a[1] == '-' ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (name == "cluster-token" || name == "cluster-token-file")
      return raft::Status(raft::ErrorCode::kInvalidArgument,
                          std::string("flag -").append(name).append(
                              " was removed: the Raft secret and the HTTP credentials are "
                              "separate now; use -peer-secret-file (Raft handshake), -auth-file "
                              "(HTTP tokens and roles) and -join-token-file (the token -join "
                              "presents); see docs/operations.md, Authentication"));
    auto it = by_name.find(name);
    if (it == by_name.end())
      return raft::Status(raft::ErrorCode::kInvalidArgument, "unknown flag -" + name);
    const FlagDef* d = it->second;
    if (!has_value) {
      if (d->is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return raft::Status(raft::ErrorCode::kInvalidArgument, "flag -" + name + " needs a value");
      }
    }
    if (!d->set(f, value))
      return raft::Status(raft::ErrorCode::kInvalidArgument,
                          "bad value '" + value + "' for flag -" + name);
  }
  if (f.help || f.version) return f;
  if (f.id.empty()) return raft::Status(raft::ErrorCode::kInvalidArgument, "flag -id is required");
  // They travel in JSON (/join, /status): bytes JSON cannot carry would fail there, far
  // from the command line (security review F-20: an exception in the join thread).
  for (const auto& [flag, v] : {std::pair<const char*, const std::string*>{"-id", &f.id},
                                {"-laddr", &f.laddr},
                                {"-raddr", &f.raddr}}) {
    if (!ValidUtf8(*v))
      return raft::Status(raft::ErrorCode::kInvalidArgument,
                          std::string(flag).append(" must be valid UTF-8"));
  }
  std::string host;
  int port = 0;
  if (!SplitHostPort(f.laddr, &host, &port))
    return raft::Status(raft::ErrorCode::kInvalidArgument, "-laddr must be host:port");
  if (!SplitHostPort(f.raddr, &host, &port))
    return raft::Status(raft::ErrorCode::kInvalidArgument, "-raddr must be host:port");
  if (f.cert_file.empty() != f.key_file.empty())
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "-cert-file and -key-file go together (HTTPS needs both)");
  if (!f.https() && (!f.trusted_ca_file.empty() || f.client_cert_auth))
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "-trusted-ca-file and -client-cert-auth need HTTPS (-cert-file and "
                        "-key-file)");
  if (f.client_cert_auth && f.trusted_ca_file.empty())
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "-client-cert-auth needs -trusted-ca-file (the CA of the clients)");
  if (f.peer_cert_file.empty() != f.peer_key_file.empty() ||
      f.peer_cert_file.empty() != f.peer_trusted_ca_file.empty())
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "-peer-cert-file, -peer-key-file and -peer-trusted-ca-file go together "
                        "(TLS on the Raft port needs all three)");
  for (const std::string& seed : SplitJoinSeeds(f.join)) {
    if (seed.empty())
      return raft::Status(
          raft::ErrorCode::kInvalidArgument,
          std::string("-join: an empty address in the list '").append(f.join).append("'"));
    auto join = ParseHttpAddr(seed, f.https(), "-join");
    if (!join.ok()) return join.status();
    // Every node of a cluster serves the same scheme: a node learns the others' HTTP
    // addresses (host:port) from the membership and calls them in its own scheme.
    if (join->https != f.https())
      return raft::Status(raft::ErrorCode::kInvalidArgument,
                          f.https() ? "-join must be https:// when this node serves HTTPS (all "
                                      "nodes of a cluster use the same scheme)"
                                    : "-join https:// needs -cert-file and -key-file (all nodes "
                                      "of a cluster use the same scheme)");
  }
  if (f.metrics_auth && f.auth_file.empty())
    return raft::Status(raft::ErrorCode::kInvalidArgument, "-metrics-auth needs -auth-file");
  if (f.election_ticks <= f.heartbeat_ticks)
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "-election-ticks must be greater than -heartbeat-ticks");
  if (f.data.empty()) f.data = "./data/" + f.id;
  return f;
}

std::string ServerFlagsUsage() {
  ServerFlags defaults;
  std::string out =
      "usage: kvserver -id NAME [-laddr HOST:PORT] [-raddr HOST:PORT] [-join "
      "[https://]HOST:PORT[,...]]\n"
      "                [-cert-file F -key-file F [-trusted-ca-file F -client-cert-auth]]\n"
      "                [-peer-cert-file F -peer-key-file F -peer-trusted-ca-file F] [flags]\n\n"
      "A node of a strongly consistent replicated key-value store (Raft + RocksDB).\n"
      "The first node (no -join, empty -data) starts a new cluster.\n"
      "-version prints the version, git commit and build type.\n\nflags:\n";
  for (const auto& d : Defs()) {
    std::string def = d.get(defaults);
    out += "  -" + std::string(d.name);
    out.append(d.is_bool ? "" : " value");
    out += "\n      " + std::string(d.help);
    if (!def.empty()) out += " (default " + def + ")";
    out += "\n";
  }
  return out;
}

std::vector<std::string> SplitJoinSeeds(const std::string& join) {
  std::vector<std::string> out;
  if (join.empty()) return out;
  std::size_t start = 0;
  for (;;) {
    auto comma = join.find(',', start);
    std::string item = join.substr(start, comma == std::string::npos ? comma : comma - start);
    auto b = item.find_first_not_of(' ');
    auto e = item.find_last_not_of(' ');
    out.push_back(b == std::string::npos ? "" : item.substr(b, e - b + 1));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

bool SplitHostPort(const std::string& addr, std::string* host, int* port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = addr.substr(0, colon);
  std::string p = addr.substr(colon + 1);
  return ParseNum(p, port) && *port > 0 && *port < 65536;
}

}  // namespace kv
