#include "core/inflights.h"

#include "base/assert.h"

namespace raft {

void Inflights::Add(Index last, std::uint64_t bytes) {
  RAFT_ASSERT(items_.empty() || items_.back().last < last);
  items_.push_back({last, bytes});
  bytes_ += bytes;
}

void Inflights::FreeLE(Index to) {
  while (!items_.empty() && items_.front().last <= to) {
    bytes_ -= items_.front().bytes;
    items_.pop_front();
  }
}

void Inflights::FreeFirstOne() {
  if (items_.empty()) return;
  bytes_ -= items_.front().bytes;
  items_.pop_front();
}

void Inflights::Reset() {
  items_.clear();
  bytes_ = 0;
}

bool Inflights::Full() const {
  return items_.size() >= max_count_ || (max_bytes_ != 0 && bytes_ >= max_bytes_);
}

}  // namespace raft
