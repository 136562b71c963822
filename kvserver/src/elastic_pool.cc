#include "elastic_pool.h"

#include <pthread.h>

namespace kv {

ElasticPool::ElasticPool(std::size_t min_threads, std::size_t max_threads)
    : max_(std::max(min_threads, max_threads)) {
  std::lock_guard<std::mutex> l(mu_);
  for (std::size_t i = 0; i < min_threads; ++i) Spawn();
}

ElasticPool::~ElasticPool() { shutdown(); }

void ElasticPool::Spawn() {
  threads_.emplace_back([this] { Worker(); });
}

void ElasticPool::enqueue(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (shutdown_) return;  // the accept loop has ended before shutdown; nothing comes
    jobs_.push_back(std::move(fn));
    if (jobs_.size() > idle_ && threads_.size() < max_) Spawn();
  }
  cv_.notify_one();
}

void ElasticPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (shutdown_) return;
    shutdown_ = true;
  }
  cv_.notify_all();
  {
    std::lock_guard<std::mutex> l(mu_);
    threads.swap(threads_);  // no Spawn after shutdown_: the set is final
  }
  for (auto& t : threads) t.join();
}

std::size_t ElasticPool::threads() const {
  std::lock_guard<std::mutex> l(mu_);
  return threads_.size();
}

void ElasticPool::Worker() {
  pthread_setname_np(pthread_self(), "http-worker");
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> l(mu_);
      ++idle_;
      cv_.wait(l, [&] { return !jobs_.empty() || shutdown_; });
      --idle_;
      if (jobs_.empty()) return;  // shutdown with nothing left to do
      fn = std::move(jobs_.front());
      jobs_.pop_front();
    }
    fn();
  }
}

}  // namespace kv
