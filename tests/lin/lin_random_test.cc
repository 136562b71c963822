// Randomized and budget tests for the KV linearizability checker. Histories come from a real
// sequential execution: each operation gets a random interval and a linearization point
// inside it; executing in point order produces the outputs, so the history is linearizable
// by construction. A deliberately stale read must then be detected.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "lin_checker.h"
#include "lin_test_util.h"

namespace raft::lin {
namespace {

struct GenParams {
  std::uint64_t seed = 1;
  int ops = 300;
  int keys = 4;
  int clients = 4;
  Tick duration_max = 10;      // each operation lasts [0, duration_max] ticks
  double unknown_rate = 0.05;  // fraction of operations whose reply is lost
};

// Every value written is unique ("p<i>" for Puts, "c<i>" for Cas), so a value identifies
// its writer. An unknown-outcome operation takes effect at its point or not at all.
History Generate(const GenParams& p) {
  std::mt19937_64 rng(p.seed);
  auto uniform = [&rng](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  struct Planned {
    Operation op;
    double point;
    bool takes_effect;
  };
  std::vector<Planned> plan;
  std::vector<Tick> free_at(p.clients, 0);  // a client issues its next op after the last one
  for (int i = 0; i < p.ops; ++i) {
    const auto c = static_cast<std::size_t>(std::min_element(free_at.begin(), free_at.end()) -
                                            free_at.begin());
    Planned pl;
    pl.op.client_id = c + 1;
    pl.op.invoke_tick = free_at[c] + uniform(0, 2);
    const Tick complete = pl.op.invoke_tick + uniform(0, p.duration_max);
    free_at[c] = complete + 1;
    pl.op.complete_tick = complete;
    pl.point = static_cast<double>(pl.op.invoke_tick) +
               unit(rng) * static_cast<double>(complete - pl.op.invoke_tick);
    pl.op.input.key = "k";
    pl.op.input.key += std::to_string(uniform(0, p.keys - 1));
    const std::int64_t roll = uniform(0, 99);
    pl.op.input.kind = roll < 40   ? OpKind::kGet
                       : roll < 65 ? OpKind::kPut
                       : roll < 90 ? OpKind::kCas
                                   : OpKind::kDelete;
    pl.takes_effect = true;
    if (unit(rng) < p.unknown_rate) {
      pl.op.complete_tick.reset();
      pl.takes_effect = uniform(0, 1) == 1;
    }
    plan.push_back(std::move(pl));
  }
  std::vector<std::size_t> order(plan.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&plan](std::size_t a, std::size_t b) { return plan[a].point < plan[b].point; });
  std::map<std::string, std::string> store;
  for (std::size_t i : order) {
    Operation& op = plan[i].op;
    auto it = store.find(op.input.key);
    const std::optional<std::string> current =
        it == store.end() ? std::nullopt : std::optional<std::string>(it->second);
    switch (op.input.kind) {
      case OpKind::kGet:
        op.output = Output::Value(current);
        break;
      case OpKind::kPut:
        op.input.value = "p" + std::to_string(i);
        if (plan[i].takes_effect) store[op.input.key] = op.input.value;
        op.output = Output::Ack();
        break;
      case OpKind::kDelete:
        if (plan[i].takes_effect) store.erase(op.input.key);
        op.output = Output::Ack();
        break;
      case OpKind::kCas: {
        const std::int64_t roll = uniform(0, 3);
        op.input.expected =
            roll <= 1   ? current
            : roll == 2 ? std::nullopt
                        : std::optional<std::string>("p" + std::to_string(uniform(0, p.ops - 1)));
        op.input.value = "c" + std::to_string(i);
        const bool swapped = op.input.expected == current;
        if (swapped && plan[i].takes_effect) store[op.input.key] = op.input.value;
        op.output = Output::Swapped(swapped);
        break;
      }
    }
  }
  History h;
  for (Planned& pl : plan) h.push_back(std::move(pl.op));
  return h;
}

// A known write that definitely stored input.value / overwrote the key.
bool DefinitelyWrote(const Operation& op) {
  if (!op.known()) return false;
  return op.input.kind == OpKind::kPut || (op.input.kind == OpKind::kCas && op.output.ok);
}
bool DefinitelyOverwrote(const Operation& op) {
  return DefinitelyWrote(op) || (op.known() && op.input.kind == OpKind::kDelete);
}

// Finds a known Get R and a value it provably cannot read: written only (values are unique)
// by a known write W, with a known overwrite W2 of the key strictly between W and R.
std::optional<std::pair<std::size_t, std::string>> FindStaleRead(const History& h) {
  for (std::size_t r = 0; r < h.size(); ++r) {
    const Operation& read = h[r];
    if (!read.known() || read.input.kind != OpKind::kGet) continue;
    const Operation* w2 = nullptr;  // the latest-invoked overwrite completed before R
    for (const Operation& op : h) {
      if (op.input.key == read.input.key && DefinitelyOverwrote(op) &&
          *op.complete_tick < read.invoke_tick && (!w2 || op.invoke_tick > w2->invoke_tick)) {
        w2 = &op;
      }
    }
    if (!w2) continue;
    for (const Operation& w : h) {
      if (&w != w2 && w.input.key == read.input.key && DefinitelyWrote(w) &&
          *w.complete_tick < w2->invoke_tick && read.output.value != w.input.value) {
        return std::make_pair(r, w.input.value);
      }
    }
  }
  return std::nullopt;
}

TEST_CASE("random histories from real executions are linearizable; stale reads are caught",
          "[lin][random]") {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    GenParams p;
    p.seed = seed;
    p.keys = 1 + static_cast<int>(seed % 6);
    p.clients = 2 + static_cast<int>(seed % 7);
    p.duration_max = 4 + static_cast<Tick>(seed % 17);
    History h = Generate(p);
    CheckResult r = CheckHistory(h);
    INFO("seed " << seed << ": " << r.ToString());
    REQUIRE(r.ok());

    const auto stale = FindStaleRead(h);
    REQUIRE(stale.has_value());
    const std::string key = h[stale->first].input.key;
    h[stale->first].output.value = stale->second;
    CheckResult bad = CheckHistory(h);
    INFO("corrupted op " << stale->first << ": " << DescribeOperation(h[stale->first]));
    CHECK(bad.verdict == Verdict::kNotLinearizable);
    CHECK(bad.key == key);
  }
}

TEST_CASE("random histories: a read of a never-written value is caught", "[lin][random]") {
  for (std::uint64_t seed = 100; seed < 120; ++seed) {
    GenParams p;
    p.seed = seed;
    History h = Generate(p);
    REQUIRE(CheckHistory(h).ok());
    std::mt19937_64 rng(seed);
    std::size_t r;
    do {
      r = std::uniform_int_distribution<std::size_t>(0, h.size() - 1)(rng);
    } while (!h[r].known() || h[r].input.kind != OpKind::kGet);
    h[r].output.value = "never-written";
    INFO("seed " << seed << ", op " << r);
    CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
  }
}

TEST_CASE("high concurrency on one key stays linearizable and cheap", "[lin][random]") {
  GenParams p;
  p.seed = 7;
  p.ops = 1000;
  p.keys = 1;
  p.clients = 10;
  p.duration_max = 30;
  p.unknown_rate = 0.1;
  CheckResult r = CheckHistory(Generate(p));
  INFO(r.ToString());
  CHECK(r.ok());
}

TEST_CASE("many unknown outcomes on few keys: no false alarm, stale read caught",
          "[lin][random][unknown]") {
  for (std::uint64_t seed = 200; seed < 215; ++seed) {
    GenParams p;
    p.seed = seed;
    p.ops = 2000;
    p.keys = 1 + static_cast<int>(seed % 3);
    p.clients = 6;
    p.unknown_rate = 0.25;
    History h = Generate(p);
    CheckResult r = CheckHistory(h);
    INFO("seed " << seed << ": " << r.ToString());
    REQUIRE(r.ok());
    const auto stale = FindStaleRead(h);
    REQUIRE(stale.has_value());
    h[stale->first].output.value = stale->second;
    CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
  }
}

TEST_CASE("large history: 5000 operations over 30 keys", "[lin][random][large]") {
  GenParams p;
  p.seed = 42;
  p.ops = 5000;
  p.keys = 30;
  p.clients = 8;
  History h = Generate(p);
  CheckResult r = CheckHistory(h);
  INFO(r.ToString());
  REQUIRE(r.ok());
  CHECK(r.keys_checked == 30);
  const auto stale = FindStaleRead(h);
  REQUIRE(stale.has_value());
  h[stale->first].output.value = stale->second;
  CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
}

// n Puts of distinct values that all overlap, then two sequential reads of v0 and v1: no
// order works, and proving it takes about n * 2^(n-1) states.
History Explosive(int n, const std::string& key) {
  History h;
  for (int i = 0; i < n; ++i) {
    std::string value = "v";
    value += std::to_string(i);
    h.push_back(test::Put(static_cast<ClientId>(i + 1), 0, 100, key, std::move(value)));
  }
  h.push_back(test::Get(99, 101, 102, key, "v0"));
  h.push_back(test::Get(99, 103, 104, key, "v1"));
  return h;
}

TEST_CASE("search budget: an explosive history times out instead of hanging", "[lin][budget]") {
  History small = Explosive(8, "z");
  CheckResult decided = CheckHistory(small);
  CHECK(decided.verdict == Verdict::kNotLinearizable);
  CHECK(decided.states_explored > 8 * 64);  // the search really had to enumerate

  History big = Explosive(24, "z");
  big.push_back(test::Put(1, 0, 1, "a", "x"));  // a cheap key, checked first
  CheckOptions options;
  options.states_max = 20'000;
  CheckResult r = CheckHistory(big, options);
  INFO(r.ToString());
  CHECK(r.verdict == Verdict::kTimeout);
  CHECK_FALSE(r.ok());
  CHECK(r.key == "z");
  CHECK(r.keys_checked == 1);
  CHECK(r.states_explored <= options.states_max + 1);
  CHECK(r.explanation.find("search budget ran out") != std::string::npos);
}

}  // namespace
}  // namespace raft::lin
