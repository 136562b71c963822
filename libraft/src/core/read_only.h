// ReadOnlyQueue: the leader's pending ReadIndex requests (Raft thesis 6.4).
//
// Every heartbeat round of the leader carries a new sequence number; followers echo it.
// A request records the commit index when it arrived and the sequence of the next
// heartbeat round (sent after it arrived). It is confirmed once a majority of voters
// (the leader included) echoed a sequence >= that: at that moment the leader was still
// the leader, so `index` is a safe linearization point. Confirmation is monotonic in
// the sequence, so requests leave in order.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "raft/types.h"

namespace raft {

struct PendingRead {
  Index index = 0;
  std::string context;
  NodeId from = kNoNode;  // requester (the leader itself for local reads)
  std::uint64_t seq = 0;
};

class ReadOnlyQueue {
 public:
  // Queues a request confirmed by heartbeat round `seq` (non-decreasing across calls).
  void Add(Index index, std::string context, NodeId from, std::uint64_t seq);
  // `from` has confirmed our leadership as of sequence `seq`.
  void Ack(NodeId from, std::uint64_t seq);
  // Removes and returns the requests confirmed by a majority of `voters`.
  std::vector<PendingRead> Release(const std::set<NodeId>& voters, NodeId self);
  // Highest round `id` acknowledged (0 if none).
  std::uint64_t Acked(NodeId id) const;
  bool Empty() const { return queue_.empty(); }
  void Reset();

 private:
  std::deque<PendingRead> queue_;
  std::map<NodeId, std::uint64_t> acked_;
};

}  // namespace raft
