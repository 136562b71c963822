// Command-line flags of kvserver. Syntax follows the Go tool it replaces: `-name value`,
// and also `--name value`, `-name=value`, `--name=value`; booleans may omit the value.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "raft/status.h"

namespace kv {

struct ServerFlags {
  std::string id;                        // -id: this node's name (required)
  std::string laddr = "127.0.0.1:3000";  // -laddr: HTTP listen address
  std::string raddr = "127.0.0.1:4000";  // -raddr: Raft listen address
  // -join: HTTP addresses of members, comma-separated, tried in turn (host:port or
  // http(s)://host:port).
  std::string join;
  std::string data;  // -data: default ./data/<id>
  // -advertise-laddr / -advertise-raddr: the addresses the other members and clients are
  // given (in the membership, /join, /status); default: -laddr / -raddr. Needed when
  // those are 0.0.0.0 or behind NAT / container port mapping.
  std::string advertise_laddr;
  std::string advertise_raddr;
  // -config FILE (or $KVSERVER_CONFIG): settings read before the environment and argv
  // (docs/operations.md, "Configuration").
  std::string config_file;
  // -force-new-cluster: a survivor of a lost majority restarts as the only member, with
  // its data (raft::NodeOptions::force_new_cluster; docs/operations.md has the runbook).
  bool force_new_cluster = false;
  // -restore FILE: seed a new one-member cluster from a backup (raft::NodeOptions::
  // restore_from) on an empty data directory; docs/operations.md, "Backup and restore".
  std::string restore;
  int tick_ms = 50;
  int heartbeat_ticks = 1;
  int election_ticks = 5;
  std::uint64_t snapshot_entries = 10000;
  std::uint64_t snapshot_trailing = 1000;
  std::uint64_t snapshot_catchup_bytes = 64ull << 20;
  std::uint64_t max_snapshot_bytes = 64ull << 30;  // NodeOptions::max_snapshot_bytes; 0: none
  std::uint64_t max_key_bytes = 1024;
  std::uint64_t max_value_bytes = 1 << 20;
  std::uint64_t max_list_bytes = 1 << 20;  // keys + values per listing page
  // -watch-history: log indices of change history kept for GET /watch
  // (docs/state-format.md).
  std::uint64_t watch_history = 100000;
  // -watch-history-bytes: and at most about this many bytes of it (keys and values); with
  // a quota, at most a quarter of -quota-bytes.
  std::uint64_t watch_history_bytes = 256ull << 20;
  std::uint64_t quota_bytes = 8ull << 30;  // -quota-bytes: 0 = no quota (quota.h)
  // HTTP front door (docs/http-api.md, "Limits").
  int http_threads = 1;  // I/O threads
  // -shards: 1 runs one Raft group on raft::Node; 2..95 runs ranges mode on a raft::Host
  // (ranges_mode.h). Stored by a ranges-mode node (<data>/host exists): a restart stays
  // in ranges mode whatever it is given.
  int shards = 1;
  // -range-max-bytes: ranges mode splits a range past this size (0: never automatically).
  std::uint64_t range_max_bytes = 64ull << 20;
  // -range-max-writes: ... or past this many writes per second for 10 s (0: never by load).
  std::uint64_t range_max_writes = 0;
  std::uint64_t http_max_conns = 10000;
  std::uint64_t http_max_header_bytes = 16384;
  int http_header_timeout_ms = 10000;
  int http_body_timeout_ms = 30000;
  int http_idle_timeout_ms = 120000;
  int http_write_timeout_ms = 30000;
  std::uint64_t http_pipeline_depth = 16;
  int request_timeout_ms = 5000;
  // A learner the leader has not heard from for this long is removed (a join that was
  // abandoned; security review F-16). 0: never.
  std::uint64_t learner_timeout_ms = 600000;
  std::string log_level = "info";
  std::string log_format = "hclog";  // hclog, logfmt or json (logger.h); -log-json = json
  // -cluster-id: the id a bootstrapping node gives its cluster (default: 32 random hex
  // digits), or the one a node insists on (its stored id and a joined cluster's must
  // match). "": the stored, generated or learned one (cluster_id.h).
  std::string cluster_id;
  // Secrets (docs/operations.md, "Authentication"), each read from a file, never argv:
  // the HTTP credentials and their roles; the Raft handshake's secret (never sent over
  // HTTP); the admin token this node presents to -join.
  std::string auth_file;
  bool metrics_auth = false;  // /metrics needs the read role (else it is exempt)
  std::string peer_secret_file;
  std::string join_token_file;
  // HTTPS on -laddr (docs/operations.md, "HTTPS"). Also this node's client certificate
  // and trusted CA when it calls another node's HTTP port (-join, forwarding).
  std::string cert_file;
  std::string key_file;
  std::string trusted_ca_file;
  bool client_cert_auth = false;
  // TLS on the Raft port (-raddr), etcd's names: all three or none (docs/operations.md,
  // "TLS on the Raft port"). Reloaded on SIGHUP with the HTTPS files.
  std::string peer_cert_file;
  std::string peer_key_file;
  std::string peer_trusted_ca_file;
  bool help = false;
  bool version = false;  // -version: print build_info.h's VersionText and exit
  // What the caller should log once its logger is up (e.g. an unknown KVSERVER_ variable).
  std::vector<std::string> warnings;

  bool https() const { return !cert_file.empty(); }
  bool peer_tls() const { return !peer_cert_file.empty(); }
  const std::string& http_advertise() const {
    return advertise_laddr.empty() ? laddr : advertise_laddr;
  }
  const std::string& raft_advertise() const {
    return advertise_raddr.empty() ? raddr : advertise_raddr;
  }
};

// Environment variables as name/value pairs (only KVSERVER_* ones matter).
using Environment = std::vector<std::pair<std::string, std::string>>;
// This process's KVSERVER_* variables.
Environment ProcessEnvironment();

// Parses the settings, lowest precedence first: the defaults, the -config file (or
// $KVSERVER_CONFIG), the KVSERVER_<FLAG> variables of `env` (KVSERVER_REQUEST_TIMEOUT_MS
// for -request-timeout-ms), then argv. kInvalidArgument with a message naming the flag
// and where it came from on an unknown flag (in argv or the file), a missing value, a bad
// value or an unreadable file. An unknown KVSERVER_ variable is a warning. `help` is set
// for -h/-help/--help, `version` for -version/--version (the other flags are then not
// checked).
raft::Result<ServerFlags> ParseServerFlags(const std::vector<std::string>& args,
                                           const Environment& env = {});
// Every flag with its default and meaning.
std::string ServerFlagsUsage();

// The -join list split at commas, each item trimmed of spaces (an empty item stays, as
// ""); nothing for "".
std::vector<std::string> SplitJoinSeeds(const std::string& join);

// 0.0.0.0, ::, [::] (listen on every interface: nobody can dial it).
bool IsWildcardHost(const std::string& host);

// Shared by kvctl: splits "host:port"; false when malformed.
bool SplitHostPort(const std::string& addr, std::string* host, int* port);

}  // namespace kv
