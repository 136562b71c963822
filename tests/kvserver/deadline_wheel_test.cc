// DeadlineWheel (kvserver/src/deadline_wheel.h): fires each registration once, at the
// first tick at or after its deadline, never before; keeps the earlier of two; survives
// rounds, cancellation and stalls.
#include "deadline_wheel.h"

#include <catch2/catch.hpp>
#include <set>
#include <vector>

namespace kv {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Item {
  int id = 0;
  Clock::time_point deadline = Clock::time_point::max();
  DeadlineWheel<Item>::Link link;
};

struct Fixture {
  Clock::time_point t0 = Clock::now();
  DeadlineWheel<Item> wheel{t0, milliseconds(100), 8};
  std::vector<Item> items = std::vector<Item>(6);
  std::vector<int> fired;
  Fixture() {
    for (std::size_t i = 0; i < items.size(); ++i) {
      items[i].id = static_cast<int>(i);
      items[i].link.owner = &items[i];
    }
  }
  void At(int i, int ms) {
    items[i].deadline = t0 + milliseconds(ms);
    wheel.Schedule(&items[i].link, items[i].deadline);
  }
  // Advances to t0 + ms; an item that fires before its deadline re-registers (as a
  // session does), one past it is recorded.
  void Run(int ms) {
    const auto now = t0 + milliseconds(ms);
    wheel.Advance(now, [&](Item* it) {
      if (now >= it->deadline) {
        fired.push_back(it->id);
        it->deadline = Clock::time_point::max();
      } else if (it->deadline != Clock::time_point::max()) {
        wheel.Schedule(&it->link, it->deadline);
      }
    });
  }
};

TEST_CASE("the wheel fires a deadline at its tick, not before", "[kvserver][wheel]") {
  Fixture f;
  f.At(0, 250);
  f.At(1, 100);
  f.Run(99);
  REQUIRE(f.fired.empty());
  f.Run(100);
  REQUIRE(f.fired == std::vector<int>{1});
  f.Run(299);
  REQUIRE(f.fired == std::vector<int>{1});  // 250 rounds up to the tick at 300
  f.Run(300);
  REQUIRE(f.fired == std::vector<int>{1, 0});
  f.Run(5000);
  REQUIRE(f.fired.size() == 2);  // each once
}

TEST_CASE("the wheel keeps the earlier registration; the owner re-registers", "[kvserver][wheel]") {
  Fixture f;
  f.At(0, 200);
  f.At(0, 900);  // moved later: stays registered at 200, fires early, re-registers
  f.Run(200);
  REQUIRE(f.fired.empty());
  f.Run(800);
  REQUIRE(f.fired.empty());
  f.Run(900);
  REQUIRE(f.fired == std::vector<int>{0});
  f.At(1, 900 + 500);
  f.At(1, 900 + 300);  // moved earlier: moves
  f.Run(1200);
  REQUIRE(f.fired == std::vector<int>{0, 1});
}

TEST_CASE("deadlines beyond a round, cancellation and a stall", "[kvserver][wheel]") {
  Fixture f;      // 8 slots of 100 ms: a round is 800 ms
  f.At(0, 2500);  // three rounds ahead
  f.At(1, 300);
  f.At(2, 300);
  f.At(3, 1100);  // the same slot as 300, a round later
  f.wheel.Cancel(&f.items[2].link);
  f.Run(300);
  REQUIRE(f.fired == std::vector<int>{1});
  f.Run(1000);
  REQUIRE(f.fired == std::vector<int>{1});
  f.Run(10000);  // a stall of many rounds: everything due fires once (in slot order)
  REQUIRE(f.fired.size() == 3);
  REQUIRE(std::set<int>(f.fired.begin(), f.fired.end()) == std::set<int>{0, 1, 3});
  f.At(4, 10050);  // registered after the stall: still fires at its own tick
  f.At(5, 9000);   // already past: fires at the next advance
  f.Run(10000);
  REQUIRE(f.fired.size() == 3);
  f.Run(10100);
  REQUIRE(f.fired.size() == 5);
}

}  // namespace
}  // namespace kv
