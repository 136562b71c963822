#include "lin_checker.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "wgl_search.h"

namespace raft::lin {
namespace {

using internal::KeyOp;
using internal::SearchOutcome;
using internal::SearchResult;
using internal::ValueId;

constexpr std::size_t kPrefixShownMax = 8;
constexpr std::size_t kCandidatesShownMax = 8;

// One key's sub-history: indices into the checked history, the interned ops and the values.
struct KeyHistory {
  std::string_view key;
  std::vector<std::size_t> index;       // KeyOp i is history[index[i]]
  std::vector<KeyOp> ops;               // same order as index
  std::vector<std::string_view> value;  // ValueId v >= 1 is value[v - 1]
  std::map<std::string_view, ValueId> ids;

  // `v` must outlive this object: ids and value keep views into it.
  ValueId Intern(const std::string& v) {
    auto [it, inserted] = ids.try_emplace(v, static_cast<ValueId>(value.size() + 1));
    if (inserted) value.push_back(v);
    return it->second;
  }
  ValueId Intern(const std::optional<std::string>& v) {
    return v ? Intern(*v) : internal::kAbsentId;
  }
  std::string Describe(ValueId id) const {
    if (id == internal::kAbsentId) return DescribeValue(std::nullopt);
    return DescribeValue(std::string(value[id - 1]));
  }
};

void Add(KeyHistory& kh, const Operation& op, std::size_t index) {
  KeyOp k;
  k.kind = op.input.kind;
  k.invoke_tick = op.invoke_tick;
  k.known = op.known();
  k.complete_tick = k.known ? *op.complete_tick : internal::kTickInfinity;
  if (k.kind == OpKind::kPut || k.kind == OpKind::kCas) k.arg = kh.Intern(op.input.value);
  if (k.kind == OpKind::kCas) k.expected = kh.Intern(op.input.expected);
  if (k.known && k.kind == OpKind::kGet) k.observed = kh.Intern(op.output.value);
  if (k.known) k.ok = op.output.ok;
  kh.index.push_back(index);
  kh.ops.push_back(k);
}

// Why `op` cannot be the next operation after a prefix leaving the register at `state`.
std::string WhyNot(const KeyHistory& kh, const KeyOp& op, ValueId state) {
  if (internal::Step(op, state)) return "fits here, but every continuation fails later";
  if (op.kind == OpKind::kGet) return "would read " + kh.Describe(state);
  return state == op.expected ? "would succeed" : "would fail";
}

std::string Explain(const History& history, const KeyHistory& kh, const SearchResult& r) {
  const std::vector<std::size_t>& prefix = r.longest_prefix;
  std::string s = "key " + DescribeValue(std::string(kh.key)) + ": at most " +
                  std::to_string(prefix.size()) + " of " + std::to_string(kh.ops.size()) +
                  " operations can be linearized. Longest linearizable prefix";
  const std::size_t skip = prefix.size() > kPrefixShownMax ? prefix.size() - kPrefixShownMax : 0;
  s += skip ? " (first " + std::to_string(skip) + " not shown):\n" : ":\n";
  for (std::size_t i = skip; i < prefix.size(); ++i) {
    s += "  " + std::to_string(i + 1) + ". " + DescribeOperation(history[kh.index[prefix[i]]]) +
         "\n";
  }
  if (prefix.empty()) s += "  (none)\n";
  s += "then the value is " + kh.Describe(r.state_after_prefix);
  if (r.outcome == SearchOutcome::kBudgetExhausted) {
    return s + " and the search budget ran out after " + std::to_string(r.states_explored) +
           " states.\n";
  }
  // Candidates for the next step: not yet linearized, invoked no later than the earliest
  // completion among the remaining known operations.
  std::vector<bool> done(kh.ops.size(), false);
  for (std::size_t i : prefix) done[i] = true;
  Tick horizon = internal::kTickInfinity;
  for (std::size_t i = 0; i < kh.ops.size(); ++i) {
    if (!done[i]) horizon = std::min(horizon, kh.ops[i].complete_tick);
  }
  s += " and no remaining operation can go next:\n";
  std::size_t shown = 0, candidates = 0;
  for (std::size_t i = 0; i < kh.ops.size(); ++i) {
    if (done[i] || kh.ops[i].invoke_tick > horizon) continue;
    ++candidates;
    if (shown++ >= kCandidatesShownMax) continue;
    s += "  " + DescribeOperation(history[kh.index[i]]) + "  -- " +
         WhyNot(kh, kh.ops[i], r.state_after_prefix) + "\n";
  }
  if (shown > kCandidatesShownMax) {
    s += "  (" + std::to_string(candidates - kCandidatesShownMax) + " more)\n";
  }
  return s;
}

}  // namespace

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLinearizable:
      return "Linearizable";
    case Verdict::kNotLinearizable:
      return "NotLinearizable";
    case Verdict::kTimeout:
      return "Timeout";
    case Verdict::kInvalidHistory:
      return "InvalidHistory";
  }
  return "?";
}

std::string CheckResult::ToString() const {
  std::string s = VerdictName(verdict);
  if (ok()) {
    return s + " (" + std::to_string(keys_checked) + " keys, " + std::to_string(states_explored) +
           " states)";
  }
  if (!key.empty()) s += " on key " + DescribeValue(key);
  return s + "\n" + explanation;
}

CheckResult CheckHistory(const History& history, const CheckOptions& options) {
  CheckResult result;
  std::map<std::string_view, KeyHistory> by_key;
  for (std::size_t i = 0; i < history.size(); ++i) {
    const Operation& op = history[i];
    if (op.known() && *op.complete_tick < op.invoke_tick) {
      result.verdict = Verdict::kInvalidHistory;
      result.explanation = "operation " + std::to_string(i) +
                           " completes before it is invoked: " + DescribeOperation(op) + "\n";
      return result;
    }
    if (!op.known() && op.input.kind == OpKind::kGet) continue;  // constrains nothing
    KeyHistory& kh = by_key[op.input.key];
    kh.key = op.input.key;
    Add(kh, op, i);
  }
  // Smallest sub-histories first: cheap verdicts before the budget can run out.
  std::vector<const KeyHistory*> order;
  for (const auto& [key, kh] : by_key) order.push_back(&kh);
  std::stable_sort(order.begin(), order.end(), [](const KeyHistory* a, const KeyHistory* b) {
    return a->ops.size() < b->ops.size();
  });
  for (const KeyHistory* kh : order) {
    const std::uint64_t budget_left = options.states_max - result.states_explored;
    SearchResult r = internal::SearchKey(kh->ops, budget_left);
    result.states_explored += r.states_explored;
    if (r.outcome == SearchOutcome::kLinearizable) {
      ++result.keys_checked;
      continue;
    }
    result.verdict = r.outcome == SearchOutcome::kNotLinearizable ? Verdict::kNotLinearizable
                                                                  : Verdict::kTimeout;
    result.key = std::string(kh->key);
    result.explanation = Explain(history, *kh, r);
    for (std::size_t i : r.longest_prefix) result.longest_prefix.push_back(kh->index[i]);
    return result;
  }
  return result;
}

}  // namespace raft::lin
