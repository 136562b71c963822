// The optimized checker (memoization, subsumption, just-in-time unknown ops) against a naive
// one that tries every subset of unknown ops and every order, on small random histories
// with few distinct values, random outputs and many unknown outcomes.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lin_checker.h"

namespace raft::lin {
namespace {

// Whether `order` (indices into h) is a legal sequential execution respecting real time.
bool Legal(const History& h, const std::vector<std::size_t>& order) {
  for (std::size_t i = 0; i < order.size(); ++i) {
    for (std::size_t j = i + 1; j < order.size(); ++j) {
      const Operation& later = h[order[j]];
      if (later.known() && *later.complete_tick < h[order[i]].invoke_tick) return false;
    }
  }
  std::map<std::string, std::string> store;
  for (std::size_t i : order) {
    const Operation& op = h[i];
    auto it = store.find(op.input.key);
    std::optional<std::string> cur;
    if (it != store.end()) cur = it->second;
    switch (op.input.kind) {
      case OpKind::kGet:
        if (op.known() && op.output.value != cur) return false;
        break;
      case OpKind::kPut:
        store[op.input.key] = op.input.value;
        break;
      case OpKind::kDelete:
        store.erase(op.input.key);
        break;
      case OpKind::kCas:
        if (op.known() && op.output.ok != (cur == op.input.expected)) return false;
        if (cur == op.input.expected) store[op.input.key] = op.input.value;
        break;
    }
  }
  return true;
}

// Known ops must all appear; a known op completing before an omitted unknown op's
// invocation needs no special care, since omitted ops are simply absent.
bool NaiveLinearizable(const History& h) {
  std::vector<std::size_t> unknown, known;
  for (std::size_t i = 0; i < h.size(); ++i) (h[i].known() ? known : unknown).push_back(i);
  for (std::uint32_t mask = 0; mask < (1u << unknown.size()); ++mask) {
    std::vector<std::size_t> order = known;
    for (std::size_t b = 0; b < unknown.size(); ++b) {
      if (mask & (1u << b)) order.push_back(unknown[b]);
    }
    std::sort(order.begin(), order.end());
    do {
      if (Legal(h, order)) return true;
    } while (std::next_permutation(order.begin(), order.end()));
  }
  return false;
}

History RandomSmall(std::mt19937_64& rng) {
  auto pick = [&rng](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  const char* values[] = {"a", "b"};
  auto value = [&]() -> std::optional<std::string> {
    const int v = pick(3);
    return v == 2 ? std::nullopt : std::optional<std::string>(values[v]);
  };
  History h;
  const int n = 2 + pick(5);
  for (int i = 0; i < n; ++i) {
    Operation op;
    op.client_id = static_cast<ClientId>(i);
    op.invoke_tick = pick(8);
    op.complete_tick = op.invoke_tick + pick(4);
    const std::string key = pick(4) == 0 ? "y" : "x";
    switch (pick(4)) {
      case 0:
        op.input = Input::Get(key);
        op.output = Output::Value(value());
        break;
      case 1:
        op.input = Input::Put(key, values[pick(2)]);
        break;
      case 2:
        op.input = Input::Cas(key, value(), values[pick(2)]);
        op.output = Output::Swapped(pick(2) == 0);
        break;
      default:
        op.input = Input::Delete(key);
        break;
    }
    if (pick(10) < 3) op.complete_tick.reset();
    h.push_back(op);
  }
  return h;
}

TEST_CASE("optimized checker agrees with exhaustive search on small histories", "[lin][naive]") {
  std::mt19937_64 rng(2024);
  int linearizable = 0, not_linearizable = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    const History h = RandomSmall(rng);
    const bool expected = NaiveLinearizable(h);
    const CheckResult r = CheckHistory(h);
    if (expected != r.ok()) {
      std::string dump;
      for (const Operation& op : h) dump += DescribeOperation(op) + "\n";
      INFO("trial " << trial << "\n" << dump << r.ToString());
      REQUIRE(expected == r.ok());
    }
    REQUIRE(r.verdict != Verdict::kTimeout);
    (expected ? linearizable : not_linearizable)++;
  }
  // Both verdicts must be well represented, or the comparison proves little.
  CHECK(linearizable > 800);
  CHECK(not_linearizable > 800);
}

}  // namespace
}  // namespace raft::lin
