#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace kvbench {

int Histogram::IndexOf(uint64_t value) {
  if (value < (uint64_t{1} << kSubBucketBits)) return static_cast<int>(value);
  const int magnitude = std::bit_width(value) - 1;  // >= kSubBucketBits
  const int shift = magnitude - (kSubBucketBits - 1);
  const auto sub = static_cast<int>(value >> shift);  // in [kSubBucketHalf, 2*kSubBucketHalf)
  return (magnitude - kSubBucketBits + 1) * kSubBucketHalf + sub;
}

uint64_t Histogram::LowestValueOf(int index) {
  if (index < (1 << kSubBucketBits)) return static_cast<uint64_t>(index);
  const int group = index / kSubBucketHalf;  // >= 2
  const int sub = index % kSubBucketHalf + kSubBucketHalf;
  const int shift = group - 1;
  return static_cast<uint64_t>(sub) << shift;
}

uint64_t Histogram::HighestValueOf(int index) {
  if (index + 1 >= kBucketCount) return UINT64_MAX;
  return LowestValueOf(index + 1) - 1;
}

void Histogram::Record(uint64_t value) {
  ++counts_[IndexOf(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += value;
}

void Histogram::Merge(const Histogram& other) {
  for (int i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void Histogram::Reset() { *this = Histogram(); }

double Histogram::Mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

uint64_t Histogram::ValueAtPercentile(double percentile) const {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(percentile, 0.0, 100.0);
  auto rank = static_cast<uint64_t>(std::ceil(clamped / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (int i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(HighestValueOf(i), min_, max_);
  }
  return max_;
}

}  // namespace kvbench
