// CounterStateMachine: a replicated 64-bit counter, the whole application state of
// counterd.
//
// Commands (the bytes of a proposed entry) are text: "incr <delta>", delta a signed
// decimal. Apply answers each with the counter's value after it, in decimal. Entries
// that carry no command (the leader's term-start no-op, membership changes) answer "".
//
// Not durable on its own: AppliedIndex() is always 0, so after a restart raft::Node
// restores the latest snapshot and replays the log after it. A snapshot body is the
// counter value in decimal followed by "\n".
//
// Thread safety: raft::Node calls Apply, PrepareSnapshot, Restore and AppliedIndex on
// its apply thread; value() and applied() may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raft/state_machine.h"

namespace counter {

// Parses "incr <delta>". nullopt on anything else.
std::optional<std::int64_t> ParseIncr(std::string_view command);
std::string EncodeIncr(std::int64_t delta);

class CounterStateMachine final : public raft::StateMachine {
 public:
  void Apply(const std::vector<raft::Entry>& entries, std::vector<std::string>* results) override;
  raft::Index AppliedIndex() override { return 0; }
  raft::Result<std::unique_ptr<raft::SnapshotSource>> PrepareSnapshot() override;
  raft::Status Restore(raft::SnapshotReader* in, const raft::SnapshotMeta& meta) override;

  std::int64_t value() const { return value_.load(); }
  raft::Index applied() const { return applied_.load(); }

 private:
  std::atomic<std::int64_t> value_{0};
  std::atomic<raft::Index> applied_{0};
};

}  // namespace counter
