// Histories of a key-value register service, as recorded by the simulator and fed to the
// linearizability checker (lin_checker.h). Plain value types plus a small recorder.
//
// Model. Each key is an independent register holding a string or nothing ("absent"):
//   Get(k)            -> the current value, or absent
//   Put(k, v)         -> sets k to v; output carries no information (an acknowledgement)
//   Cas(k, e, v)      -> if the current value equals e (e == nullopt: k must be absent),
//                        sets k to v and returns ok = true; otherwise changes nothing and
//                        returns ok = false
//   Delete(k)         -> makes k absent; output carries no information
//
// Time. invoke_tick and complete_tick are integers from one monotonic clock shared by all
// clients (virtual ticks, or better the simulator's step counter). Operation A precedes B in
// real time iff A.complete_tick < B.invoke_tick (strictly). Equal stamps count as concurrent,
// which never produces a false alarm but may hide one; if several events share a tick, stamp
// them with a per-event step counter instead.
//
// Outcomes. An operation has exactly one of:
//   - a definite outcome: the client received a reply (complete_tick and output set);
//   - an unknown outcome: the client timed out, its node crashed, the reply was lost...
//     (complete_tick == nullopt). It may have taken effect at any point after its invocation,
//     or never; its output is unconstrained. Unknown-outcome Gets constrain nothing and may be
//     omitted from the history.
//   - a definite non-outcome: the request was rejected before it could have been proposed
//     (e.g. kNotLeader from a node that never appended it). Leave such an operation out of
//     the history (HistoryRecorder::Discard). If in doubt, record it as unknown: that is
//     always sound, only weaker.
// A retry of an operation after a timeout is a new operation (new invoke tick); the timed out
// attempt stays in the history as unknown. Note that a retried Put is not idempotent in
// this model if something else wrote in between; that is the point of checking it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace raft::lin {

using ClientId = std::uint64_t;
using Tick = std::int64_t;

enum class OpKind : std::uint8_t { kGet, kPut, kCas, kDelete };

const char* OpKindName(OpKind kind);

// What the client asked for.
struct Input {
  OpKind kind = OpKind::kGet;
  std::string key;
  std::string value;                    // Put: the value; Cas: the new value; else unused
  std::optional<std::string> expected;  // Cas only: expected value, nullopt = "key absent"

  static Input Get(std::string key);
  static Input Put(std::string key, std::string value);
  static Input Cas(std::string key, std::optional<std::string> expected, std::string value);
  static Input Delete(std::string key);

  bool operator==(const Input&) const = default;
};

// What the client observed. Only the field meaningful for the input's kind is checked.
struct Output {
  std::optional<std::string> value;  // Get: the value read, nullopt = absent
  bool ok = true;                    // Cas: whether it swapped; ignored for Get/Put/Delete

  static Output Value(std::optional<std::string> value);  // reply to a Get
  static Output Swapped(bool ok);                         // reply to a Cas
  static Output Ack();                                    // reply to a Put or Delete

  bool operator==(const Output&) const = default;
};

struct Operation {
  ClientId client_id = 0;  // informative only (explanations); not a constraint
  Tick invoke_tick = 0;
  std::optional<Tick> complete_tick;  // nullopt: unknown outcome (completes at +infinity)
  Input input;
  Output output;  // ignored when complete_tick is nullopt

  bool known() const { return complete_tick.has_value(); }
};

using History = std::vector<Operation>;

// One line, e.g. `c3 [10,14] Cas("k", "a" -> "b") = ok` or `c1 [7,?] Put("k", "v") = ?`.
// Values longer than 24 bytes are abbreviated.
std::string DescribeOperation(const Operation& op);
// `"abc"` or `<absent>`.
std::string DescribeValue(const std::optional<std::string>& value);

// Builds a History while the simulator runs. Typical use, one operation per client request:
//   OpId id = recorder.Invoke(client, step, Input::Put("k", "v"));   // when the request is sent
//   recorder.Complete(id, step, Output::Ack());                      // when the reply arrives
//   recorder.Discard(id);     // only if it provably never took effect (see "Outcomes" above)
// Anything neither completed nor discarded when History() is called is recorded as an
// unknown outcome. Misuse (unknown id, completing twice, completing before invoking) is a bug
// in the caller and aborts with a message. Not thread-safe (the simulator is single-threaded).
class HistoryRecorder {
 public:
  using OpId = std::size_t;

  OpId Invoke(ClientId client_id, Tick invoke_tick, Input input);
  void Complete(OpId id, Tick complete_tick, Output output);
  void Discard(OpId id);

  // All non-discarded operations, in invocation order. O(n) copy; the recorder stays usable.
  History history() const;
  std::size_t pending_count() const;  // invoked, neither completed nor discarded

 private:
  struct Slot {
    Operation op;
    bool discarded = false;
  };
  Slot& SlotFor(OpId id, const char* what);

  std::vector<Slot> slots_;  // indexed by OpId
};

}  // namespace raft::lin
