// A set of kvserver processes for the real-process harness (see process_harness.h).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "harness_util.h"
#include "node_process.h"

namespace kvtest {

struct ClusterOptions {
  std::vector<std::string> extra_args;  // for every node
};

// A set of kvserver processes in one temporary directory: node0 bootstraps, the others
// join through node0 one at a time. Nodes are identified by their index. The directory
// (data dirs and one log file per node) is removed when the test passes and kept, with
// the tail of every node's log printed to stderr, when it fails (or KV_PROCESS_KEEP=1).
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
  // Adds and starts `n` nodes that join through `via` (an HTTP address) one at a time,
  // each awaited as a voter of a cluster that had `voters_before` voters, then caught up.
  // Returns their indices.
  std::vector<std::size_t> AddJoiners(const std::string& via, std::size_t n,
                                      std::size_t voters_before);

  // The bearer token of the harness's own requests to every node, present and future
  // (NodeSpec::token; nodes running with -auth-file).
  void set_token(const std::string& token);

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
  std::string token_;
  std::filesystem::path root_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
};

}  // namespace kvtest
