#include "write_load.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace kv {

WriteLoad::WriteLoad(std::uint64_t seed) : buckets_(kWindowSeconds + 1), rng_(seed) {}

std::uint64_t WriteLoad::Next() {
  std::uint64_t z = (rng_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

WriteLoad::Second& WriteLoad::BucketOf(std::uint64_t second) {
  Second& b = buckets_[second % buckets_.size()];
  if (b.second != second) {
    b.second = second;
    b.count = 0;
    b.samples.clear();
  }
  return b;
}

void WriteLoad::Record(std::uint64_t now_ms, std::string_view key) {
  latest_ = std::max(latest_, now_ms / 1000);
  Second& b = BucketOf(latest_);
  ++b.count;
  if (b.samples.size() < kSamplesPerSecond) {
    b.samples.emplace_back(key);
    return;
  }
  // Reservoir: the count-th write replaces a sample with probability samples / count.
  const std::uint64_t slot = Next() % b.count;
  if (slot < b.samples.size()) b.samples[slot].assign(key.data(), key.size());
}

bool WriteLoad::Sustained(std::uint64_t now_ms, std::uint64_t per_second) const {
  if (per_second == 0) return false;
  const std::uint64_t now = now_ms / 1000;
  if (now < static_cast<std::uint64_t>(kWindowSeconds)) return false;
  for (std::uint64_t s = now - kWindowSeconds; s < now; ++s) {
    const Second& b = buckets_[s % buckets_.size()];
    if (b.second != s || b.count < per_second) return false;
  }
  return true;
}

std::optional<std::string> WriteLoad::SplitKey(std::uint64_t now_ms) const {
  const std::uint64_t now = now_ms / 1000;
  std::vector<std::pair<std::string_view, double>> weighted;
  double total = 0;
  for (const Second& b : buckets_) {
    if (b.samples.empty() || b.second > now || b.second + kWindowSeconds < now) continue;
    const double w = static_cast<double>(b.count) / static_cast<double>(b.samples.size());
    for (const std::string& k : b.samples) weighted.emplace_back(k, w);
    total += w * static_cast<double>(b.samples.size());
  }
  std::sort(weighted.begin(), weighted.end());
  // Each distinct key but the first is a candidate; `below` is the weight left of it.
  std::optional<std::string_view> best;
  double best_below = 0, below = 0;
  for (std::size_t i = 0; i < weighted.size(); ++i) {
    if (i > 0 && weighted[i].first != weighted[i - 1].first &&
        (!best || std::abs(2 * below - total) < std::abs(2 * best_below - total))) {
      best = weighted[i].first;
      best_below = below;
    }
    below += weighted[i].second;
  }
  if (!best || std::min(best_below, total - best_below) < total / 4) return std::nullopt;
  return std::string(*best);
}

void WriteLoad::Reset() {
  for (Second& b : buckets_) {
    b.second = 0;
    b.count = 0;
    b.samples.clear();
  }
  latest_ = 0;
}

}  // namespace kv
