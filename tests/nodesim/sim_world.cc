#include "sim_world.h"

#include "base/assert.h"

namespace raft::nodesim {

SimWorld::SimWorld(std::uint64_t seed)
    : rng_(seed), now_(Clock::time_point{} + std::chrono::hours(1)) {}

void SimWorld::At(Clock::time_point at, std::function<void()> fn) {
  if (at < now_) at = now_;
  events_.emplace(std::make_pair(at, next_event_seq_++), std::move(fn));
}

SimWorld::Slot& SimWorld::SlotAt(int slot) {
  RAFT_ASSERT(slot >= 0, "negative slot");
  if (static_cast<std::size_t>(slot) >= slots_.size())
    slots_.resize(static_cast<std::size_t>(slot) + 1);
  return slots_[static_cast<std::size_t>(slot)];
}

std::uint64_t SimWorld::Incarnation(int slot) const {
  if (slot < 0 || static_cast<std::size_t>(slot) >= slots_.size()) return 1;
  return slots_[static_cast<std::size_t>(slot)].incarnation;
}

void SimWorld::Post(int slot, std::uint64_t incarnation, Lane lane, std::function<void()> fn) {
  Slot& s = SlotAt(slot);
  if (s.incarnation != incarnation) return;
  LaneState& l = s.lanes[static_cast<int>(lane)];
  if (l.stopped) return;
  l.items.push_back(std::move(fn));
}

void SimWorld::Kill(int slot) {
  Slot& s = SlotAt(slot);
  ++s.incarnation;
  for (auto& l : s.lanes) {
    // Destroy the items outside the lane (their destructors may post, harmlessly: the
    // incarnation is already the new one).
    auto items = std::move(l.items);
    l = LaneState{};
    items.clear();
  }
}

void SimWorld::Drain(int slot, Lane lane) {
  Slot& s = SlotAt(slot);
  const std::uint64_t inc = s.incarnation;
  while (true) {
    LaneState& l = SlotAt(slot).lanes[static_cast<int>(lane)];
    if (SlotAt(slot).incarnation != inc || l.items.empty()) return;
    auto fn = std::move(l.items.front());
    l.items.pop_front();
    fn();
  }
}

void SimWorld::StopLane(int slot, Lane lane) {
  LaneState& l = SlotAt(slot).lanes[static_cast<int>(lane)];
  l.stopped = true;
  l.items.clear();
}

void SimWorld::StallLane(int slot, Lane lane, Clock::time_point until) {
  LaneState& l = SlotAt(slot).lanes[static_cast<int>(lane)];
  if (until > l.stalled_until) l.stalled_until = until;
}

bool SimWorld::Step() {
  // Candidates: every ready lane, and the earliest timed event if it is due.
  ready_.clear();
  for (std::size_t s = 0; s < slots_.size(); ++s) {
    for (int l = 0; l < kLanes; ++l) {
      const LaneState& ls = slots_[s].lanes[l];
      if (!ls.items.empty() && ls.stalled_until <= now_) ready_.push_back({static_cast<int>(s), l});
    }
  }
  const bool event_due = !events_.empty() && events_.begin()->first.first <= now_;
  const std::size_t n = ready_.size() + (event_due ? 1 : 0);
  if (n == 0) {
    // Idle: advance the clock to whatever comes first, an event or a stalled lane.
    Clock::time_point next = Clock::time_point::max();
    if (!events_.empty()) next = events_.begin()->first.first;
    for (const auto& slot : slots_)
      for (const auto& ls : slot.lanes)
        if (!ls.items.empty() && ls.stalled_until < next) next = ls.stalled_until;
    if (next == Clock::time_point::max()) return false;
    now_ = next;
    return true;
  }
  ++steps_;
  const std::size_t pick = rng_.Uniform(n);
  if (pick == ready_.size()) {
    auto it = events_.begin();
    auto fn = std::move(it->second);
    events_.erase(it);
    fn();
    return true;
  }
  auto [s, l] = ready_[pick];
  LaneState& ls = slots_[static_cast<std::size_t>(s)].lanes[l];
  auto fn = std::move(ls.items.front());
  ls.items.pop_front();
  // Work takes time: 5-50 us of virtual time per item, so a busy node's clock moves.
  now_ += std::chrono::microseconds(rng_.Range(5, 50));
  fn();
  return true;
}

void SimWorld::RunUntil(Clock::time_point until) {
  while (now_ < until && Step()) {
  }
}

}  // namespace raft::nodesim
