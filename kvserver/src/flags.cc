#include "flags.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string_view>

#include "cluster_id.h"
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
#define KV_BOOL(flag, field, help)                                                            \
  FlagDef {                                                                                   \
    flag, help, [](const ServerFlags& f) { return std::string(f.field ? "true" : "false"); }, \
        [](ServerFlags& f, const std::string& v) {                                            \
          if (v != "true" && v != "false") return false;                                      \
          f.field = v == "true";                                                              \
          return true;                                                                        \
        },                                                                                    \
        true                                                                                  \
  }
#define KV_NUM(flag, field, help)                                                                 \
  FlagDef {                                                                                       \
    flag, help, [](const ServerFlags& f) { return std::to_string(f.field); },                     \
        [](ServerFlags& f, const std::string& v) { return ParseNum(v, &f.field) && f.field > 0; } \
  }

const std::vector<FlagDef>& Defs() {
  static const std::vector<FlagDef> defs = {
      KV_STR(id, "node name, unique in the cluster (required)"),
      KV_STR(laddr,
             "HTTP listen address host:port (also what the cluster is given, unless "
             "-advertise-laddr)"),
      KV_STR(raddr,
             "Raft listen address host:port (also what the cluster is given, unless "
             "-advertise-raddr)"),
      KV_STR(join,
             "HTTP addresses of members to join, comma-separated, tried in turn (host:port "
             "in this node's scheme, or http://host:port, https://host:port); ignored when "
             "-data holds state"),
      KV_STR(data, "data directory (default ./data/<id>)"),
      KV_NAMED_STR("advertise-laddr", advertise_laddr,
                   "HTTP address given to the cluster and clients, host:port (default -laddr; "
                   "set it when -laddr is 0.0.0.0 or mapped)"),
      KV_NAMED_STR("advertise-raddr", advertise_raddr,
                   "Raft address given to the cluster, host:port (default -raddr)"),
      KV_NAMED_STR("config", config_file,
                   "file of 'flag = value' lines read first (then KVSERVER_<FLAG> variables, "
                   "then the command line)"),
      FlagDef{"shards",
              "ranges of the key space, each its own Raft group (1: one group, the default; "
              "2..95: ranges mode, experimental, docs/multi-raft.md; a joiner gives any "
              "value >= 2 and takes the cluster's ranges)",
              [](const ServerFlags& f) { return std::to_string(f.shards); },
              [](ServerFlags& f, const std::string& v) {
                return ParseNum(v, &f.shards) && f.shards >= 1 && f.shards <= 95;
              }},
      FlagDef{"range-max-bytes",
              "ranges mode: a range larger than this is split at its middle key (0: no "
              "automatic splits; POST /split still splits)",
              [](const ServerFlags& f) { return std::to_string(f.range_max_bytes); },
              [](ServerFlags& f, const std::string& v) { return ParseNum(v, &f.range_max_bytes); }},
      FlagDef{
          "range-max-writes",
          "ranges mode: a range applying at least this many client writes in each of "
          "10 seconds running is split where they part in halves (0: never by load, "
          "the default)",
          [](const ServerFlags& f) { return std::to_string(f.range_max_writes); },
          [](ServerFlags& f, const std::string& v) { return ParseNum(v, &f.range_max_writes); }},
      KV_NUM("tick-ms", tick_ms, "milliseconds per Raft tick"),
      KV_NUM("heartbeat-ticks", heartbeat_ticks, "ticks between leader heartbeats"),
      KV_NUM("election-ticks", election_ticks, "election timeout in ticks (randomized up to 2x)"),
      KV_NUM("snapshot-entries", snapshot_entries, "applied entries between snapshots"),
      KV_NUM("snapshot-trailing", snapshot_trailing, "log entries kept behind a snapshot"),
      KV_NUM("snapshot-catchup-bytes", snapshot_catchup_bytes,
             "log bytes the leader also keeps for followers catching up (0: none)"),
      FlagDef{
          "max-snapshot-bytes",
          "largest snapshot received from the leader; a longer stream is aborted (0: no "
          "limit)",
          [](const ServerFlags& f) { return std::to_string(f.max_snapshot_bytes); },
          [](ServerFlags& f, const std::string& v) { return ParseNum(v, &f.max_snapshot_bytes); }},
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
      KV_BOOL("force-new-cluster", force_new_cluster,
              "disaster recovery after losing a majority for good: start as the only member "
              "of the cluster, with this node's data (use for one start; others then join)"),
      KV_NUM("watch-history", watch_history,
             "log indices of change history kept for /watch; older from_index gets 410"),
      KV_NUM("watch-history-bytes", watch_history_bytes,
             "bytes of keys and values the change history may hold (with -quota-bytes, at "
             "most a quarter of it); the oldest events go first"),
      KV_STR(restore,
             "seed a NEW one-member cluster from a backup file (kvctl snapshot save); only "
             "on an empty data directory, without -join"),
      FlagDef{"log-format",
              "hclog (hashicorp/go-hclog's text, the Go service's), logfmt or json (one "
              "object per line)",
              [](const ServerFlags& f) { return f.log_format; },
              [](ServerFlags& f, const std::string& v) {
                f.log_format = v;
                return v == "hclog" || v == "logfmt" || v == "json";
              }},
      FlagDef{"log-json", "same as -log-format json",
              [](const ServerFlags&) { return std::string(); },
              [](ServerFlags& f, const std::string& v) {
                if (v != "true" && v != "false") return false;
                if (v == "true") f.log_format = "json";
                return true;
              },
              true},
      FlagDef{"cluster-id",
              "id of the cluster, checked in the Raft handshake (1-64 of A-Z a-z 0-9 . _ -; "
              "default: random at bootstrap, learned when joining, then kept in "
              "<data>/cluster-id)",
              [](const ServerFlags& f) { return f.cluster_id; },
              [](ServerFlags& f, const std::string& v) {
                f.cluster_id = v;
                return ValidClusterId(v);
              }},
      KV_NAMED_STR("auth-file", auth_file,
                   "HTTP credentials: lines 'TOKEN ROLE' or 'cn:NAME ROLE' (read, readwrite, "
                   "admin); every route then needs one but /health, /livez, /readyz, /metrics"),
      KV_BOOL("metrics-auth", metrics_auth, "with -auth-file: /metrics needs the read role too"),
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
      KV_BOOL("client-cert-auth", client_cert_auth,
              "HTTPS: refuse clients without a certificate verified against -trusted-ca-file"),
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

// One setting to apply: a flag and its value, and where it came from (for errors).
struct Setting {
  const FlagDef* def;
  std::string value;
  std::string origin;
};

std::map<std::string, const FlagDef*> DefsByName() {
  std::map<std::string, const FlagDef*> by_name;
  for (const auto& d : Defs()) by_name[d.name] = &d;
  return by_name;
}

// KVSERVER_REQUEST_TIMEOUT_MS for request-timeout-ms.
std::string EnvName(const std::string& flag) {
  std::string out = "KVSERVER_";
  for (char c : flag) out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return out;
}

std::string Trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

raft::Status BadConfig(const std::string& where, const std::string& what) {
  return raft::Status(raft::ErrorCode::kInvalidArgument,
                      std::string("config file ").append(where).append(": ").append(what));
}

// The -config file: `flag = value` lines ('_' may stand for '-' in the name), the value
// bare (to the end of the line, trimmed) or double-quoted (with \" and \\; a # comment may
// follow); lines starting with # and blank lines are skipped. A flag set twice, an
// unknown flag or `config` itself is an error naming the line.
raft::Result<std::vector<Setting>> ReadConfigFile(
    const std::string& path, const std::map<std::string, const FlagDef*>& by_name) {
  constexpr std::uintmax_t kMaxBytes = 1 << 20;
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return BadConfig(path, ec.message());
  if (size > kMaxBytes) return BadConfig(path, "larger than 1 MiB");
  std::ifstream in(path);
  if (!in) return BadConfig(path, "cannot be read");
  std::vector<Setting> out;
  std::map<std::string, int> seen;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string where = path + ":" + std::to_string(n);
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) return BadConfig(where, "expected 'flag = value'");
    std::string name = Trim(line.substr(0, eq));
    std::replace(name.begin(), name.end(), '_', '-');
    std::string value = Trim(line.substr(eq + 1));
    if (!value.empty() && value[0] == '"') {
      std::string unq;
      std::size_t i = 1;
      for (; i < value.size() && value[i] != '"'; ++i) {
        if (value[i] == '\\' && i + 1 < value.size() &&
            (value[i + 1] == '"' || value[i + 1] == '\\'))
          ++i;
        unq.push_back(value[i]);
      }
      if (i == value.size()) return BadConfig(where, "unterminated quoted value");
      std::string rest = Trim(value.substr(i + 1));
      if (!rest.empty() && rest[0] != '#')
        return BadConfig(where, "unexpected text after the quoted value");
      value = unq;
    }
    auto it = by_name.find(name);
    if (it == by_name.end() || name == "config")
      return BadConfig(where, name == "config" ? "a config file cannot name another"
                                               : "unknown flag '" + name + "'");
    if (auto [prev, fresh] = seen.emplace(name, n); !fresh)
      return BadConfig(where, std::string("'")
                                  .append(name)
                                  .append("' is already set on line ")
                                  .append(std::to_string(prev->second)));
    out.push_back({it->second, value, "config file " + where});
  }
  return out;
}

}  // namespace

Environment ProcessEnvironment() {
  Environment env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.rfind("KVSERVER_", 0) != 0) continue;
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

raft::Result<ServerFlags> ParseServerFlags(const std::vector<std::string>& args,
                                           const Environment& env) {
  ServerFlags f;
  const auto by_name = DefsByName();
  std::vector<Setting> from_args;
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
    from_args.push_back({d, value, ""});
  }
  // The environment: KVSERVER_CONFIG names the file; the others are flags.
  std::map<std::string, const FlagDef*> by_env;
  for (const auto& d : Defs())
    if (std::string_view(d.name) != "config") by_env[EnvName(d.name)] = &d;
  std::vector<Setting> from_env;
  std::string config_path;
  for (const auto& [name, value] : env) {
    if (name == "KVSERVER_CONFIG") {
      config_path = value;
    } else if (auto it = by_env.find(name); it != by_env.end()) {
      from_env.push_back({it->second, value, "environment variable " + name});
    } else if (name.rfind("KVSERVER_", 0) == 0) {
      f.warnings.push_back("environment variable " + name + " is not a kvserver flag (ignored)");
    }
  }
  for (const auto& s : from_args)
    if (std::string_view(s.def->name) == "config") config_path = s.value;
  std::vector<Setting> all;
  if (!config_path.empty()) {
    auto file = ReadConfigFile(config_path, by_name);
    if (!file.ok()) return file.status();
    all = std::move(file).value();
  }
  all.insert(all.end(), from_env.begin(), from_env.end());
  all.insert(all.end(), from_args.begin(), from_args.end());
  for (const auto& s : all) {
    if (s.def->set(f, s.value)) continue;
    std::string msg =
        std::string("bad value '").append(s.value).append("' for flag -").append(s.def->name);
    if (!s.origin.empty()) msg.append(" (").append(s.origin).append(")");
    return raft::Status(raft::ErrorCode::kInvalidArgument, msg);
  }
  f.config_file = config_path;
  if (f.help || f.version) return f;
  if (f.id.empty()) return raft::Status(raft::ErrorCode::kInvalidArgument, "flag -id is required");
  // They travel in JSON (/join, /status): bytes JSON cannot carry would fail there, far
  // from the command line (security review F-20: an exception in the join thread).
  for (const auto& [flag, v] : {std::pair<const char*, const std::string*>{"-id", &f.id},
                                {"-laddr", &f.laddr},
                                {"-raddr", &f.raddr},
                                {"-advertise-laddr", &f.advertise_laddr},
                                {"-advertise-raddr", &f.advertise_raddr}}) {
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
  // What the others are given must be dialable; a wildcard listen address needs an
  // advertised one (a lone node can do without: nobody dials it).
  struct Port {
    const char* flag;
    const std::string* listen;
    const char* advertise_flag;
    const std::string* advertise;
  };
  for (const Port& p : {Port{"-laddr", &f.laddr, "-advertise-laddr", &f.advertise_laddr},
                        Port{"-raddr", &f.raddr, "-advertise-raddr", &f.advertise_raddr}}) {
    if (p.advertise->empty()) {
      if (SplitHostPort(*p.listen, &host, &port) && IsWildcardHost(host))
        f.warnings.push_back(std::string(p.flag)
                                 .append(" ")
                                 .append(*p.listen)
                                 .append(" listens on every interface and is also what the other "
                                         "members are given, which they cannot dial: set ")
                                 .append(p.advertise_flag)
                                 .append(" (fine for a lone node)"));
      continue;
    }
    if (!SplitHostPort(*p.advertise, &host, &port))
      return raft::Status(raft::ErrorCode::kInvalidArgument,
                          std::string(p.advertise_flag).append(" must be host:port"));
    if (IsWildcardHost(host))
      return raft::Status(raft::ErrorCode::kInvalidArgument,
                          std::string(p.advertise_flag)
                              .append(" must be an address the others can dial, not ")
                              .append(host));
  }
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
      "-version prints the version, git commit and build type.\n"
      "Every flag can also come from a -config file ('flag = value' lines) or a variable\n"
      "KVSERVER_<FLAG> (KVSERVER_REQUEST_TIMEOUT_MS=100); the command line wins over the\n"
      "environment, which wins over the file.\n\nflags:\n";
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

bool IsWildcardHost(const std::string& host) {
  return host == "0.0.0.0" || host == "::" || host == "[::]" || host == "*";
}

bool SplitHostPort(const std::string& addr, std::string* host, int* port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = addr.substr(0, colon);
  std::string p = addr.substr(colon + 1);
  return ParseNum(p, port) && *port > 0 && *port < 65536;
}

}  // namespace kv
