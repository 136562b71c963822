#include "quota.h"

namespace kv {

void Quota::ObserveLocked(std::uint64_t used) {
  if (used >= limit_) {
    alarm_.store(true, std::memory_order_relaxed);
  } else if (used < limit_ / 100 * kClearPercent) {
    alarm_.store(false, std::memory_order_relaxed);
  }
}

bool Quota::AdmitWrite(std::uint64_t used, std::uint64_t add) {
  if (limit_ == 0) return true;
  std::lock_guard<std::mutex> l(mu_);
  ObserveLocked(used);
  if (!alarm_.load(std::memory_order_relaxed) && add <= limit_ - used) return true;
  alarm_.store(true, std::memory_order_relaxed);
  refused_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void Quota::Observe(std::uint64_t used) {
  if (limit_ == 0) return;
  std::lock_guard<std::mutex> l(mu_);
  ObserveLocked(used);
}

}  // namespace kv
