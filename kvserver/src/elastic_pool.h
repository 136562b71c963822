// ElasticPool: cpp-httplib's TaskQueue with a floor and a ceiling of threads.
//
// cpp-httplib serves a connection (all its keep-alive requests) on one worker that
// blocks while the client sends, so a fixed pool is starved by as many slow clients as
// it has threads. This pool starts `min_threads` workers and adds one whenever a job
// arrives and no worker is idle, up to `max_threads`; beyond that, jobs wait. A slow
// client therefore costs one mostly idle thread (stack memory is reserved, not used),
// and starving the server takes max_threads connections trickling bytes at once, each
// of which is cut after the read timeout without progress. Threads are never retired.
// Thread safety: enqueue from the accept thread; shutdown once.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kv {

class ElasticPool final : public httplib::TaskQueue {
 public:
  ElasticPool(std::size_t min_threads, std::size_t max_threads);
  ~ElasticPool() override;
  void enqueue(std::function<void()> fn) override;
  void shutdown() override;
  std::size_t threads() const;

 private:
  void Spawn();  // with mu_ held
  void Worker();

  const std::size_t max_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  bool shutdown_ = false;
};

}  // namespace kv
