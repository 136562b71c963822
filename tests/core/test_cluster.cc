#include "test_cluster.h"

#include <catch2/catch.hpp>

namespace raft::test {

TestCluster::TestCluster(int n, const std::function<void(Config&)>& tweak) {
  std::vector<NodeId> voters;
  for (int i = 1; i <= n; ++i) voters.push_back(static_cast<NodeId>(i));
  for (NodeId id : voters) {
    TestNode t;
    t.storage = std::make_unique<MemoryStorage>();
    REQUIRE(t.storage->Bootstrap(voters).ok());
    t.config.id = id;
    t.config.seed = 42;
    if (tweak) tweak(t.config);
    auto rn = RawNode::Create(t.config, t.storage.get());
    REQUIRE(rn.ok());
    t.node = std::move(rn).value();
    nodes_.emplace(id, std::move(t));
  }
}

void TestCluster::AddEmptyNode(NodeId id) {
  TestNode t;
  t.storage = std::make_unique<MemoryStorage>();
  t.config.id = id;
  t.config.seed = 42;
  auto rn = RawNode::Create(t.config, t.storage.get());
  REQUIRE(rn.ok());
  t.node = std::move(rn).value();
  nodes_.emplace(id, std::move(t));
}

bool TestCluster::Process(NodeId id) {
  TestNode& t = nodes_.at(id);
  if (!t.node->HasReady()) return false;
  Ready rd = t.node->GetReady();
  for (auto& m : rd.messages) queue_.push_back(m);
  if (rd.snapshot) REQUIRE(t.storage->ApplySnapshot(*rd.snapshot).ok());
  REQUIRE(t.storage->Append(rd.entries).ok());
  if (rd.hard_state) t.storage->SetHardState(*rd.hard_state);
  for (auto& m : rd.messages_after_persist) queue_.push_back(m);
  for (auto& e : rd.committed_entries) t.applied.push_back(e);
  for (auto& r : rd.read_states) t.reads.push_back(r);
  t.node->Advance(rd);
  return true;
}

void TestCluster::ProcessAll() {
  for (auto& [id, t] : nodes_) Process(id);
}

int TestCluster::Deliver() {
  std::vector<Message> q;
  q.swap(queue_);
  int n = 0;
  for (auto& m : q) {
    if (cut_.count(m.from) || cut_.count(m.to) || !nodes_.count(m.to)) continue;
    REQUIRE(nodes_.at(m.to).node->Step(m).ok());
    ++n;
  }
  return n;
}

void TestCluster::Stabilize() {
  for (int round = 0; round < 1000; ++round) {
    bool any = false;
    for (auto& [id, t] : nodes_) any |= Process(id);
    any |= Deliver() > 0;
    if (!any) return;
  }
  FAIL("cluster did not stabilize");
}

void TestCluster::Tick(NodeId id, int n) {
  for (int i = 0; i < n; ++i) nodes_.at(id).node->Tick();
}

void TestCluster::Elect(NodeId id) {
  node(id).Campaign();
  Stabilize();
}

void TestCluster::Restart(NodeId id) {
  TestNode& t = nodes_.at(id);
  t.node.reset();
  t.config.applied = t.applied.empty() ? 0 : t.applied.back().index;
  auto rn = RawNode::Create(t.config, t.storage.get());
  REQUIRE(rn.ok());
  t.node = std::move(rn).value();
}

std::vector<Message> TestCluster::Queued(MessageType type) const {
  std::vector<Message> out;
  for (const auto& m : queue_)
    if (m.type == type) out.push_back(m);
  return out;
}

std::vector<NodeId> TestCluster::ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, t] : nodes_) out.push_back(id);
  return out;
}

}  // namespace raft::test
