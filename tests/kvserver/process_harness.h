// Real-process test harness for kvserver: starts kvserver binaries with fork/exec on
// loopback ports, talks to them over HTTP, kills and restarts them.
//
// Contract:
// - Every wait is bounded. A wait that runs out fails the current test with a message
//   naming what was awaited and the last thing observed (never hangs).
// - Each ProcessCluster owns one temporary directory (data dirs and one log file per
//   node). It is removed when the test passes and kept, with the tail of every node's
//   log printed to stderr, when the test fails (or when KV_PROCESS_KEEP=1).
// - Processes still running when their NodeProcess is destroyed are killed with SIGKILL
//   and reaped; a child also gets SIGKILL if the test binary dies (PR_SET_PDEATHSIG).
// - Thread safety: KvClient is cheap and stateless (one connection per request) and may
//   be used from any thread. NodeProcess and ProcessCluster are driven from the test's
//   main thread only (Catch2 assertions are not thread safe either).
//
// The binary is KVSERVER_BIN (a compile definition), overridable by the environment
// variable of the same name.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvtest {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// Timing flags passed to every node: short so that elections and joins take
// milliseconds, not seconds.
inline constexpr int kTickMs = 20;
inline constexpr int kElectionTicks = 10;

// Polls `cond` every `poll` until it returns true; false when `limit` ran out (cond is
// evaluated one last time at the deadline).
bool WaitUntil(Millis limit, const std::function<bool()>& cond, Millis poll = 20ms);

// A loopback TCP port in [kPortLow, kPortHigh) (below Linux's ephemeral range) that was
// free when checked by binding it, and never handed out before by this process.
std::uint16_t PickFreePort();

// Percent-encodes every byte except unreserved ones (A-Z a-z 0-9 - . _ ~); `/` too
// unless keep_slash.
std::string PercentEncode(std::string_view bytes, bool keep_slash = false);
std::string Base64Decode(std::string_view text);  // aborts the test on bad input
std::string Printable(std::string_view bytes);    // escapes non-printable bytes as \xHH

// The path of the kvserver binary under test.
std::string KvserverBinary();

struct HttpReply {
  int status = 0;  // 0: no HTTP response (refused, reset, timed out)
  std::string body;
  std::string error;  // transport error when status == 0
  std::string content_type;
  std::string retry_after;

  bool Ok() const { return status == 200; }
  // The body parsed as JSON; a discarded (is_discarded()) value when it is not JSON.
  nlohmann::json Json() const;
  // "HTTP 412 {...}" or "no response (Connection refused)", for failure messages.
  std::string Describe() const;
};

// HTTP client for one node ("host:port"). Keys and values are raw bytes; keys are
// percent-encoded here (every reserved byte, '/' included).
class KvClient {
 public:
  explicit KvClient(std::string http_addr, Millis timeout = 10s);

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
};

struct NodeSpec {
  std::string id;
  std::uint16_t http_port = 0;
  std::uint16_t raft_port = 0;
  std::filesystem::path data_dir;
  std::filesystem::path log_path;
  std::vector<std::string> extra_args;  // passed on every start, after the standard ones
  bool equals_syntax = false;           // pass flags as --flag=value instead of -flag value
};

// One kvserver process (started, stopped and restarted any number of times on the same
// ports and data directory). Output goes to spec.log_path, appended across restarts,
// each start preceded by a "==== harness: start ..." line.
class NodeProcess {
 public:
  explicit NodeProcess(NodeSpec spec);
  ~NodeProcess();
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  // Starts the process (fails the test if it is already running). `join` is the HTTP
  // address passed as -join; `more_args` are added for this start only.
  void Start(const std::optional<std::string>& join = std::nullopt,
             const std::vector<std::string>& more_args = {});
  // kill -9 and reap.
  void Kill();
  // kill -9 and reap if running; no test assertions (usable in destructors).
  void ForceStop() noexcept;
  // SIGTERM, then waits up to `limit` for the exit; returns the exit code (128 + signal
  // when killed by a signal). Fails the test (after a SIGKILL) when it does not exit.
  int Terminate(Millis limit = 20s);
  // Whether the process is running (reaps it if it exited; see last_exit()).
  bool Alive();
  // Exit code of the last exited run (128 + signal), if any.
  std::optional<int> last_exit() const { return last_exit_; }

  // Waits until GET /status answers 200. Fails with the log tail when the process exits
  // or the time runs out.
  void WaitServing(Millis limit = 20s);

  // Fetches /status as JSON (null when it does not answer 200 with JSON).
  nlohmann::json StatusJson(Millis timeout = 2s) const;

  std::string LogTail(std::size_t max_lines = 60) const;
  std::string Log() const;  // the whole log

  const std::string& id() const { return spec_.id; }
  std::string http_addr() const;
  std::string raft_addr() const;
  std::uint16_t http_port() const { return spec_.http_port; }
  std::uint16_t raft_port() const { return spec_.raft_port; }
  const NodeSpec& spec() const { return spec_; }
  NodeSpec& mutable_spec() { return spec_; }
  KvClient Client(Millis timeout = 10s) const { return KvClient(http_addr(), timeout); }
  int starts() const { return starts_; }

 private:
  std::vector<std::string> Args(const std::optional<std::string>& join,
                                const std::vector<std::string>& more_args) const;
  void Reap(int wait_status) noexcept;

  NodeSpec spec_;
  pid_t pid_ = -1;
  std::optional<int> last_exit_;
  int starts_ = 0;
};

struct ClusterOptions {
  std::vector<std::string> extra_args;  // for every node
};

// A set of kvserver processes in one temporary directory: node0 bootstraps, the others
// join through node0 one at a time. Nodes are identified by their index.
class ProcessCluster {
 public:
  explicit ProcessCluster(ClusterOptions options = {});
  ~ProcessCluster();
  ProcessCluster(const ProcessCluster&) = delete;
  ProcessCluster& operator=(const ProcessCluster&) = delete;

  // Starts `n` nodes: node0 bootstraps and becomes leader; each next node joins with
  // -join <node0> and the call waits until the leader counts it as a voter.
  void Start(std::size_t n);
  // Adds a node (not started) with fresh ports and data dir; id "node<index>".
  NodeProcess& AddNode(const std::vector<std::string>& extra_args = {});

  NodeProcess& node(std::size_t i) { return *nodes_.at(i); }
  std::size_t size() const { return nodes_.size(); }
  const std::filesystem::path& root() const { return root_; }

  // Index of the running node that reports role "leader" (highest term when several);
  // waits up to `limit`, failing the test if there is none.
  std::size_t WaitLeader(Millis limit = 10s);
  // Some running node other than the leader.
  std::size_t Follower(std::size_t leader, std::size_t nth = 0);
  // Waits until the leader's /status lists exactly `voters` voters (and no learners).
  void WaitVoters(std::size_t voters, Millis limit = 20s);
  // Waits until node i has applied at least the leader's commit index (read now).
  void WaitCaughtUp(std::size_t i, Millis limit = 20s);
  // Prints the tail of every node's log to stderr.
  void DumpLogs(std::size_t max_lines = 80) const;

 private:
  ClusterOptions options_;
  std::filesystem::path root_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
};

// Members of a /status document as (id -> voter).
std::map<std::string, bool> Members(const nlohmann::json& status);
std::uint64_t JsonU64(const nlohmann::json& doc, const char* field);  // 0 when absent
// Whether a /status document says "leader" (any letter case: the spec does not fix it).
bool IsLeaderRole(const nlohmann::json& status);

// Puts and requires 200, retrying 503 (no leader yet: nothing was written) for up to
// `limit`.
void PutOk(const KvClient& client, std::string_view key, std::string_view value,
           Millis limit = 10s);
// Requires GET (linearizable unless stale) to answer 200 with `value`.
void RequireValue(const KvClient& client, std::string_view key, std::string_view value,
                  bool stale = false);

// Raw TCP helpers for malformed-input tests. Connect fails the test when refused.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Sends all bytes; false when the peer closed or reset the connection.
  bool Send(std::string_view bytes);
  // Reads until the peer closes or `limit` passes; returns what arrived.
  std::string ReadUntilClose(Millis limit);
  // Reads one HTTP response (headers, then Content-Length bytes of body), stopping early
  // when the peer closes or `limit` passes; returns what arrived.
  std::string ReadHttpResponse(Millis limit);
  // Whether the peer closed (EOF or reset) within `limit`; discards incoming data.
  bool ClosedByPeer(Millis limit);

 private:
  int fd_ = -1;
};

// Status code of a raw HTTP response ("HTTP/1.1 400 ..."), 0 when there is none.
int RawStatus(std::string_view response);

// Whether the current Catch2 test case has a failed assertion so far.
bool CurrentTestFailed();

}  // namespace kvtest
