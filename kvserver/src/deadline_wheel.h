// DeadlineWheel: a hashed timer wheel for many coarse deadlines (the HTTP sessions').
//
// Time is cut into ticks of `resolution`; a registration sits in slot (tick % slots) and
// fires when Advance() reaches its tick (a registration more than `slots` ticks ahead
// stays in its slot and is passed over until its round comes). Advance therefore touches
// only the registrations due, not every one: 11,000 idle connections cost nothing until
// their idle deadline, where a sweep of all of them every 100 ms cost 1.45% of the
// leader's CPU (docs/performance.md, finding 13).
//
// Each owner embeds one Link and holds at most one registration, at its earliest
// deadline. Schedule keeps an earlier registration (the owner re-schedules when it fires
// early: cheaper than moving the link whenever a deadline moves later, which is what a
// keep-alive connection does on every request); a deadline cleared is not cancelled
// either: it fires once and finds nothing to do. Deadlines hold to within one tick after
// the fact, never before.
//
// Thread safety: none; one I/O thread owns a wheel and its links. Intrusive: no
// allocation after construction.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace kv {

template <class Owner>
class DeadlineWheel {
 public:
  using Clock = std::chrono::steady_clock;

  struct Link {
    Link* prev = nullptr;
    Link* next = nullptr;
    std::uint64_t tick = 0;  // 0: not registered
    Owner* owner = nullptr;
  };

  DeadlineWheel(Clock::time_point epoch, Clock::duration resolution, std::size_t slots)
      : epoch_(epoch), resolution_(resolution), slots_(slots, nullptr) {}
  DeadlineWheel(const DeadlineWheel&) = delete;
  DeadlineWheel& operator=(const DeadlineWheel&) = delete;

  // Registers `l` to fire at the first tick at or after `deadline`, unless it is
  // registered for an earlier tick already.
  void Schedule(Link* l, Clock::time_point deadline) {
    std::uint64_t t = TickAtOrAfter(deadline);
    if (t <= done_) t = done_ + 1;  // already due: the next Advance
    if (l->tick != 0 && l->tick <= t) return;
    Cancel(l);
    l->tick = t;
    Link*& head = slots_[t % slots_.size()];
    l->prev = nullptr;
    l->next = head;
    if (head != nullptr) head->prev = l;
    head = l;
  }

  void Cancel(Link* l) {
    if (l->tick == 0) return;
    if (l->prev != nullptr) {
      l->prev->next = l->next;
    } else {
      slots_[l->tick % slots_.size()] = l->next;
    }
    if (l->next != nullptr) l->next->prev = l->prev;
    l->prev = l->next = nullptr;
    l->tick = 0;
  }

  // Fires every registration whose tick is at or before `now`: unregisters it, then
  // calls fire(owner). `fire` may Schedule or Cancel the owner's own link (and must not
  // touch other owners' links).
  template <class Fire>
  void Advance(Clock::time_point now, Fire&& fire) {
    if (now < epoch_) return;
    const std::uint64_t target = static_cast<std::uint64_t>((now - epoch_) / resolution_);
    if (target <= done_) return;
    // After a stall longer than a round every slot is visited once.
    std::uint64_t from = done_ + 1;
    if (target - done_ > slots_.size()) from = target - slots_.size() + 1;
    for (std::uint64_t t = from; t <= target; ++t) {
      done_ = t;
      // Take the slot's chain whole: links the callbacks re-schedule land in later
      // ticks (done_ moved), never in the chain being walked.
      Link* chain = slots_[t % slots_.size()];
      slots_[t % slots_.size()] = nullptr;
      while (chain != nullptr) {
        Link* l = chain;
        chain = l->next;
        if (chain != nullptr) chain->prev = nullptr;
        l->prev = l->next = nullptr;
        if (l->tick > t) {  // a later round: back into its slot
          const std::uint64_t tick = l->tick;
          l->tick = 0;
          Schedule(l, epoch_ + resolution_ * tick);
          continue;
        }
        l->tick = 0;
        fire(l->owner);
      }
    }
  }

  std::size_t slots() const { return slots_.size(); }

 private:
  std::uint64_t TickAtOrAfter(Clock::time_point tp) const {
    if (tp <= epoch_) return 0;
    const auto d = tp - epoch_;
    return static_cast<std::uint64_t>((d + resolution_ - Clock::duration(1)) / resolution_);
  }

  Clock::time_point epoch_;
  Clock::duration resolution_;
  std::vector<Link*> slots_;
  std::uint64_t done_ = 0;  // every tick up to here has fired
};

}  // namespace kv
