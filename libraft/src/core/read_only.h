// ReadOnlyQueue: the leader's pending ReadIndex requests (Raft thesis 6.4).
//
// Each request records the commit index when it arrived and a sequence number. The
// leader's heartbeats carry the newest sequence; a follower echoes it. A request with
// sequence s is confirmed once a majority of voters (the leader included) echoed a
// sequence >= s: at that moment the leader was still the leader, so `index` is a safe
// linearization point. Confirmation is monotonic in s, so requests leave in order.
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
  // Queues a request; returns its sequence number.
  std::uint64_t Add(Index index, std::string context, NodeId from);
  // `from` has confirmed our leadership as of sequence `seq`.
  void Ack(NodeId from, std::uint64_t seq);
  // Removes and returns the requests confirmed by a majority of `voters`.
  std::vector<PendingRead> Release(const std::set<NodeId>& voters, NodeId self);
  std::uint64_t LastSeq() const { return queue_.empty() ? 0 : queue_.back().seq; }
  bool Empty() const { return queue_.empty(); }
  void Reset();

 private:
  std::deque<PendingRead> queue_;
  std::map<NodeId, std::uint64_t> acked_;
  std::uint64_t next_seq_ = 1;
};

}  // namespace raft
