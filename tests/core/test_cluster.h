// TestCluster: a minimal in-memory harness for core unit tests. Each node is a
// RawNode over a MemoryStorage; GetReady/Advance follow the durability contract
// synchronously (persist, then queue after-persist messages, then apply). Messages
// wait in one queue until Deliver(). Deterministic; no threads or clocks.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "raft/raw_node.h"
#include "raft/storage.h"

namespace raft::test {

struct TestNode {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> node;
  std::vector<Entry> applied;
  std::vector<ReadState> reads;
  Config config;
};

class TestCluster {
 public:
  // Nodes 1..n, all voters, bootstrapped identically; `tweak` adjusts each config.
  explicit TestCluster(int n, const std::function<void(Config&)>& tweak = nullptr);

  RawNode& node(NodeId id) { return *nodes_.at(id).node; }
  TestNode& state(NodeId id) { return nodes_.at(id); }
  // Adds a node with empty storage (to be added by a conf change).
  void AddEmptyNode(NodeId id);

  // Handles every pending Ready of `id`; returns whether there was one.
  bool Process(NodeId id);
  void ProcessAll();
  // Delivers queued messages (except to/from cut nodes); returns how many.
  int Deliver();
  // Process + Deliver until nothing moves.
  void Stabilize();
  void Tick(NodeId id, int n = 1);
  // Ticks every node until `id` would campaign, then campaigns and stabilizes.
  void Elect(NodeId id);

  void Isolate(NodeId id) { cut_.insert(id); }
  void Heal() { cut_.clear(); }
  // Crash: drop the RawNode (nothing unpersisted survives: MemoryStorage holds only
  // what was persisted), then restart from storage.
  void Restart(NodeId id);

  std::vector<Message>& queue() { return queue_; }
  // Messages of one type queued, for assertions.
  std::vector<Message> Queued(MessageType t) const;
  std::vector<NodeId> ids() const;

 private:
  std::map<NodeId, TestNode> nodes_;
  std::vector<Message> queue_;
  std::set<NodeId> cut_;
};

}  // namespace raft::test
