// Internal to raft_lin: the Wing-Gong/Lowe (WGL) linearizability search for ONE key's
// sub-history, over interned values. Callers use lin_checker.h; this header exists so the
// search and the model step stay small and separately readable.
//
// The search follows Lowe, "Testing for linearizability" (2017), and the porcupine checker:
// call and return events sorted by time form a doubly linked list; the search repeatedly
// picks a call that precedes the earliest pending return, applies it to the model, and
// removes ("lifts") the call and its return from the list; when it meets a return whose call
// is not linearized it backtracks. (linearized-set, model state) pairs already explored are
// memoized, which makes the search polynomial for bounded concurrency.
//
// Unknown-outcome ops never complete, so each stays concurrent with everything after it;
// plain WGL is exponential in their number. Four exact reductions (wgl_search.cc) keep them
// cheap, and are cross-checked against exhaustive search in lin_naive_test.cc:
//   - just-in-time: an unknown op is tried only where it changes the value and some op in
//     the current window needs that change;
//   - subsumption: a configuration is skipped if one with the same known ops and value but
//     a subset of its unknown ops was already explored;
//   - never-observed values (no Get reads them, no Cas expects them) are merged into one;
//   - unknown ops with the same effect are tried in invocation order only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "kv_history.h"

namespace raft::lin::internal {

// Interned register values of one key: 0 is "absent", 1.. are distinct strings.
using ValueId = std::int32_t;
constexpr ValueId kAbsentId = 0;
constexpr Tick kTickInfinity = std::numeric_limits<Tick>::max();

// One operation of a single key, with values interned.
struct KeyOp {
  OpKind kind = OpKind::kGet;
  Tick invoke_tick = 0;
  Tick complete_tick = kTickInfinity;  // kTickInfinity iff !known
  bool known = false;                  // false: output unconstrained
  ValueId arg = kAbsentId;             // Put/Cas: the value written
  ValueId expected = kAbsentId;        // Cas: the value compared against
  ValueId observed = kAbsentId;        // known Get: the value read
  bool ok = true;                      // known Cas: whether it swapped
};

// Applies op to a register holding `state`. Returns the new state, or nullopt if the op's
// recorded output cannot be produced from `state`. Unknown-outcome ops always apply.
std::optional<ValueId> Step(const KeyOp& op, ValueId state);

enum class SearchOutcome { kLinearizable, kNotLinearizable, kBudgetExhausted };

struct SearchResult {
  SearchOutcome outcome = SearchOutcome::kLinearizable;
  // The longest sequence of ops (indices into the input) that could be linearized, in
  // linearization order, and the register value after it. Filled for every outcome. A value
  // no op observes may be reported as another such value (they are merged).
  std::vector<std::size_t> longest_prefix;
  ValueId state_after_prefix = kAbsentId;
  std::uint64_t states_explored = 0;  // configurations looked up in the memo
};

// Decides whether `ops` (any order; the register starts absent) is linearizable. Success as
// soon as every known-outcome op is linearized: the remaining unknown ones are placed after
// them (equivalently, never took effect). Gives up with kBudgetExhausted after `states_max`
// memo lookups. Memory: O(states_explored * ops.size() / 64) words. Time: O(states_explored *
// window), where the window holds the concurrent known ops plus all pending unknown ones.
SearchResult SearchKey(const std::vector<KeyOp>& ops, std::uint64_t states_max);

}  // namespace raft::lin::internal
