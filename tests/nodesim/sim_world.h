// SimWorld: the full-node simulator's one thread, virtual clock and seeded scheduler.
//
// Every node of a run owns four lanes (runtime/env.h: io, disk, apply, snapshot). A step
// runs one item: either the head of a lane chosen at random among the lanes that have
// work ready (an interleaving threads could produce: each lane stays FIFO), or, when no
// lane is ready, the earliest timed event after advancing the virtual clock to it
// (ticks, network deliveries, slow-disk completions). Every choice is drawn from the
// run's Rng, so a seed replays exactly.
//
// A node's lanes are addressed by its slot (0..N-1) and an incarnation number: a crash
// bumps the incarnation, dropping every item of the old one, so work of a dead process
// never runs in its successor.
//
// Not thread-safe: everything runs on the simulator's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "runtime/env.h"
#include "sim_rng.h"

namespace raft::nodesim {

using Clock = runtime::Clock;
using runtime::kLanes;
using runtime::Lane;
using sim::Rng;

class SimWorld {
 public:
  explicit SimWorld(std::uint64_t seed);

  Clock::time_point Now() const { return now_; }
  Rng& rng() { return rng_; }

  // Timed events (run on the world's thread at virtual time `at`; same-time events run
  // in the order they were added).
  void At(Clock::time_point at, std::function<void()> fn);
  void After(std::chrono::microseconds d, std::function<void()> fn) { At(now_ + d, std::move(fn)); }

  // Lanes. `slot` is a node's index, `incarnation` the value Incarnation(slot) had when
  // the work was made (a Post for an older incarnation is dropped).
  void Post(int slot, std::uint64_t incarnation, Lane lane, std::function<void()> fn);
  std::uint64_t Incarnation(int slot) const;
  // The process in `slot` died: its queued lane work is dropped, its incarnation bumped.
  void Kill(int slot);
  // Runs every queued item of one lane now, in order (used by a graceful Shutdown).
  void Drain(int slot, Lane lane);
  // A lane that is stopped drops what is posted to it (until the next incarnation).
  void StopLane(int slot, Lane lane);
  // Delays a lane: its items are not ready before `until` (a slow disk, a descheduled
  // thread).
  void StallLane(int slot, Lane lane, Clock::time_point until);

  // Runs one step; false when nothing is left to run (no lane work, no timed event).
  bool Step();
  // Steps until the clock passes `until` or nothing is left.
  void RunUntil(Clock::time_point until);
  std::uint64_t steps() const { return steps_; }

 private:
  struct LaneState {
    std::deque<std::function<void()>> items;
    Clock::time_point stalled_until{};
    bool stopped = false;
  };
  struct Slot {
    std::uint64_t incarnation = 1;
    LaneState lanes[kLanes];
  };
  Slot& SlotAt(int slot);

  Rng rng_;
  Clock::time_point now_;
  std::uint64_t steps_ = 0;
  std::uint64_t next_event_seq_ = 0;
  std::map<std::pair<Clock::time_point, std::uint64_t>, std::function<void()>> events_;
  std::vector<Slot> slots_;
  std::vector<std::pair<int, int>> ready_;  // Step()'s scratch: (slot, lane)
};

}  // namespace raft::nodesim
