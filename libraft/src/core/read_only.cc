#include "core/read_only.h"

#include "core/quorum.h"

namespace raft {

void ReadOnlyQueue::Add(Index index, std::string context, NodeId from, std::uint64_t seq) {
  queue_.push_back(PendingRead{index, std::move(context), from, seq});
}

std::uint64_t ReadOnlyQueue::Acked(NodeId id) const {
  auto it = acked_.find(id);
  return it == acked_.end() ? 0 : it->second;
}

void ReadOnlyQueue::Ack(NodeId from, std::uint64_t seq) {
  auto& a = acked_[from];
  if (seq > a) a = seq;
}

std::vector<PendingRead> ReadOnlyQueue::Release(const std::set<NodeId>& voters, NodeId self) {
  std::vector<PendingRead> out;
  while (!queue_.empty()) {
    std::uint64_t seq = queue_.front().seq;
    bool confirmed = QuorumActive(voters, [&](NodeId id) {
      if (id == self) return true;
      auto it = acked_.find(id);
      return it != acked_.end() && it->second >= seq;
    });
    if (!confirmed) break;
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return out;
}

void ReadOnlyQueue::Reset() {
  queue_.clear();
  acked_.clear();
}

}  // namespace raft
