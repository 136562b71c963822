// SimEnv: the runtime::Env of one simulated process (runtime/env.h). Its lanes are the
// SimWorld's lanes of its slot and incarnation; its clock and randomness are the world's;
// its file system is a view of the slot's SimDisk; its transport a SimNetwork endpoint.
// Once the world kills the incarnation (a crash), every call is inert: posts are dropped,
// Shutdown returns at once, and no `last` work runs (a dead process does nothing more).
#pragma once

#include "runtime/env.h"
#include "sim_world.h"

namespace raft::base {
class FileSystem;
}

namespace raft::nodesim {

class SimNetwork;

class SimEnv final : public runtime::Env {
 public:
  // Borrowed: world, network and fs outlive the Env. Each tick period is drawn within
  // +-drift_pct percent (clocks that run at different rates).
  SimEnv(SimWorld* world, SimNetwork* network, int slot, base::FileSystem* fs, int drift_pct);
  ~SimEnv() override;

  Clock::time_point Now() override { return world_->Now(); }
  std::uint64_t Random64() override { return world_->rng().Next(); }
  base::FileSystem* file_system() override { return fs_; }
  void Start(base::ThreadChecker* const checkers[runtime::kLanes]) override;
  void Post(Lane lane, std::function<void()> work) override;
  void StartTicker(std::chrono::milliseconds period, std::function<void()> tick) override;
  void Shutdown(Lane lane, std::function<void()> last) override;
  std::unique_ptr<runtime::MessageTransport> NewTransport(
      const runtime::TransportOptions& options, runtime::TransportHandler* handler,
      runtime::SnapshotStore* snapshots) override;

  bool alive() const { return world_->Incarnation(slot_) == incarnation_; }
  std::uint64_t incarnation() const { return incarnation_; }

 private:
  void ArmTicker();

  SimWorld* const world_;
  SimNetwork* const network_;
  const int slot_;
  const std::uint64_t incarnation_;
  base::FileSystem* const fs_;
  const int drift_pct_;
  std::chrono::milliseconds period_{100};
  std::function<void()> tick_;
  bool ticker_stopped_ = false;
  // The ticker's pending event checks this, not the Env, which may be gone by then.
  std::shared_ptr<bool> gone_ = std::make_shared<bool>(false);
};

}  // namespace raft::nodesim
