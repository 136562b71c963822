// Inflights: the window of Append messages sent to one follower and not yet
// acknowledged, bounded by count and by bytes (etcd-io/raft tracker/inflights.go).
// Each element is the last index carried by one message.
#pragma once

#include <cstdint>
#include <deque>

#include "raft/types.h"

namespace raft {

class Inflights {
 public:
  // max_bytes == 0 means no byte limit.
  Inflights(std::uint32_t max_count, std::uint64_t max_bytes)
      : max_count_(max_count), max_bytes_(max_bytes) {}

  // Records a message whose last entry is `last` carrying `bytes` of entries.
  // Indexes must be added in increasing order.
  void Add(Index last, std::uint64_t bytes);
  // Frees every message whose last index is <= to (they were acknowledged).
  void FreeLE(Index to);
  // Frees the oldest message: a heartbeat response proved the peer alive, so a full
  // window (whose messages may all have been lost) must not block replication forever.
  void FreeFirstOne();
  void Reset();
  bool Full() const;
  std::size_t Count() const { return items_.size(); }
  std::uint64_t Bytes() const { return bytes_; }

 private:
  struct Item {
    Index last;
    std::uint64_t bytes;
  };
  std::uint32_t max_count_;
  std::uint64_t max_bytes_;
  std::deque<Item> items_;
  std::uint64_t bytes_ = 0;
};

}  // namespace raft
