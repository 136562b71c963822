// Rng: the simulator's one source of randomness (SplitMix64). Every decision of a run
// (fault mix, schedule, delays, client ops, core seeds) is drawn from one Rng seeded by
// the run's seed, so a seed replays exactly. Not for cryptography.
#pragma once

#include <cstdint>

namespace raft::sim {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed * 0xD1342543DE82EF95ull + 0x2545F4914F6CDD1Dull) {}

  std::uint64_t Next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); 0 when n == 0.
  std::uint64_t Uniform(std::uint64_t n) { return n == 0 ? 0 : Next() % n; }
  // Uniform in [lo, hi] (inclusive); lo when hi < lo.
  std::int64_t Range(std::int64_t lo, std::int64_t hi) {
    if (hi <= lo) return lo;
    return lo + static_cast<std::int64_t>(Uniform(static_cast<std::uint64_t>(hi - lo + 1)));
  }
  // Uniform in [0, 1).
  double Real() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  bool Chance(double p) { return p > 0 && Real() < p; }

 private:
  std::uint64_t state_;
};

}  // namespace raft::sim
