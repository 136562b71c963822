#include "kv_history.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace raft::lin {
namespace {

constexpr std::size_t kValueShownBytesMax = 24;

[[noreturn]] void Die(const char* what, std::size_t id) {
  std::fprintf(stderr, "HistoryRecorder misuse: %s (op id %zu)\n", what, id);
  std::abort();
}

}  // namespace

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kGet:
      return "Get";
    case OpKind::kPut:
      return "Put";
    case OpKind::kCas:
      return "Cas";
    case OpKind::kDelete:
      return "Delete";
  }
  return "?";
}

Input Input::Get(std::string key) { return Input{OpKind::kGet, std::move(key), {}, {}}; }

Input Input::Put(std::string key, std::string value) {
  return Input{OpKind::kPut, std::move(key), std::move(value), {}};
}

Input Input::Cas(std::string key, std::optional<std::string> expected, std::string value) {
  return Input{OpKind::kCas, std::move(key), std::move(value), std::move(expected)};
}

Input Input::Delete(std::string key) { return Input{OpKind::kDelete, std::move(key), {}, {}}; }

Output Output::Value(std::optional<std::string> value) { return Output{std::move(value), true}; }
Output Output::Swapped(bool ok) { return Output{std::nullopt, ok}; }
Output Output::Ack() { return Output{std::nullopt, true}; }

std::string DescribeValue(const std::optional<std::string>& value) {
  if (!value) return "<absent>";
  if (value->size() <= kValueShownBytesMax) return "\"" + *value + "\"";
  return "\"" + value->substr(0, kValueShownBytesMax) + "...\"";
}

std::string DescribeOperation(const Operation& op) {
  const Input& in = op.input;
  // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict inside
  // `"literal" + std::string` (GCC bug 105329).
  std::string s = "c";
  s += std::to_string(op.client_id);
  s += " [";
  s += std::to_string(op.invoke_tick);
  s += ',';
  s += op.known() ? std::to_string(*op.complete_tick) : "?";
  s += "] ";
  s += OpKindName(in.kind);
  s += '(';
  s += DescribeValue(in.key);
  switch (in.kind) {
    case OpKind::kGet:
    case OpKind::kDelete:
      s += ")";
      break;
    case OpKind::kPut:
      s += ", " + DescribeValue(in.value) + ")";
      break;
    case OpKind::kCas:
      s += ", " + DescribeValue(in.expected) + " -> " + DescribeValue(in.value) + ")";
      break;
  }
  if (!op.known()) return s + " = ?";
  switch (in.kind) {
    case OpKind::kGet:
      return s + " = " + DescribeValue(op.output.value);
    case OpKind::kCas:
      return s + (op.output.ok ? " = ok" : " = failed");
    case OpKind::kPut:
    case OpKind::kDelete:
      break;
  }
  return s + " = ack";
}

HistoryRecorder::OpId HistoryRecorder::Invoke(ClientId client_id, Tick invoke_tick, Input input) {
  Slot slot;
  slot.op.client_id = client_id;
  slot.op.invoke_tick = invoke_tick;
  slot.op.input = std::move(input);
  slots_.push_back(std::move(slot));
  return slots_.size() - 1;
}

HistoryRecorder::Slot& HistoryRecorder::SlotFor(OpId id, const char* what) {
  if (id >= slots_.size()) Die(what, id);
  Slot& slot = slots_[id];
  if (slot.discarded || slot.op.known()) Die(what, id);
  return slot;
}

void HistoryRecorder::Complete(OpId id, Tick complete_tick, Output output) {
  Slot& slot = SlotFor(id, "Complete of an unknown, completed or discarded operation");
  if (complete_tick < slot.op.invoke_tick) Die("Complete before Invoke", id);
  slot.op.complete_tick = complete_tick;
  slot.op.output = std::move(output);
}

void HistoryRecorder::Discard(OpId id) {
  SlotFor(id, "Discard of an unknown, completed or discarded operation").discarded = true;
}

History HistoryRecorder::history() const {
  History out;
  out.reserve(slots_.size());
  for (const Slot& slot : slots_) {
    if (!slot.discarded) out.push_back(slot.op);
  }
  return out;
}

std::size_t HistoryRecorder::pending_count() const {
  std::size_t n = 0;
  for (const Slot& slot : slots_) n += !slot.discarded && !slot.op.known();
  return n;
}

}  // namespace raft::lin
