// A range's write load (write_load.h): the sustained rate over the window, and the split
// key by sampled writes.
#include "write_load.h"

#include <fmt/format.h>

#include <catch2/catch.hpp>

namespace kv {
namespace {

constexpr std::uint64_t kStart = 1'000'000;  // ms: any monotonic clock's reading

// `per_second` writes in each of `seconds` seconds from `from_ms`, keys from `key(i)`.
template <typename KeyFn>
void Load(WriteLoad* load, std::uint64_t from_ms, int seconds, int per_second, KeyFn key) {
  int i = 0;
  for (int s = 0; s < seconds; ++s)
    for (int w = 0; w < per_second; ++w, ++i)
      load->Record(
          from_ms + static_cast<std::uint64_t>(s) * 1000 +
              static_cast<std::uint64_t>(w) * 1000 / static_cast<std::uint64_t>(per_second),
          key(i));
}

std::string Spread(int i) { return fmt::format("k{:04}", (i * 7919) % 1000); }

}  // namespace

TEST_CASE("write load: sustained only when every second of the window reached the rate",
          "[ranges]") {
  WriteLoad load;
  CHECK_FALSE(load.Sustained(kStart, 10));
  Load(&load, kStart, 10, 50, Spread);
  const std::uint64_t after = kStart + 10'000;  // the 10 seconds are whole now
  CHECK(load.Sustained(after, 50));
  CHECK_FALSE(load.Sustained(after, 51));
  CHECK_FALSE(load.Sustained(after, 0));          // 0: off
  CHECK_FALSE(load.Sustained(after - 1000, 50));  // only 9 whole seconds
  // One quiet second in the window: not sustained until it leaves the window.
  Load(&load, after + 1000, 10, 50, Spread);  // nothing in second `after`
  for (int s = 1; s <= 10; ++s)
    CHECK_FALSE(load.Sustained(after + static_cast<std::uint64_t>(s) * 1000, 50));
  CHECK(load.Sustained(after + 11'000, 50));
  // A burst of 10 times the rate in one second does not make up for the others.
  WriteLoad burst;
  Load(&burst, kStart, 1, 1000, Spread);
  Load(&burst, kStart + 1000, 9, 5, Spread);
  CHECK_FALSE(burst.Sustained(kStart + 10'000, 50));
  // Silence past the window forgets everything; Reset too.
  CHECK_FALSE(load.Sustained(after + 60'000, 1));
  load.Reset();
  CHECK_FALSE(load.Sustained(after + 11'000, 1));
  CHECK_FALSE(load.SplitKey(after + 11'000));
}

TEST_CASE("write load: the split key halves the sampled writes; a hot key does not split",
          "[ranges]") {
  WriteLoad spread;
  Load(&spread, kStart, 10, 400, Spread);  // keys k0000..k0999, evenly
  auto key = spread.SplitKey(kStart + 10'000);
  REQUIRE(key);
  // The middle of k0000..k0999, within what 32 samples a second can tell.
  CHECK(*key > "k0350");
  CHECK(*key < "k0650");

  // Skewed: 3 of 4 writes to the keys below "m": the split lands among them.
  WriteLoad skew;
  Load(&skew, kStart, 10, 400, [](int i) {
    return i % 4 == 3 ? fmt::format("z{:03}", i % 100) : fmt::format("a{:03}", i % 100);
  });
  key = skew.SplitKey(kStart + 10'000);
  REQUIRE(key);
  CHECK(*key > "a030");
  CHECK(*key < "a090");

  // Two hot keys: the split goes between them, at the second.
  WriteLoad two;
  Load(&two, kStart, 10, 100, [](int i) { return i % 2 ? std::string("hot-b") : "hot-a"; });
  key = two.SplitKey(kStart + 10'000);
  REQUIRE(key);
  CHECK(*key == "hot-b");

  // One hot key, or one taking almost all: no split can spread it.
  WriteLoad one;
  Load(&one, kStart, 10, 100, [](int) { return std::string("hot"); });
  CHECK_FALSE(one.SplitKey(kStart + 10'000));
  WriteLoad mostly;
  Load(&mostly, kStart, 10, 400,
       [](int i) { return i % 10 == 0 ? fmt::format("a{:03}", i % 1000) : std::string("hot"); });
  CHECK_FALSE(mostly.SplitKey(kStart + 10'000));

  // Only the window counts: yesterday's keys are not today's load.
  WriteLoad moved;
  Load(&moved, kStart, 10, 100, [](int i) { return fmt::format("old{:03}", i % 100); });
  Load(&moved, kStart + 20'000, 10, 100, [](int i) { return fmt::format("new{:03}", i % 100); });
  key = moved.SplitKey(kStart + 30'000);
  REQUIRE(key);
  CHECK(key->rfind("new", 0) == 0);
}

}  // namespace kv
