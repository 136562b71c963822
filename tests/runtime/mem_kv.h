// MemKv: a tiny in-memory key-value state machine for runtime tests. Commands are
// "key=value"; Apply returns the previous value. Snapshots stream the map.
// Not durable: AppliedIndex() is always 0, so a restart rebuilds from snapshot + log.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "raft/state_machine.h"

namespace raft::test {

class MemKv final : public StateMachine {
 public:
  void Apply(const std::vector<Entry>& entries, std::vector<std::string>* results) override;
  Index AppliedIndex() override { return 0; }
  Result<std::unique_ptr<SnapshotSource>> PrepareSnapshot() override;
  Status Restore(SnapshotReader* in, const SnapshotMeta& meta) override;

  // Replaces the state by `data` as of index `applied` (a group from state's, as a
  // split's new range holds its keys before its group starts).
  void Load(std::map<std::string, std::string> data, Index applied);
  std::string Get(const std::string& k) const;
  std::size_t Size() const;
  Index applied() const;
  std::size_t restores() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> data_;
  Index applied_ = 0;
  std::size_t restores_ = 0;
};

}  // namespace raft::test
