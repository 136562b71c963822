// Linearizability checker for the key-value register model of kv_history.h.
//
// How the simulator uses it:
//   1. Record every client request with a HistoryRecorder (kv_history.h): Invoke when the
//      request is issued, Complete when its reply is delivered to the client. Requests whose
//      reply never arrives (client timeout, crash of the serving node, partition until the
//      end of the run) are simply left pending: they become unknown-outcome operations.
//      Discard only requests that provably never took effect. Stamp events with one
//      monotonic counter (the simulation step is best; see "Time" in kv_history.h).
//   2. At the end of the run (or at any quiescent point) call
//        CheckResult r = CheckHistory(recorder.history());
//        if (!r.ok()) { print the seed and r.ToString(); fail; }
//      kTimeout means "undecided", not "wrong": report it, and consider shrinking the run
//      or raising CheckOptions::states_max for that seed.
//
// Method. Linearizability is local (Herlihy & Wing): a history is linearizable iff each
// per-key sub-history is, so the checker partitions by key and runs the WGL search with
// memoization (wgl_search.h) on each key, smallest sub-history first. An unknown-outcome
// operation completes at +infinity with an unconstrained output: it may take effect at any
// point after its invocation, or never. Unknown-outcome Gets are dropped up front.
//
// Cost. Exponential in the worst case (the problem is NP-complete), polynomial for bounded
// concurrency per key. Measured in a Debug build: 5000 operations over 30 keys with 8
// clients, 5-20% unknown outcomes, about 15 ms; 3000 operations on ONE key with 8 clients
// and 10-30% unknown outcomes, under 0.5 s. Many clients hammering one key (12+ concurrent
// operations on it) can exhaust the budget. The states_max budget bounds the worst case.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kv_history.h"

namespace raft::lin {

enum class Verdict {
  kLinearizable,
  kNotLinearizable,  // `key` names a key whose sub-history has no linearization
  kTimeout,          // the search budget ran out on `key`; nothing was decided
  kInvalidHistory,   // malformed input (complete_tick < invoke_tick): a recording bug
};

const char* VerdictName(Verdict verdict);

struct CheckOptions {
  // Budget: search configurations examined (memo lookups), summed over all keys. Checking
  // stops with kTimeout once exceeded. 1'000'000 takes 0.2-3 s in a Debug build; each
  // recorded configuration holds about (40 + ops_on_key / 8) bytes while its key is searched.
  std::uint64_t states_max = 1'000'000;
};

struct CheckResult {
  Verdict verdict = Verdict::kLinearizable;
  std::string key;          // kNotLinearizable / kTimeout: the key that failed; else empty
  std::string explanation;  // human-readable, multi-line; empty when linearizable
  // kNotLinearizable / kTimeout: indices into the checked history of the longest sequence of
  // `key`'s operations that could be linearized, in linearization order.
  std::vector<std::size_t> longest_prefix;
  std::uint64_t states_explored = 0;  // summed over the keys searched
  std::size_t keys_checked = 0;       // keys fully decided linearizable before returning

  bool ok() const { return verdict == Verdict::kLinearizable; }
  // "Linearizable (N keys, M states)" or the verdict, key and explanation.
  std::string ToString() const;
};

// Checks `history` (any order) against the register model, every key starting absent.
// Deterministic: the same history and options give the same result. Stops at the first
// key that is not linearizable or exhausts the budget.
CheckResult CheckHistory(const History& history, const CheckOptions& options = {});

}  // namespace raft::lin
