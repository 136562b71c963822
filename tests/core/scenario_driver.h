// ScenarioDriver: runs the scenario language of tests/core/testdata/*.txt against real
// RawNodes, each over its own MemoryStorage, connected by an in-memory network that only
// moves messages when told to. Deterministic: no clocks, no threads, ordered containers,
// and each node's election jitter comes from Config::seed.
//
// The language (one command per line; `N` is a node id; key=value options; lists are
// written (1,2,3)):
//
//   add-nodes COUNT voters=(..) [learners=(..)] [index=I] [empty] [pre-vote=B] [check-quorum=B]
//             [election=T] [heartbeat=T] [seed=S] [max-msg-bytes=B] [max-inflight=M]
//             [read-only=safe|lease]
//       Adds COUNT nodes with the next free ids. By default each storage is
//       bootstrapped with `voters` (one ConfChange entry per voter at term 1, committed).
//       index=I instead installs a snapshot at I (term 1) whose membership is `voters`
//       and `learners`.
//       `empty` leaves the storage empty (a node to be added by a membership change).
//   set-log N terms=(t1,t2,..) term=T [vote=V] [commit=C]
//       Scenario setup: rewrites N's persisted log after its snapshot with entries of the
//       given terms (payload "iI" for index I), sets the hard state, restarts N.
//   campaign N | tick N [COUNT] | tick-heartbeat N | tick-election N
//       tick-election ticks until N's election timer fires (its role or term changes, or
//       a non-leader suddenly has messages to send), at most 2 * election ticks (the
//       randomized timeout lies in [election, 2 * election)), and says how many it took.
//   propose N DATA | propose-conf-change N add-learner|add-voter|remove M
//   read-index N CTX | transfer-leadership N M | report-unreachable N M
//   report-snapshot N M ok|fail
//   process-ready N.. [crash-before-persist]
//       Handles one Ready per node following the durability contract of raw_node.h:
//       send rd.messages, persist snapshot/entries/hard state, then send
//       rd.messages_after_persist, apply committed entries, Advance. With
//       crash-before-persist the node sends rd.messages and crashes before step 2.
//   deliver-msgs [from=N] [to=N] [type=T] [skip=K] [count=C] [drop]
//       Delivers (or drops) queued messages, in send order, grouped by recipient.
//   stabilize [N..]   process-ready + deliver-msgs until nothing moves.
//   isolate N | cut N M | heal      links that are cut drop messages at delivery.
//   crash N | restart N             a crash loses everything not yet persisted.
//   snapshot N I | compact N I      record a snapshot at applied index I (and compact).
//   status N | raft-log N | raft-state
//
// Output: what happened, one fact per line, never an empty line. State changes of a node
// (role, term, vote, leader) are reported after every input that caused them. Two
// invariants are checked all along and reported as "VIOLATION:" lines: at most one
// leader per term, and no two nodes ever apply different entries at one index.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "raft/raw_node.h"
#include "raft/storage.h"

namespace raft::scenario {

// A parsed command line: name, positional arguments and key=value options.
struct Command {
  std::string name;
  std::vector<std::string> args;
  std::map<std::string, std::string> opts;
};

// Splits a command line into words (parenthesized lists may contain spaces).
Command ParseCommand(const std::string& line);

class ScenarioDriver {
 public:
  ScenarioDriver() = default;

  // Runs one command and returns its output ("ok" when there is nothing to say),
  // lines separated by '\n', no trailing newline. Errors in the command itself are
  // reported as "error: ..." lines; they are part of the expected output too.
  std::string Run(const std::string& line);

 private:
  struct Node {
    Config config;
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<RawNode> raw;  // null while crashed
    // The state machine: its applied index and the membership after each applied
    // change (for snapshots). Lost on crash; rebuilt from the storage's snapshot.
    Index applied = 0;
    std::map<Index, ConfState> confs;
  };
  // Observable state of a node, to report changes.
  struct Observed {
    Role role = Role::kFollower;
    Term term = 0;
    NodeId vote = kNoNode;
    NodeId lead = kNoNode;
    bool operator==(const Observed&) const = default;
  };

  void CmdAddNodes(const Command& c);
  void CmdSetLog(const Command& c);
  void CmdTick(const Command& c);
  void CmdTickElection(const Command& c);
  void CmdProposeConfChange(const Command& c);
  void CmdProcessReady(const Command& c);
  void CmdDeliver(const Command& c);
  void CmdStabilize(const Command& c);
  void CmdCrash(NodeId id);
  void CmdRestart(NodeId id);
  void CmdSnapshot(const Command& c, bool compact);
  void CmdStatus(NodeId id);
  void CmdRaftLog(NodeId id);
  void CmdRaftState();

  // Handles one Ready of `id`; returns false when there was nothing to do.
  bool ProcessReady(NodeId id, const std::string& indent, bool crash_before_persist);
  void Apply(NodeId id, const Entry& e, const std::string& indent);
  // Steps every message in `msgs` into its recipient, reporting drops.
  void Deliver(const std::vector<Message>& msgs, bool drop, const std::string& indent);
  void StartNode(NodeId id);  // (re)creates the RawNode from storage

  Node& Get(NodeId id);
  RawNode& Live(NodeId id);  // aborts the command if the node is down
  bool LinkCut(NodeId a, NodeId b) const;
  Observed Observe(NodeId id) const;
  // Runs `fn` against node `id` and reports the changes it caused.
  template <typename Fn>
  void Watch(NodeId id, const std::string& indent, Fn&& fn);
  void ReportChange(NodeId id, const Observed& before, const std::string& indent);
  void CheckInvariants(NodeId id, const std::string& indent);

  void Out(const std::string& indent, const std::string& line);

  std::map<NodeId, Node> nodes_;
  std::vector<Message> network_;  // queued messages, in send order
  std::set<std::pair<NodeId, NodeId>> cuts_;
  std::set<NodeId> isolated_;
  // Invariant bookkeeping.
  std::map<Term, NodeId> leaders_;
  std::map<Index, Entry> applied_anywhere_;
  std::string out_;
};

}  // namespace raft::scenario
