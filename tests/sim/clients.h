// Clients: a few simulated clients issuing put / get / cas against the cluster, with one
// operation outstanding each, recording a history for the linearizability checker
// (tests/lin).
//
// Writes are proposed at the node the client believes leads (a kNotLeader answer names the
// leader; the op is discarded: it never entered a log). A write completes when that node
// applies the entry at the proposed position with the proposed term; if another entry is
// applied there, the write never took effect (Log Matching) and is discarded. Gets go
// through RawNode::ReadIndex on any node (followers forward to the leader) and are served
// once the node's applied index reaches the read index. A crash of the serving node or a
// timeout leaves the operation pending: an unknown outcome.
//
// History stamps come from a counter bumped at every invoke and completion, so "A
// completed before B was invoked" is exact.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kv_history.h"
#include "kv_machine.h"
#include "lin_checker.h"
#include "raft/raw_node.h"
#include "sim_node.h"

namespace raft::sim {

class Cluster;

struct ClientOptions {
  int clients = 3;
  int keys = 3;
  double issue_chance = 0.3;  // per tick, for an idle client
  int timeout_ticks = 80;
  double get_share = 0.4;
  double cas_share = 0.3;       // the rest are puts
  double any_node_reads = 0.3;  // share of gets sent to a random node instead of the leader
};

class Clients {
 public:
  Clients(Cluster* cluster, const ClientOptions& options);

  void Tick();
  void OnApplied(const SimNode& n, const Entry& e, const KvOp* op, const lin::Output& out);
  void OnReadState(const SimNode& n, const ReadState& rs);
  void ServeReads(const SimNode& n);
  void OnCrash(NodeId id);
  // Stops issuing new operations (the liveness phase lets outstanding ones finish).
  void set_issuing(bool on) { issuing_ = on; }

  lin::History history() const { return recorder_.history(); }
  std::size_t completed() const { return completed_; }
  std::size_t issued() const { return issued_; }
  std::size_t pending_ops() const { return recorder_.pending_count(); }

 private:
  struct Outstanding {
    lin::HistoryRecorder::OpId op = 0;
    lin::Input input;
    NodeId node = kNoNode;
    std::uint64_t incarnation = 0;
    LogPosition pos;       // writes
    std::string context;   // gets
    Index read_index = 0;  // gets, once known
    std::int64_t deadline = 0;
  };
  struct Client {
    std::uint64_t id = 0;
    NodeId leader_hint = kNoNode;
    std::optional<Outstanding> out;
    std::uint64_t seq = 0;
  };

  void Issue(Client& c);
  NodeId PickNode(Client& c, bool any);
  void Finish(Client& c, const lin::Output& out);
  void Abandon(Client& c);
  lin::Tick Stamp() { return ++stamp_; }

  Cluster* cluster_;
  ClientOptions options_;
  std::vector<Client> clients_;
  lin::HistoryRecorder recorder_;
  lin::Tick stamp_ = 0;
  bool issuing_ = true;
  std::size_t completed_ = 0;
  std::size_t issued_ = 0;
};

}  // namespace raft::sim
