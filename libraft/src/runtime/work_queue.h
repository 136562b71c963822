// WorkQueue: a blocking FIFO for handing work to one consumer thread.
// Thread safety: Push/Close from any thread; Pop from the consumer.
#pragma once

#include <deque>
#include <optional>

#include "base/mutex.h"

namespace raft::runtime {

template <typename T>
class WorkQueue {
 public:
  void Push(T item) {
    {
      base::MutexLock l(&mu_);
      items_.push_back(std::move(item));
    }
    cv_.Signal();
  }
  // Blocks until an item arrives or the queue is closed and drained (nullopt).
  std::optional<T> Pop() {
    base::MutexLock l(&mu_);
    while (items_.empty() && !closed_) cv_.Wait();
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }
  void Close() {
    {
      base::MutexLock l(&mu_);
      closed_ = true;
    }
    cv_.SignalAll();
  }

 private:
  // A leaf lock: items are pushed and popped with no other lock held.
  base::Mutex mu_;
  base::CondVar cv_{&mu_};
  std::deque<T> items_ RAFT_GUARDED_BY(mu_);
  bool closed_ RAFT_GUARDED_BY(mu_) = false;
};

}  // namespace raft::runtime
