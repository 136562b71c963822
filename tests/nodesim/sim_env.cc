#include "sim_env.h"

#include "sim_network.h"

namespace raft::nodesim {

SimEnv::SimEnv(SimWorld* world, SimNetwork* network, int slot, base::FileSystem* fs, int drift_pct)
    : world_(world),
      network_(network),
      slot_(slot),
      incarnation_(world->Incarnation(slot)),
      fs_(fs),
      drift_pct_(drift_pct) {}

SimEnv::~SimEnv() { *gone_ = true; }

void SimEnv::Start(base::ThreadChecker* const[runtime::kLanes]) {
  // One thread runs every lane of every node: the checkers stay unbound (Check passes),
  // and what they guard is protected by the scheduler running one item at a time.
}

void SimEnv::Post(Lane lane, std::function<void()> work) {
  world_->Post(slot_, incarnation_, lane, std::move(work));
}

void SimEnv::StartTicker(std::chrono::milliseconds period, std::function<void()> tick) {
  period_ = period;
  tick_ = std::move(tick);
  ArmTicker();
}

void SimEnv::ArmTicker() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(period_).count();
  const auto d = std::chrono::microseconds(
      world_->rng().Range(us * (100 - drift_pct_) / 100, us * (100 + drift_pct_) / 100));
  world_->After(d, [this, gone = gone_] {
    if (*gone || ticker_stopped_ || !alive()) return;
    Post(Lane::kIo, tick_);
    ArmTicker();
  });
}

void SimEnv::Shutdown(Lane lane, std::function<void()> last) {
  if (!alive()) return;
  if (lane == Lane::kIo) {
    ticker_stopped_ = true;
    world_->Drain(slot_, lane);
    if (last) last();
    world_->StopLane(slot_, lane);
    return;
  }
  world_->Drain(slot_, lane);
  world_->StopLane(slot_, lane);
  if (last) last();
}

std::unique_ptr<runtime::MessageTransport> SimEnv::NewTransport(
    const runtime::TransportOptions& options, runtime::TransportHandler* handler,
    runtime::SnapshotStore* snapshots) {
  return network_->NewTransport(slot_, incarnation_, options, handler, snapshots);
}

}  // namespace raft::nodesim
