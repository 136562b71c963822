// SimKv: the full-node simulator's state machine, a map of string registers.
//
// Commands (the entry's data; written by EncodePut/EncodeCas/EncodeDelete):
//   "P\n<key>\n<value>"              set        result ""
//   "C\n<key>\n<e><expected>\n<value>" compare-and-set; <e> is '-' for "absent" (then
//                                     <expected> is empty) or '=': result "1" when it
//                                     swapped, "0" when not
//   "D\n<key>\n<op id>"              delete     result ""
// Every value the simulator writes is unique ("v<op id>"), so an acknowledged write can
// be found in the log later.
//
// Snapshots stream the map through the runtime's real snapshot path (SnapshotWriter into
// a snapshot file, read back by SnapshotReader), in many small Write calls. In memory
// only: AppliedIndex() is 0, so a restart rebuilds from the snapshot file and the log.
//
// `observer`, if set, sees every entry applied (the simulator's state-machine-safety
// check); entries must come in index order from the last one applied or restored
// (error() says when they did not). Not thread-safe: the simulator runs on one thread.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "raft/state_machine.h"

namespace raft::nodesim {

std::string EncodePut(const std::string& key, const std::string& value);
std::string EncodeCas(const std::string& key, const std::optional<std::string>& expected,
                      const std::string& value);
std::string EncodeDelete(const std::string& key, std::uint64_t op_id);

class SimKv final : public StateMachine {
 public:
  using Observer = std::function<void(const Entry&)>;
  explicit SimKv(Observer observer = nullptr) : observer_(std::move(observer)) {}

  void Apply(const std::vector<Entry>& entries, std::vector<std::string>* results) override;
  Index AppliedIndex() override { return 0; }
  Result<std::unique_ptr<SnapshotSource>> PrepareSnapshot() override;
  Status Restore(SnapshotReader* in, const SnapshotMeta& meta) override;

  // A group from state (Host::CreateGroupFromState at `at`): this state machine holds
  // its (empty) state as of `at`, so the first entry it gets is `at` + 1.
  void StartAt(Index at) { applied_ = at; }
  std::optional<std::string> Get(const std::string& key) const;
  const std::map<std::string, std::string>& data() const { return data_; }
  Index applied() const { return applied_; }
  std::uint64_t restores() const { return restores_; }
  // Non-empty once entries arrived out of order (a gap or a repeat): the simulator
  // reports it as a failure.
  const std::string& error() const { return error_; }

 private:
  Observer observer_;
  std::map<std::string, std::string> data_;
  Index applied_ = 0;
  std::uint64_t restores_ = 0;
  std::string error_;
};

}  // namespace raft::nodesim
