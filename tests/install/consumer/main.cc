// A program outside the libraft tree, built against the installed package only.
// One voter bootstraps a cluster of itself, campaigns, becomes leader, proposes an
// entry and sees it come back committed. Exit code 0 means the installed library works.
#include <raft/raw_node.h>
#include <raft/storage.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr raft::NodeId kId = 1;
constexpr int kRoundsMax = 200;

bool Fail(const std::string& what) {
  std::fprintf(stderr, "consumer: FAIL: %s\n", what.c_str());
  return false;
}

// Handles one Ready in the order the durability contract in raft/raw_node.h asks for.
// A one-voter cluster has no peers, so any outgoing message is a bug here.
bool HandleReady(raft::RawNode& node, raft::MemoryStorage& storage,
                 std::vector<raft::Entry>& applied) {
  raft::Ready rd = node.GetReady();
  // 1. rd.messages may leave now.
  if (!rd.messages.empty()) return Fail("message to a peer in a one-voter cluster");
  // 2. Persist the snapshot, then the entries, then the hard state.
  if (rd.snapshot) {
    if (raft::Status s = storage.ApplySnapshot(*rd.snapshot); !s.ok()) {
      return Fail("ApplySnapshot: " + s.ToString());
    }
  }
  if (raft::Status s = storage.Append(rd.entries); !s.ok()) {
    return Fail("Append: " + s.ToString());
  }
  if (rd.hard_state) storage.SetHardState(*rd.hard_state);
  // 3. Only now may rd.messages_after_persist leave.
  if (!rd.messages_after_persist.empty()) return Fail("message to a peer after persist");
  // 4. Apply the committed entries, in order.
  for (const raft::Entry& e : rd.committed_entries) {
    if (!applied.empty() && e.index != applied.back().index + 1) {
      return Fail("committed entries out of order at index " + std::to_string(e.index));
    }
    applied.push_back(e);
  }
  // 5. Acknowledge: the core now treats everything in rd as durable and applied.
  node.Advance(rd);
  return true;
}

// Handles Ready batches (or ticks when there is none) until done() or kRoundsMax rounds.
template <typename Done>
bool RunUntil(raft::RawNode& node, raft::MemoryStorage& storage, std::vector<raft::Entry>& applied,
              Done done) {
  for (int round = 0; round < kRoundsMax && !done(); ++round) {
    if (node.HasReady()) {
      if (!HandleReady(node, storage, applied)) return false;
    } else {
      node.Tick();
    }
  }
  return done();
}

bool Run() {
  raft::MemoryStorage storage;
  if (raft::Status s = storage.Bootstrap({kId}); !s.ok()) {
    return Fail("Bootstrap: " + s.ToString());
  }
  raft::Config config;
  config.id = kId;
  raft::Result<std::unique_ptr<raft::RawNode>> created = raft::RawNode::Create(config, &storage);
  if (!created.ok()) return Fail("RawNode::Create: " + created.status().ToString());
  std::unique_ptr<raft::RawNode> node = std::move(created).value();
  std::vector<raft::Entry> applied;

  node->Campaign();
  if (!RunUntil(*node, storage, applied, [&] { return node->role() == raft::Role::kLeader; })) {
    return Fail(std::string("not leader after the campaign; role ") + raft::RoleName(node->role()));
  }

  raft::Result<raft::LogPosition> pos = node->Propose("hello");
  if (!pos.ok()) return Fail("Propose: " + pos.status().ToString());
  // Committed iff the entry applied at pos->index has term pos->term.
  auto committed = [&] { return !applied.empty() && applied.back().index >= pos->index; };
  if (!RunUntil(*node, storage, applied, committed)) return Fail("proposal not committed");
  if (applied.front().index > pos->index) return Fail("proposal applied before its index");
  const raft::Entry& e = applied[pos->index - applied.front().index];
  if (e.index != pos->index || e.term != pos->term || e.type != raft::EntryType::kNormal ||
      e.data != "hello") {
    return Fail("entry at index " + std::to_string(pos->index) + " is not the proposal");
  }
  if (storage.InitialHardState().commit < pos->index) {
    return Fail("commit index not persisted");
  }
  std::printf("consumer: node %llu leader in term %llu; entry %llu \"%s\" committed\n",
              static_cast<unsigned long long>(node->id()),
              static_cast<unsigned long long>(node->term()),
              static_cast<unsigned long long>(e.index), e.data.c_str());
  return true;
}

}  // namespace

int main() { return Run() ? 0 : 1; }
