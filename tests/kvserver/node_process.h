// One kvserver process of the real-process harness (see process_harness.h), started
// with fork/exec.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "harness_util.h"
#include "kv_client.h"

namespace kvtest {

struct NodeSpec {
  std::string id;
  std::uint16_t http_port = 0;
  std::uint16_t raft_port = 0;
  std::filesystem::path data_dir;
  std::filesystem::path log_path;
  std::vector<std::string> extra_args;  // passed on every start, after the standard ones
  std::vector<std::string> env;         // "NAME=value" added to the inherited environment
  bool equals_syntax = false;           // pass flags as --flag=value instead of -flag value
  // The node serves HTTPS (its -cert-file etc. are in extra_args): the harness's own
  // requests (WaitServing, StatusJson, Client()) use these client files.
  std::optional<ClientTls> client_tls;
  // The node runs with -auth-file: the harness's own requests carry this bearer token.
  std::string token;
};

// One kvserver process (started, stopped and restarted any number of times on the same
// ports and data directory). Output goes to spec.log_path, appended across restarts,
// each start preceded by a "==== harness: start ..." line. A process still running when
// its NodeProcess is destroyed is killed with SIGKILL and reaped; the child also gets
// SIGKILL if the test binary dies (PR_SET_PDEATHSIG). Driven from the test's main
// thread only.
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
  // Sends `signal` to the running process (fails the test if it is not running).
  void Signal(int signal);
  // Waits up to `limit` for the process to exit (after Signal); returns the exit code
  // (128 + signal), or nothing when it is still running.
  std::optional<int> WaitExit(Millis limit);
  // Whether the process is running (reaps it if it exited; see last_exit()).
  bool Alive();
  // The running process's resident set size (VmRSS in /proc/PID/status), in bytes; 0
  // when it is not running.
  std::size_t RssBytes() const;
  pid_t pid() const { return pid_; }
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
  KvClient Client(Millis timeout = 10s) const {
    return KvClient(http_addr(), timeout, spec_.client_tls, spec_.token);
  }
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

}  // namespace kvtest
