#include "sim_world.h"

#include <time.h>

#include <algorithm>

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

int SimWorld::AddMachine(Machine m) {
  RAFT_ASSERT(m.cores > 0, "a machine without cores");
  MachineState st;
  st.core_free.assign(static_cast<std::size_t>(m.cores), now_);
  st.m = std::move(m);
  machines_.push_back(std::move(st));
  return static_cast<int>(machines_.size()) - 1;
}

void SimWorld::PlaceSlot(int slot, int machine) {
  RAFT_ASSERT(machine >= 0 && static_cast<std::size_t>(machine) < machines_.size(),
              "no such machine");
  SlotAt(slot).machine = machine;
}

std::chrono::microseconds SimWorld::MachineBusy(int machine) const {
  return machines_.at(static_cast<std::size_t>(machine)).busy;
}

Clock::time_point SimWorld::CoreFreeAt(const Slot& s) const {
  if (s.machine < 0) return now_;
  const auto& cores = machines_[static_cast<std::size_t>(s.machine)].core_free;
  return *std::min_element(cores.begin(), cores.end());
}

namespace {
std::chrono::nanoseconds ThreadCpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}
}  // namespace

void SimWorld::RunOnMachine(int slot, int lane, std::function<void()> fn) {
  MachineState& m = machines_[static_cast<std::size_t>(SlotAt(slot).machine)];
  const std::uint64_t syncs_before = m.m.syncs ? m.m.syncs() : 0;
  const std::uint64_t frames_before = m.m.frames ? m.m.frames() : 0;
  deferring_ = true;
  deferred_.clear();
  charged_ = std::chrono::microseconds(0);
  const auto cpu_before = cost_.measure_cpu ? ThreadCpu() : std::chrono::nanoseconds(0);
  fn();
  std::chrono::microseconds cpu = cost_.fixed_item;
  if (cost_.measure_cpu) {
    const double ns = static_cast<double>((ThreadCpu() - cpu_before).count()) * cost_.cpu_scale;
    cpu = std::chrono::microseconds(static_cast<std::int64_t>(ns / 1000));
  }
  cpu += charged_;
  if (m.m.frames) cpu += m.m.frame_cost * static_cast<std::int64_t>(m.m.frames() - frames_before);
  deferring_ = false;
  const std::uint64_t syncs = (m.m.syncs ? m.m.syncs() : 0) - syncs_before;
  const auto disk = m.m.sync_latency * static_cast<std::int64_t>(syncs);
  auto core = std::min_element(m.core_free.begin(), m.core_free.end());
  *core = std::max(*core, now_) + cpu;
  m.busy += cpu;
  const Clock::time_point done = now_ + cpu + disk;
  // The lane runs one item at a time: busy until this one is done.
  LaneState& ls = SlotAt(slot).lanes[lane];
  ls.stalled_until = std::max(ls.stalled_until, done);
  std::vector<Deferred> posts = std::move(deferred_);
  deferred_.clear();
  if (done == now_) {
    for (auto& d : posts) Post(d.slot, d.incarnation, d.lane, std::move(d.fn));
    return;
  }
  At(done, [this, posts = std::move(posts)]() mutable {
    for (auto& d : posts) Post(d.slot, d.incarnation, d.lane, std::move(d.fn));
  });
}

void SimWorld::Post(int slot, std::uint64_t incarnation, Lane lane, std::function<void()> fn) {
  if (deferring_) {
    deferred_.push_back(Deferred{slot, incarnation, lane, std::move(fn)});
    return;
  }
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
    if (slots_[s].machine >= 0 && CoreFreeAt(slots_[s]) > now_) continue;
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
        if (!ls.items.empty()) next = std::min(next, std::max(ls.stalled_until, CoreFreeAt(slot)));
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
  if (slots_[static_cast<std::size_t>(s)].machine >= 0) {
    RunOnMachine(s, l, std::move(fn));
    return true;
  }
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
