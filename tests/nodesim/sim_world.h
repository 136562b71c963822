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
// The machine model (off unless PlaceSlot is called; scale_model.h uses it): slots placed
// on a machine share its cores and its disk. An item of such a slot may start only while
// one of the machine's cores is free; its CPU time (measured on this thread, or a fixed
// cost, plus ChargeCpu) then holds that core, and the item's lane stays busy for that time
// plus the sync latency of each fdatasync the item made. The clock does not move per item
// (machines run in parallel); posts the item made are delivered when its lane is free
// again, so a disk round completes only after its fdatasyncs. Approximation: the item's
// timed events (network frames) leave when it starts, not when its CPU time is spent.
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

  // The machine model (see the top comment).
  struct Machine {
    int cores = 2;
    // Each fdatasync an item makes holds its lane this long.
    std::chrono::microseconds sync_latency{0};
    // The machine's fdatasyncs so far (read around each item of its slots).
    std::function<std::uint64_t()> syncs;
    // Frames sent so far (read around each item, so a counter of all machines' frames
    // will do), and the CPU each costs its sender (the kernel's send and receive).
    std::function<std::uint64_t()> frames;
    std::chrono::microseconds frame_cost{0};
  };
  struct MachineCost {
    bool measure_cpu = true;  // the item's thread CPU time, times cpu_scale
    double cpu_scale = 1.0;
    std::chrono::microseconds fixed_item{10};  // per item when not measured
  };
  void SetMachineCost(const MachineCost& cost) { cost_ = cost; }
  int AddMachine(Machine m);  // its number, from 0
  void PlaceSlot(int slot, int machine);
  // Adds CPU time to the item running now (work the model does not run for real).
  void ChargeCpu(std::chrono::microseconds d) { charged_ += d; }
  // CPU time charged to the machine's items so far.
  std::chrono::microseconds MachineBusy(int machine) const;

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
    int machine = -1;  // the machine model's, or none
  };
  struct MachineState {
    Machine m;
    std::vector<Clock::time_point> core_free;
    std::chrono::microseconds busy{0};
  };
  struct Deferred {
    int slot;
    std::uint64_t incarnation;
    Lane lane;
    std::function<void()> fn;
  };
  Slot& SlotAt(int slot);
  // When a core of the slot's machine is free (now for a slot on no machine).
  Clock::time_point CoreFreeAt(const Slot& s) const;
  void RunOnMachine(int slot, int lane, std::function<void()> fn);

  Rng rng_;
  Clock::time_point now_;
  std::uint64_t steps_ = 0;
  std::uint64_t next_event_seq_ = 0;
  std::map<std::pair<Clock::time_point, std::uint64_t>, std::function<void()>> events_;
  std::vector<Slot> slots_;
  std::vector<std::pair<int, int>> ready_;  // Step()'s scratch: (slot, lane)
  MachineCost cost_;
  std::vector<MachineState> machines_;
  // While an item of a machine's slot runs: the posts it makes, and ChargeCpu's sum.
  bool deferring_ = false;
  std::vector<Deferred> deferred_;
  std::chrono::microseconds charged_{0};
};

}  // namespace raft::nodesim
