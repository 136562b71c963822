// The completion and the deadline of a request (a proposal, a read barrier), shared by
// raft::Node and raft::Host: a callback that runs once, whichever of its completion or
// its deadline comes first, and the queue of deadlines the io lane sweeps every tick.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "raft/status.h"
#include "runtime/env.h"

namespace raft::runtime {

using RequestCallback = std::function<void(Result<std::string>)>;

// A callback that runs at most once, whichever of completion or timeout comes first.
// Thread-safe: Run may race from any lanes; one wins.
class OnceCallback {
 public:
  explicit OnceCallback(RequestCallback cb) : cb_(std::move(cb)) {}
  bool Run(Result<std::string> r) {
    if (done_.exchange(true)) return false;
    cb_(std::move(r));
    return true;
  }
  bool done() const { return done_.load(); }

 private:
  RequestCallback cb_;
  std::atomic<bool> done_{false};
};
using SharedCallback = std::shared_ptr<OnceCallback>;

// Request deadlines; io lane only. One FIFO per distinct timeout: since the clock only
// moves forward, each FIFO expires in insertion order, so adding and sweeping cost O(1)
// amortized. Entries hold weak references: a request that completed is freed at once,
// not at its deadline. (A std::multimap of every request of the last `timeout` cost
// O(log n) per request and kept each one's callback and future alive until it expired:
// about 175,000 entries at 35,000 reads/s with a 5 s timeout.)
class DeadlineQueue {
 public:
  void Add(Clock::time_point now, std::chrono::milliseconds timeout, const SharedCallback& cb) {
    fifos_[timeout].emplace_back(now + timeout, cb);
  }
  // Fails every still-pending request whose deadline is at or before `now`.
  void Expire(Clock::time_point now, const Status& status) {
    for (auto& [timeout, fifo] : fifos_) {
      while (!fifo.empty() && fifo.front().first <= now) {
        if (auto cb = fifo.front().second.lock()) cb->Run(status);
        fifo.pop_front();
      }
    }
  }

 private:
  std::map<std::chrono::milliseconds,
           std::deque<std::pair<Clock::time_point, std::weak_ptr<OnceCallback>>>>
      fifos_;
};

}  // namespace raft::runtime
