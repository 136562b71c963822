// WriteLoad: a range's recent client writes, for splits by load (-range-max-writes;
// docs/multi-raft.md, "Splits by load"). Pure: the caller passes the time (milliseconds
// of a monotonic clock) and guards the object; not thread-safe.
//
// One bucket per second of the last kWindowSeconds whole seconds and the current one:
// the number of writes and a uniform sample of their keys (reservoir sampling, at most
// kSamplesPerSecond; each sampled key stands for count / samples writes of its second).
// Memory is bounded by the window whatever the write rate: (kWindowSeconds + 1) *
// kSamplesPerSecond keys.
//
// Chosen: a load is "sustained" when EVERY whole second of the window reached the rate,
// not when their mean did, so that one burst does not split a range. Not chosen: reads
// (a follower can serve none of them here; the leader's load is its writes) and a key's
// size (the size threshold covers it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kv {

class WriteLoad {
 public:
  static constexpr int kWindowSeconds = 10;
  static constexpr std::size_t kSamplesPerSecond = 32;

  // `seed` drives the reservoir's choices (any value; fixed for a reproducible test).
  explicit WriteLoad(std::uint64_t seed = 0x9e3779b97f4a7c15ull);

  // A write of `key` at `now_ms`. Times go forward; an earlier one counts in the current
  // second.
  void Record(std::uint64_t now_ms, std::string_view key);

  // Whether each of the kWindowSeconds whole seconds before the one holding `now_ms` saw
  // at least `per_second` writes (false for per_second 0).
  bool Sustained(std::uint64_t now_ms, std::uint64_t per_second) const;

  // The key at which the window's sampled writes part in halves by weight: every sampled
  // write below it goes left, the rest right. nullopt when the lighter side would carry
  // less than a quarter of the weight (a single hot key: a split cannot spread it) or
  // nothing was sampled.
  std::optional<std::string> SplitKey(std::uint64_t now_ms) const;

  // Forgets every write (the range's span changed: a split, a restore).
  void Reset();

 private:
  struct Second {
    std::uint64_t second = 0;  // now_ms / 1000 of its writes; 0 with none
    std::uint64_t count = 0;
    std::vector<std::string> samples;
  };
  // The bucket of `second`, cleared if it held an older one.
  Second& BucketOf(std::uint64_t second);
  std::uint64_t Next();  // splitmix64

  std::vector<Second> buckets_;  // kWindowSeconds + 1, by second modulo their number
  std::uint64_t latest_ = 0;     // the latest second recorded
  std::uint64_t rng_;
};

}  // namespace kv
