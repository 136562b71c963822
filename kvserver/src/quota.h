// Quota: the -quota-bytes rule (docs/operations.md, "Quota").
//
// A write (PUT, CAS) is admitted when the state machine's size plus the write's key and
// value stays within the limit. The first refusal raises the alarm (NOSPACE in /status,
// kv_quota_alarm in /metrics); while it is raised every write is refused, until the size
// falls below kClearPercent of the limit (hysteresis: a store at the limit would otherwise
// flap between one admitted write and one refused). Deletes and reads are never refused.
//
// The size is the caller's measurement (RocksStateMachine::ApproximateSizeBytes: SST files
// plus memtables), so the limit is approximate by up to one write, and it is per node:
// the leader decides for writes (followers forward them), and each node raises its own
// alarm from its own size. The choice not made: etcd puts the alarm in the log so every
// member agrees; here replicas hold the same data, and a per-node alarm needs no
// disarm step.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

namespace kv {

class Quota {
 public:
  static constexpr std::uint64_t kClearPercent = 95;

  // limit_bytes 0: no quota (everything is admitted, the alarm never rises).
  explicit Quota(std::uint64_t limit_bytes) : limit_(limit_bytes) {}

  // Whether a write of `add` bytes may be proposed when the state uses `used` bytes.
  // A refusal raises the alarm and is counted.
  bool AdmitWrite(std::uint64_t used, std::uint64_t add);
  // Re-evaluates the alarm from a fresh size: raised at or over the limit, cleared below
  // kClearPercent of it.
  void Observe(std::uint64_t used);

  bool alarm() const { return alarm_.load(std::memory_order_relaxed); }
  std::uint64_t limit() const { return limit_; }
  std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  void ObserveLocked(std::uint64_t used);

  const std::uint64_t limit_;
  std::mutex mu_;  // orders alarm transitions
  std::atomic<bool> alarm_{false};
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace kv
