// A small deterministic PRNG (SplitMix64). The core owns one, seeded from Config, so
// election jitter replays exactly from a seed. Not for cryptography.
#pragma once

#include <cstdint>

namespace raft {

class Prng {
 public:
  explicit Prng(std::uint64_t seed) : state_(seed) {}

  std::uint64_t Next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n); n > 0.
  std::uint64_t Uniform(std::uint64_t n) { return Next() % n; }

 private:
  std::uint64_t state_;
};

}  // namespace raft
