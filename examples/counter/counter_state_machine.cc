#include "counter_state_machine.h"

#include <charconv>

namespace counter {

namespace {

// The frozen state of one snapshot: just the value; written out on the snapshot thread.
class CounterSnapshot final : public raft::SnapshotSource {
 public:
  explicit CounterSnapshot(std::int64_t value) : value_(value) {}
  raft::Status WriteTo(raft::SnapshotWriter* out) override {
    return out->Write(std::to_string(value_) + "\n");
  }

 private:
  std::int64_t value_;
};

constexpr std::size_t kSnapshotBytesMax = 64;  // "-9223372036854775808\n" fits easily

}  // namespace

std::optional<std::int64_t> ParseIncr(std::string_view command) {
  constexpr std::string_view kPrefix = "incr ";
  if (command.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view num = command.substr(kPrefix.size());
  std::int64_t delta = 0;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), delta);
  if (ec != std::errc() || end != num.data() + num.size() || num.empty()) return std::nullopt;
  return delta;
}

std::string EncodeIncr(std::int64_t delta) { return "incr " + std::to_string(delta); }

void CounterStateMachine::Apply(const std::vector<raft::Entry>& entries,
                                std::vector<std::string>* results) {
  for (const raft::Entry& e : entries) {
    std::string result;
    if (e.type == raft::EntryType::kNormal && !e.data.empty()) {
      // A command that does not parse was proposed by a buggy client; every replica
      // skips it the same way, so the replicas stay identical.
      if (auto delta = ParseIncr(e.data)) {
        // Wrap-around on overflow, identically on every replica.
        value_.store(static_cast<std::int64_t>(static_cast<std::uint64_t>(value_.load()) +
                                               static_cast<std::uint64_t>(*delta)));
        result = std::to_string(value_.load());
      } else {
        result = "error: bad command";
      }
    }
    results->push_back(std::move(result));
    applied_.store(e.index);
  }
}

raft::Result<std::unique_ptr<raft::SnapshotSource>> CounterStateMachine::PrepareSnapshot() {
  return std::unique_ptr<raft::SnapshotSource>(new CounterSnapshot(value_.load()));
}

raft::Status CounterStateMachine::Restore(raft::SnapshotReader* in,
                                          const raft::SnapshotMeta& meta) {
  std::string body;
  char buf[kSnapshotBytesMax];
  for (;;) {
    auto n = in->Read(buf, sizeof(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    body.append(buf, *n);
    if (body.size() > kSnapshotBytesMax)
      return raft::Status(raft::ErrorCode::kCorruption, "counter snapshot is too long");
  }
  if (body.empty() || body.back() != '\n')
    return raft::Status(raft::ErrorCode::kCorruption, "counter snapshot lacks its newline");
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(body.data(), body.data() + body.size() - 1, value);
  if (ec != std::errc() || end != body.data() + body.size() - 1)
    return raft::Status(raft::ErrorCode::kCorruption, "counter snapshot is not a number");
  value_.store(value);
  applied_.store(meta.index);
  return raft::Status::Ok();
}

}  // namespace counter
