#include "wgl_search.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace raft::lin::internal {
namespace {

constexpr std::int32_t kNil = -1;

std::uint64_t SplitMix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Configurations already explored, with subsumption for unknown-outcome ops. A
// configuration is (linearized set, state); split the set into its known part K and its
// unknown part U. If (K, v, U0) was explored, then (K, v, U) with U0 a subset of U needs no
// search: unknown ops never have to be linearized and never block another op in real time,
// so any completion from (K, v, U) also works from (K, v, U0). Plain WGL memoization is the
// case U0 == U. Without subsumption, every unknown write stays concurrent with the rest of
// the history and the search blows up exponentially in their number.
class Memo {
 public:
  explicit Memo(std::vector<std::uint64_t> known_mask) : known_mask_(std::move(known_mask)) {}

  // Records (bits, state) unless an explored configuration subsumes it; returns whether it
  // was recorded. `hash` must depend only on the known part of `bits` and on `state`.
  bool Insert(std::uint64_t hash, const std::vector<std::uint64_t>& bits, ValueId state) {
    std::vector<Entry>& bucket = buckets_[hash];
    for (const Entry& e : bucket) {
      if (e.state == state && Subsumes(e.bits, bits)) return false;
    }
    bucket.push_back(Entry{state, bits});
    return true;
  }

 private:
  struct Entry {
    ValueId state;
    std::vector<std::uint64_t> bits;  // linearized set, bitset over op indices
  };

  // Same known ops, and old's unknown ops are a subset of now's.
  bool Subsumes(const std::vector<std::uint64_t>& old, const std::vector<std::uint64_t>& now) {
    for (std::size_t w = 0; w < old.size(); ++w) {
      if ((old[w] & ~now[w]) != 0 || (now[w] & ~old[w] & known_mask_[w]) != 0) return false;
    }
    return true;
  }

  std::vector<std::uint64_t> known_mask_;
  std::unordered_map<std::uint64_t, std::vector<Entry>> buckets_;
};

// The event list: nodes [0, 2n) are call/return events in time order, node 2n is the head
// sentinel. Lifting a call removes it and its return; unlifting restores both (LIFO only).
class EventList {
 public:
  explicit EventList(const std::vector<KeyOp>& ops) {
    const std::size_t n = ops.size();
    struct Event {
      Tick tick;
      bool is_return;  // calls sort before returns at equal ticks: equal stamps overlap
      std::size_t op;
    };
    std::vector<Event> events;
    events.reserve(2 * n);
    for (std::size_t i = 0; i < n; ++i) {
      events.push_back({ops[i].invoke_tick, false, i});
      events.push_back({ops[i].complete_tick, true, i});
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      return std::tie(a.tick, a.is_return, a.op) < std::tie(b.tick, b.is_return, b.op);
    });
    const auto count = static_cast<std::int32_t>(2 * n);
    head_ = count;
    next_.assign(count + 1, kNil);
    prev_.assign(count + 1, kNil);
    op_.assign(count, 0);
    match_.assign(count, kNil);
    std::vector<std::int32_t> call_node(n, kNil);
    std::int32_t last = head_;
    for (std::int32_t node = 0; node < count; ++node) {
      const Event& e = events[node];
      op_[node] = e.op;
      if (e.is_return) {
        match_[call_node[e.op]] = node;
      } else {
        call_node[e.op] = node;
      }
      next_[last] = node;
      prev_[node] = last;
      last = node;
    }
  }

  std::int32_t first() const { return next_[head_]; }
  std::int32_t next(std::int32_t node) const { return next_[node]; }
  bool is_call(std::int32_t node) const { return match_[node] != kNil; }
  std::size_t op(std::int32_t node) const { return op_[node]; }

  void Lift(std::int32_t call) {
    Unlink(call);
    Unlink(match_[call]);
  }
  void Unlift(std::int32_t call) {
    Relink(match_[call]);
    Relink(call);
  }

 private:
  void Unlink(std::int32_t node) {
    next_[prev_[node]] = next_[node];
    if (next_[node] != kNil) prev_[next_[node]] = prev_[node];
  }
  void Relink(std::int32_t node) {
    next_[prev_[node]] = node;
    if (next_[node] != kNil) prev_[next_[node]] = node;
  }

  std::int32_t head_ = 0;
  std::vector<std::int32_t> next_, prev_;  // indexed by node, kNil at the ends
  std::vector<std::size_t> op_;            // node -> op index
  std::vector<std::int32_t> match_;        // call node -> its return node; kNil for returns
};

// Just-in-time rule for an unknown-outcome op u taking the register from `before` to
// `after`: try u only if it changes the value and some op x in the current window (the calls
// ahead of the earliest pending return) benefits from the change: a known x that rejects
// `before` but accepts `after`, or an unknown Cas expecting `after`. Sound: given any
// linearization, an unknown op whose successor y does not benefit can be moved after y (y
// leaves the value alone and accepts `before` too), dropped (y overwrites, or u changes
// nothing), or y itself dropped (an unknown Cas failing either way); repeating this yields a
// linearization obeying the rule, with y in the window when u is placed. Without the rule,
// unknown writes (concurrent with everything after them) make the search exponential.
//
// This class caches, per configuration, which `after` values some x would benefit from.
// O(window) to compute, O(1) per query; Invalidate() whenever the configuration changes.
class JustInTime {
 public:
  explicit JustInTime(std::size_t value_count) : mark_(value_count, 0) {}

  void Invalidate() { fresh_ = false; }

  bool Allows(const EventList& list, const std::vector<KeyOp>& ops, ValueId before, ValueId after) {
    if (before == after) return false;
    if (!fresh_) Compute(list, ops, before);
    return any_change_ || mark_[after] == generation_;
  }

 private:
  void Compute(const EventList& list, const std::vector<KeyOp>& ops, ValueId before) {
    ++generation_;
    any_change_ = false;
    for (std::int32_t x = list.first(); x != kNil && list.is_call(x); x = list.next(x)) {
      const KeyOp& op = ops[list.op(x)];
      if (!op.known) {
        if (op.kind == OpKind::kCas) mark_[op.expected] = generation_;
      } else if (!Step(op, before)) {  // only Gets and Cas can reject a value
        if (op.kind == OpKind::kGet) mark_[op.observed] = generation_;
        if (op.kind == OpKind::kCas && op.ok) mark_[op.expected] = generation_;
        if (op.kind == OpKind::kCas && !op.ok) any_change_ = true;  // before == expected
      }
    }
    fresh_ = true;
  }

  std::vector<std::uint32_t> mark_;  // mark_[v] == generation_: some x benefits from v
  std::uint32_t generation_ = 0;
  bool any_change_ = false;  // some x benefits from any value other than `before`
  bool fresh_ = false;
};

// Values no op ever observes (no Get reads them, no Cas expects them) are interchangeable:
// Step treats them alike. Merging them into one representative shrinks the search.
std::vector<KeyOp> MergeUnobservedValues(std::vector<KeyOp> ops) {
  ValueId max_value = kAbsentId;
  for (const KeyOp& op : ops) max_value = std::max({max_value, op.arg, op.expected, op.observed});
  std::vector<bool> observed(static_cast<std::size_t>(max_value) + 1, false);
  observed[kAbsentId] = true;
  for (const KeyOp& op : ops) {
    if (op.kind == OpKind::kGet && op.known) observed[op.observed] = true;
    if (op.kind == OpKind::kCas) observed[op.expected] = true;
  }
  ValueId representative = kAbsentId;
  for (KeyOp& op : ops) {
    if (op.kind != OpKind::kPut && op.kind != OpKind::kCas) continue;
    if (observed[op.arg]) continue;
    if (representative == kAbsentId) representative = op.arg;
    op.arg = representative;
  }
  return ops;
}

// Unknown ops with the same effect (kind, arg, expected) are interchangeable once both are
// invoked, so only the earliest-invoked unused one of each class is ever tried. Returns, for
// each op, the previous op of its class in (invoke_tick, index) order, or kNone.
constexpr std::size_t kNone = static_cast<std::size_t>(-1);
std::vector<std::size_t> TwinPredecessors(const std::vector<KeyOp>& ops) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (!ops[i].known) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&ops](std::size_t a, std::size_t b) {
    return ops[a].invoke_tick < ops[b].invoke_tick;
  });
  std::map<std::tuple<OpKind, ValueId, ValueId>, std::size_t> last;
  std::vector<std::size_t> pred(ops.size(), kNone);
  for (std::size_t i : order) {
    const KeyOp& op = ops[i];
    const auto cls = std::make_tuple(op.kind, op.kind == OpKind::kDelete ? kAbsentId : op.arg,
                                     op.kind == OpKind::kCas ? op.expected : kAbsentId);
    auto [it, inserted] = last.try_emplace(cls, i);
    if (!inserted) pred[i] = std::exchange(it->second, i);
  }
  return pred;
}

}  // namespace

std::optional<ValueId> Step(const KeyOp& op, ValueId state) {
  switch (op.kind) {
    case OpKind::kGet:
      if (op.known && op.observed != state) return std::nullopt;
      return state;
    case OpKind::kPut:
      return op.arg;
    case OpKind::kDelete:
      return kAbsentId;
    case OpKind::kCas:
      if (state == op.expected) {
        if (op.known && !op.ok) return std::nullopt;
        return op.arg;
      }
      if (op.known && op.ok) return std::nullopt;
      return state;
  }
  return std::nullopt;
}

SearchResult SearchKey(const std::vector<KeyOp>& input, std::uint64_t states_max) {
  const std::vector<KeyOp> ops = MergeUnobservedValues(input);
  const std::vector<std::size_t> twin = TwinPredecessors(ops);
  const std::size_t n = ops.size();
  SearchResult result;
  const std::size_t words = (n + 63) / 64;
  std::vector<std::uint64_t> zobrist(n, 0);  // 0 for unknown ops: see Memo
  std::vector<std::uint64_t> known_mask(words, 0);
  std::size_t remaining_known = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!ops[i].known) continue;
    zobrist[i] = SplitMix64(i);
    known_mask[i / 64] |= std::uint64_t{1} << (i % 64);
    ++remaining_known;
  }
  ValueId max_value = kAbsentId;
  for (const KeyOp& op : ops) max_value = std::max({max_value, op.arg, op.expected, op.observed});
  EventList list(ops);
  Memo memo(std::move(known_mask));
  JustInTime jit(static_cast<std::size_t>(max_value) + 1);
  std::vector<std::uint64_t> linearized(words, 0);
  std::uint64_t set_hash = 0;  // Zobrist hash of the known ops in `linearized`
  ValueId state = kAbsentId;

  struct Frame {
    std::int32_t call;  // the lifted call node
    ValueId state_before;
  };
  std::vector<Frame> stack;
  // The longest prefix found so far; best[0, common) == ops of stack[0, common).
  std::vector<std::size_t>& best = result.longest_prefix;
  std::size_t common = 0;
  auto toggle = [&](std::size_t op) {
    linearized[op / 64] ^= std::uint64_t{1} << (op % 64);
    set_hash ^= zobrist[op];
  };

  std::int32_t entry = list.first();
  while (remaining_known > 0) {
    if (entry == kNil) {
      // A pending known op always leaves its return in the list ahead of the end.
      std::fprintf(stderr, "SearchKey: event list exhausted with known ops pending\n");
      std::abort();
    }
    if (!list.is_call(entry)) {
      // The earliest pending return: its op must have been linearized before here. Undo.
      if (stack.empty()) {
        result.outcome = SearchOutcome::kNotLinearizable;
        return result;
      }
      const Frame top = stack.back();
      stack.pop_back();
      common = std::min(common, stack.size());
      const std::size_t op = list.op(top.call);
      state = top.state_before;
      toggle(op);
      remaining_known += ops[op].known;
      list.Unlift(top.call);
      jit.Invalidate();
      entry = list.next(top.call);
      continue;
    }
    const std::size_t op = list.op(entry);
    const std::optional<ValueId> after = Step(ops[op], state);
    const bool twin_first =
        twin[op] == kNone || (linearized[twin[op] / 64] >> (twin[op] % 64) & 1) != 0;
    if (after && (ops[op].known || (twin_first && jit.Allows(list, ops, state, *after)))) {
      toggle(op);
      const std::uint64_t hash = set_hash ^ SplitMix64(static_cast<std::uint64_t>(*after) + n);
      if (++result.states_explored > states_max) {
        result.outcome = SearchOutcome::kBudgetExhausted;
        return result;
      }
      if (memo.Insert(hash, linearized, *after)) {
        stack.push_back({entry, state});
        state = *after;
        remaining_known -= ops[op].known;
        list.Lift(entry);
        jit.Invalidate();
        if (stack.size() > best.size()) {
          // Copy only the part of the stack that differs from the previous best.
          best.resize(common);
          for (std::size_t i = common; i < stack.size(); ++i)
            best.push_back(list.op(stack[i].call));
          common = stack.size();
          result.state_after_prefix = state;
        }
        entry = list.first();
        continue;
      }
      toggle(op);  // explored already (or subsumed): not linearized after all
    }
    entry = list.next(entry);
  }
  result.outcome = SearchOutcome::kLinearizable;
  return result;
}

}  // namespace raft::lin::internal
