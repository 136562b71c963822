// ReceiveThread: the transport's one thread for writing received snapshot chunks to disk.
//
// The io thread reads, checks and decodes frames; the copy of a chunk into the page cache
// and the checksum of its file bytes run here. On a machine whose cores a write load
// saturates, one io thread doing both was starved of CPU: a 2 GiB stream spent about
// 1.5 ms of CPU per MiB, half of it runnable and waiting for a core (docs/performance.md,
// finding 16, item 8). Two runnable threads get two shares, and the io thread stays free
// for heartbeats and messages while the disk work runs.
//
// Jobs run one at a time in posting order (InboundConn relies on it: a connection's
// chunks are written in order and its answers go back in order). The thread starts at
// the first Post. Stop() runs every job already posted, then joins: a job sees
// stopping() true and should only release what it holds (a receive is abandoned, its
// partial files removed). Jobs posted after Stop are destroyed unrun.
//
// Thread safety: Post and Stop on the transport's io thread (or when nothing runs);
// stopping() from any thread.
#pragma once

#include <pthread.h>

#include <atomic>
#include <functional>
#include <thread>

#include "runtime/work_queue.h"

namespace raft::runtime {

class ReceiveThread {
 public:
  ReceiveThread() = default;
  ReceiveThread(const ReceiveThread&) = delete;
  ReceiveThread& operator=(const ReceiveThread&) = delete;
  ~ReceiveThread() { Stop(); }

  // After Stop the job is destroyed unrun (check stopping() first to run it elsewhere).
  void Post(std::function<void()> job) {
    if (stopping_.load(std::memory_order_acquire)) return;
    if (!thread_.joinable()) {
      thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "raft-recv");
        while (auto j = queue_.Pop()) (*j)();
      });
    }
    queue_.Push(std::move(job));
  }

  void Stop() {
    if (stopping_.exchange(true, std::memory_order_acq_rel)) return;
    queue_.Close();
    if (thread_.joinable()) thread_.join();
  }

  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

 private:
  WorkQueue<std::function<void()>> queue_;
  std::thread thread_;  // Post and Stop only
  std::atomic<bool> stopping_{false};
};

}  // namespace raft::runtime
