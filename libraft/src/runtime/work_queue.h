// WorkQueue: a blocking FIFO for handing work to one consumer thread.
// Thread safety: Push/Close from any thread; Pop from the consumer.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace raft::runtime {

template <typename T>
class WorkQueue {
 public:
  void Push(T item) {
    {
      std::lock_guard<std::mutex> l(mu_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }
  // Blocks until an item arrives or the queue is closed and drained (nullopt).
  std::optional<T> Pop() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }
  void Close() {
    {
      std::lock_guard<std::mutex> l(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace raft::runtime
