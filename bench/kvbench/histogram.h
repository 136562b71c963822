// A log-linear latency histogram in the style of HdrHistogram: fixed memory, constant-time
// Record(), bounded relative error. Values are unsigned 64-bit (kvbench records
// nanoseconds).
//
// Layout: values below 2^kSubBucketBits are counted exactly, one bucket each. Above that,
// every power-of-two range [2^m, 2^(m+1)) is split into 2^(kSubBucketBits-1) equal buckets,
// so a bucket's width is at most 1/128 of its lower bound: a reported percentile is within
// 0.8% of the true sample (reported as the bucket's highest value, clamped to the recorded
// maximum). The full uint64 range fits in kBucketCount buckets (about 58 KiB of counts).
//
// Not thread-safe: one histogram per thread, Merge() afterwards.
#pragma once

#include <array>
#include <cstdint>

namespace kvbench {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 8;
  static constexpr int kSubBucketHalf = 1 << (kSubBucketBits - 1);
  static constexpr int kBucketCount = (64 - kSubBucketBits + 1) * kSubBucketHalf + kSubBucketHalf;

  void Record(uint64_t value);
  void Merge(const Histogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double Mean() const;
  // The value at or below which `percentile` (0..100] of the samples lie; 0 when empty.
  uint64_t ValueAtPercentile(double percentile) const;

  // Bucket arithmetic, exposed for tests.
  static int IndexOf(uint64_t value);
  static uint64_t LowestValueOf(int index);
  static uint64_t HighestValueOf(int index);

 private:
  std::array<uint64_t, kBucketCount> counts_{};
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace kvbench
