// A minimal SimWorld (sim_world.h) for nodesim_network_test only, until the lead's
// sim_world.cc is on main: FIFO lanes picked at random, timed events in (time, order)
// order. Delete it when the real one lands.
#include "sim_world.h"

namespace raft::nodesim {

SimWorld::SimWorld(std::uint64_t seed) : rng_(seed) {}

void SimWorld::At(Clock::time_point at, std::function<void()> fn) {
  if (at < now_) at = now_;
  events_.emplace(std::make_pair(at, next_event_seq_++), std::move(fn));
}

SimWorld::Slot& SimWorld::SlotAt(int slot) {
  if (static_cast<std::size_t>(slot) >= slots_.size()) slots_.resize(slot + 1);
  return slots_[slot];
}

std::uint64_t SimWorld::Incarnation(int slot) const {
  return static_cast<std::size_t>(slot) < slots_.size() ? slots_[slot].incarnation : 1;
}

void SimWorld::Post(int slot, std::uint64_t incarnation, Lane lane, std::function<void()> fn) {
  Slot& s = SlotAt(slot);
  LaneState& l = s.lanes[static_cast<int>(lane)];
  if (incarnation != s.incarnation || l.stopped) return;
  l.items.push_back(std::move(fn));
}

void SimWorld::Kill(int slot) {
  Slot& s = SlotAt(slot);
  for (auto& l : s.lanes) l = LaneState{};
  ++s.incarnation;
}

void SimWorld::Drain(int slot, Lane lane) {
  auto& items = SlotAt(slot).lanes[static_cast<int>(lane)].items;
  while (!items.empty()) {
    auto fn = std::move(items.front());
    items.pop_front();
    fn();
  }
}

void SimWorld::StopLane(int slot, Lane lane) {
  LaneState& l = SlotAt(slot).lanes[static_cast<int>(lane)];
  l.stopped = true;
  l.items.clear();
}

void SimWorld::StallLane(int slot, Lane lane, Clock::time_point until) {
  SlotAt(slot).lanes[static_cast<int>(lane)].stalled_until = until;
}

bool SimWorld::Step() {
  std::vector<std::deque<std::function<void()>>*> ready;
  for (auto& s : slots_)
    for (auto& l : s.lanes)
      if (!l.items.empty() && l.stalled_until <= now_) ready.push_back(&l.items);
  ++steps_;
  if (!ready.empty()) {
    auto* items = ready[rng_.Uniform(ready.size())];
    auto fn = std::move(items->front());
    items->pop_front();
    fn();
    return true;
  }
  if (events_.empty()) {
    --steps_;
    return false;
  }
  auto it = events_.begin();
  now_ = it->first.first;
  auto fn = std::move(it->second);
  events_.erase(it);
  fn();
  return true;
}

void SimWorld::RunUntil(Clock::time_point until) {
  for (;;) {
    bool lane_ready = false;
    for (auto& s : slots_)
      for (auto& l : s.lanes) lane_ready |= !l.items.empty() && l.stalled_until <= now_;
    if (!lane_ready && (events_.empty() || events_.begin()->first.first > until)) break;
    if (!Step()) break;
  }
  if (now_ < until) now_ = until;
}

}  // namespace raft::nodesim
