#include "node_sim.h"

#include <fmt/format.h>

#include <cstdio>

#include "lin_checker.h"
#include "node_sim_internal.h"

namespace raft::nodesim {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

std::string FaultMix::ToString() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ",";
    s += name;
  };
  add(crash, "crash");
  add(disk_errors, "disk_errors");
  add(disk_full, "disk_full");
  add(slow_disk, "slow_disk");
  add(drop, "drop");
  add(duplicate, "duplicate");
  add(reorder, "reorder");
  add(delay, "delay");
  add(cut, "cut");
  add(partition, "partition");
  add(membership, "membership");
  add(transfer, "transfer");
  add(lease, "lease");
  return s.empty() ? "none" : s;
}

std::string NodeSimResult::Summary() const {
  return fmt::format(
      "{} steps={} virtual={:.1f}s ops_ok={} unknown={} discarded={} reads={} crashes={} "
      "failed={} added={} removed={} transfers={} snaps_taken={} installed={} last_index={} "
      "mix={}{}{}",
      ok ? "ok" : "FAIL", steps, virtual_seconds, ops_ok, ops_unknown, ops_discarded, reads_ok,
      crashes, failed_nodes, members_added, members_removed, transfers, snapshots_taken,
      snapshots_installed, last_index, mix.ToString(), ok ? "" : ": ", failure);
}

namespace internal {

void TraceLogger::Log(LogLevel level, std::string_view component, std::string_view msg,
                      const std::vector<LogField>& fields) {
  std::string line = fmt::format("{} {} {}: {}", name_, LogLevelName(level), component, msg);
  for (const auto& f : fields) line += fmt::format(" {}={}", f.key, f.value);
  const double t = std::chrono::duration<double>(world_->Now().time_since_epoch()).count();
  std::fprintf(stderr, "[%9.3f]   %s\n", t - 3600.0, line.c_str());
}

void ClearDiskFaults(SimDisk& d) {
  d.options().fail_fsync_probability = 0;
  d.options().fail_write_probability = 0;
  d.options().capacity_bytes = UINT64_MAX;
}
bool DiskFaulty(SimDisk& d) {
  return d.options().fail_fsync_probability > 0 || d.options().fail_write_probability > 0 ||
         d.options().capacity_bytes != UINT64_MAX;
}

FaultMix DrawFaultMix(Rng& r) {
  FaultMix m;
  for (bool FaultMix::*fault :
       {&FaultMix::crash, &FaultMix::disk_errors, &FaultMix::disk_full, &FaultMix::slow_disk,
        &FaultMix::drop, &FaultMix::duplicate, &FaultMix::reorder, &FaultMix::delay, &FaultMix::cut,
        &FaultMix::partition, &FaultMix::membership, &FaultMix::transfer})
    m.*fault = r.Chance(0.5);
  m.lease = r.Chance(0.25);
  return m;
}

NodeOptions Sim::OptionsFor(const Proc& p, bool bootstrap) const {
  NodeOptions opts;
  opts.self = p.info;
  opts.data_dir = fmt::format("/data/{}", p.info.name);
  opts.cluster_id = "nodesim";
  opts.bootstrap = bootstrap;
  opts.core.election_ticks = 10;
  opts.core.heartbeat_ticks = 1;
  opts.core.pre_vote = true;
  opts.core.check_quorum = true;
  opts.core.read_only = res_.mix.lease ? ReadOnlyOption::kLeaseBased : ReadOnlyOption::kSafe;
  opts.core.max_msg_bytes = 4096;
  opts.core.max_inflight_msgs = 16;
  opts.tick_ms = kTickMs;
  opts.max_entry_bytes = 1024;
  opts.snapshot_entries = snapshot_entries_;
  opts.snapshot_trailing_entries = snapshot_trailing_;
  opts.catchup_log_bytes = catchup_bytes_;
  opts.snapshot_chunk_bytes = chunk_bytes_;
  // A small window (the default, set here so that a change of it does not silently
  // change the simulation) keeps streams long in rounds, so cleanups and crashes land
  // mid-stream: with 16, the ViewByName mutation was no longer caught.
  opts.snapshot_window_chunks = 4;
  opts.segment_bytes = segment_bytes_;
  opts.logger = p.logger.get();
  return opts;
}

bool Sim::StartProc(Proc& p, bool bootstrap) {
  world_.Kill(p.slot);  // a fresh incarnation: nothing of the previous one runs
  p.fs = std::make_unique<SimFileSystem>(p.disk.get());
  const int slot = p.slot;
  p.kv = std::make_unique<SimKv>([this, slot](const Entry& e) { OnApplied(slot, e); });
  // Clocks drift (each tick period within +-5%), except in lease runs, whose safety
  // assumes bounded drift (core.md, "Lease reads").
  auto env = std::make_unique<SimEnv>(&world_, &net_, p.slot, p.fs.get(), res_.mix.lease ? 0 : 5);
  auto node = Node::StartWithEnv(OptionsFor(p, bootstrap), p.kv.get(), std::move(env));
  if (!node.ok()) {
    const Status s = node.status();
    Trace(fmt::format("{} open failed: {}", p.info.name, s.ToString()));
    p.kv.reset();
    p.fs.reset();
    world_.Kill(p.slot);
    if (!faults_on_ && !DiskFaulty(*p.disk))
      Fail(fmt::format("{} did not come back: {}", p.info.name, s.ToString()));
    return false;
  }
  p.node = std::move(node).value();
  p.started_once = true;
  const NodeStatusInfo st = p.node->GetStatus();
  if (st.term < max_term_sent_[p.slot])
    Fail(fmt::format("durability: {} restarted at term {} but had sent messages of term {}",
                     p.info.name, st.term, max_term_sent_[p.slot]));
  if (std::max(st.last_index, st.snapshot_index) < max_applied_[p.slot])
    Fail(
        fmt::format("durability: {} restarted with its log ending at {} (snapshot {}) but had "
                    "applied up to {}",
                    p.info.name, st.last_index, st.snapshot_index, max_applied_[p.slot]));
  Trace(fmt::format("{} up (incarnation {})", p.info.name, world_.Incarnation(p.slot)));
  return true;
}

void Sim::CrashProc(Proc& p) {
  if (!p.up()) return;
  ++res_.crashes;
  Trace(fmt::format("{} crash", p.info.name));
  p.disk->Crash(world_.rng());  // unsynced data lost or torn; old descriptors dead
  net_.Crash(p.slot);
  world_.Kill(p.slot);
  p.node.reset();  // inert: its Env is dead (pending callbacks get kShutdown)
  p.kv.reset();
  p.fs.reset();
}

void Sim::StopProc(Proc& p) {
  if (!p.up()) return;
  Trace(fmt::format("{} graceful stop", p.info.name));
  p.node->Stop();
  p.node.reset();
  net_.Crash(p.slot);
  world_.Kill(p.slot);
  p.kv.reset();
  p.fs.reset();
}

void Sim::ScheduleRestart(Proc& p, milliseconds after) {
  if (p.restart_pending || p.removed) return;
  p.restart_pending = true;
  Proc* pp = &p;
  world_.After(after, [this, pp] {
    pp->restart_pending = false;
    if (finished_ || pp->up() || pp->removed) return;
    if (!StartProc(*pp, false) && !failed()) ScheduleRestart(*pp, 100ms);
  });
}

Proc* Sim::Leader() {
  Proc* best = nullptr;
  Term best_term = 0;
  for (auto& p : procs_) {
    if (!p->up() || p->node->role() != Role::kLeader) continue;
    Term t = p->node->GetStatus().term;
    if (best == nullptr || t > best_term) {
      best = p.get();
      best_term = t;
    }
  }
  return best;
}

Proc* Sim::RandomUp() {
  std::vector<Proc*> up;
  for (auto& p : procs_)
    if (p->up()) up.push_back(p.get());
  if (up.empty()) return nullptr;
  return up[world_.rng().Uniform(up.size())];
}

std::vector<Proc*> Sim::MembersUp() {
  std::vector<Proc*> v;
  for (auto& p : procs_)
    if (p->member && !p->removed && p->up()) v.push_back(p.get());
  return v;
}

// ------------------------------------------------------------------------------ checks

void Sim::OnApplied(int slot, const Entry& e) {
  Index& hi = max_applied_[slot];
  if (e.index > hi) hi = e.index;
  auto [it, fresh] = applied_.emplace(e.index, std::make_pair(e.term, e.data));
  if (!fresh && (it->second.first != e.term || it->second.second != e.data)) {
    Fail(
        fmt::format("state machine safety: n{} applied index {} term {} '{}', but index {} was "
                    "applied elsewhere with term {} '{}'",
                    slot, e.index, e.term, e.data, e.index, it->second.first, it->second.second));
  }
  NoteApplied(e);
}

void Sim::CheckStep() {
  if (net_.stats().snapshot_chunks_unreadable > 0)
    Fail("a snapshot stream could not read the view it had open");
  for (auto& p : procs_) {
    if (!p->up()) continue;
    if (!p->kv->error().empty())
      Fail(fmt::format("{}'s state machine: {}", p->info.name, p->kv->error()));
    if (p->node->role() != Role::kLeader) continue;
    const Term t = p->node->GetStatus().term;
    auto [it, fresh] = leaders_.emplace(t, p->info.id);
    if (!fresh && it->second != p->info.id)
      Fail(fmt::format("election safety: two leaders in term {}: {} and {}", t, it->second,
                       p->info.name));
  }
}

bool Drive(SimWorld& world, Clock::time_point until, std::uint64_t max_steps,
           const std::function<bool()>& failed, const std::function<void()>& check,
           const std::function<void(const std::string&)>& fail, const std::function<bool()>& done) {
  std::uint64_t n = 0;
  while (!failed() && world.Now() < until) {
    if (done && (++n & 63) == 0 && done()) return true;
    if (!world.Step()) break;
    check();
    if (world.steps() >= max_steps) {
      fail("step budget exhausted");
      return false;
    }
  }
  return !failed() && (!done || done());
}

void SimRun::Trace(const std::string& s) const {
  if (trace_) std::fprintf(stderr, "[%9.3f] %s\n", Seconds(), s.c_str());
}

void SimRun::Fail(const std::string& what) {
  if (!res_.ok) return;
  res_.ok = false;
  res_.failure = fmt::format("t={:.3f}s step={}: {}", Seconds(), world_.steps(), what);
  Trace("FAIL " + res_.failure);
}

void SimRun::RunFor(milliseconds d) {
  Drive(
      world_, world_.Now() + d, max_steps_, [this] { return failed(); }, [this] { CheckStep(); },
      [this](const std::string& s) { Fail(s); }, nullptr);
}

bool SimRun::RunUntilTrue(milliseconds bound, const std::function<bool()>& done) {
  return Drive(
      world_, world_.Now() + bound, max_steps_, [this] { return failed(); },
      [this] { CheckStep(); }, [this](const std::string& s) { Fail(s); }, done);
}

void SimRun::FaultsThenHeal(int clients, milliseconds fault_time) {
  const FaultMix& m = res_.mix;
  net_.SetFaults(m.drop ? 0.05 : 0, m.duplicate ? 0.05 : 0, m.reorder ? 0.05 : 0, m.delay ? 20 : 0);
  faults_on_ = true;
  FaultLoop();
  OperatorLoop();
  for (int c = 0; c < clients; ++c) ClientLoop(c);
  RunFor(fault_time);
  if (!failed()) HealAndVerify();
}

void SimRun::NoteApplied(const Entry& e) {
  if (e.index > res_.last_index) res_.last_index = e.index;
  if (e.type == EntryType::kNormal && !e.data.empty()) {
    auto nl = e.data.rfind('\n');
    if (nl != std::string::npos) tag_index_.emplace(e.data.substr(nl + 1), e.index);
  }
}

void SimRun::FinalChecks(
    const std::vector<const std::map<Index, std::pair<Term, std::string>>*>& logs) {
  if (!failed()) {
    // Durability: every acknowledged write is in the committed log.
    std::set<std::string> in_log;
    for (const auto* log : logs) {
      for (const auto& [i, e] : *log) {
        auto nl = e.second.rfind('\n');
        if (nl != std::string::npos) in_log.insert(e.second.substr(nl + 1));
      }
    }
    for (const auto& v : acked_values_)
      if (!in_log.count(v)) {
        Fail("an acknowledged write is not in the committed log: value " + v);
        break;
      }
  }
  if (!failed()) {
    lin::CheckResult lr = lin::CheckHistory(history_.history());
    if (lr.verdict == lin::Verdict::kNotLinearizable || lr.verdict == lin::Verdict::kInvalidHistory)
      Fail("linearizability: " + lr.ToString());
  }
  res_.steps = world_.steps();
  res_.virtual_seconds = Seconds();
}

bool Sim::Setup() {
  Proc& first = *procs_[0];
  first.member = true;
  if (!StartProc(first, true)) return false;
  for (int i = 1; i < o_.voters; ++i) {
    Proc& p = *procs_[static_cast<std::size_t>(i)];
    p.member = true;
    StartProc(p, false);
    for (ConfChangeType t : {ConfChangeType::kAddLearner, ConfChangeType::kAddVoter}) {
      bool ok = false;
      for (int attempt = 0; attempt < 20 && !ok && !failed(); ++attempt) {
        // The callback may outlive this attempt (it runs at the latest when its node
        // stops): it writes to shared state, never to this frame.
        auto state = std::make_shared<std::pair<bool, bool>>(false, false);  // done, ok
        Proc* leader = nullptr;
        if (!RunUntilTrue(5000ms, [&] { return (leader = Leader()) != nullptr; })) break;
        auto cb = ClientSide([state](Result<std::string> r) { *state = {true, r.ok()}; });
        if (t == ConfChangeType::kAddLearner) {
          leader->node->AddLearner(p.info, kOpTimeout, cb);
        } else {
          leader->node->PromoteLearner(p.info.id, kOpTimeout, cb);
        }
        RunUntilTrue(3000ms, [&] { return state->first; });
        ok = state->second;
      }
      if (!ok) {
        Fail(fmt::format("setup: could not add {}", p.info.name));
        return false;
      }
    }
  }
  return !failed();
}

bool Sim::HealAndVerify() {
  Heal();
  // Liveness: every member up, a leader, a final write committed and applied everywhere.
  // Shared with the final write's callback, which may run after this returns.
  auto final_index = std::make_shared<std::optional<Index>>();
  auto in_flight = std::make_shared<bool>(false);
  auto converged = [&] {
    for (auto& p : procs_)
      if (p->member && !p->removed && !p->up()) return false;
    Proc* leader = Leader();
    if (leader == nullptr) return false;
    if (!*final_index) {
      if (*in_flight) return false;
      *in_flight = true;
      const int slot = leader->slot;
      Trace(fmt::format("final write proposed on n{}", slot));
      leader->node->Propose(EncodePut("final", "done"), kOpTimeout,
                            ClientSide([this, slot, final_index, in_flight](Result<std::string> r) {
                              *in_flight = false;
                              Trace(fmt::format("final write on n{}: {}", slot,
                                                r.ok() ? "ok" : r.status().ToString()));
                              Proc& lp = *procs_[static_cast<std::size_t>(slot)];
                              if (r.ok() && lp.kv) *final_index = lp.kv->applied();
                            }));
      return false;
    }
    // Every member of the leader's configuration has applied the final write, and all
    // state machines agree.
    auto st = leader->node->GetStatus();
    const SimKv* ref = leader->kv.get();
    for (const auto& m : st.members) {
      Proc* p = nullptr;
      for (auto& q : procs_)
        if (q->info.id == m.info.id) p = q.get();
      if (p == nullptr || !p->up() || p->kv->applied() < **final_index ||
          p->kv->applied() != ref->applied())
        return false;
    }
    for (const auto& m : st.members) {
      for (auto& q : procs_)
        if (q->info.id == m.info.id && q->kv->data() != ref->data()) {
          Fail(fmt::format("{} and {} applied the same entries but hold different data",
                           q->info.name, leader->info.name));
          return true;
        }
    }
    return true;
  };
  if (!RunUntilTrue(o_.heal_time, converged)) {
    if (failed()) return false;
    std::string state;
    for (auto& p : procs_) {
      if (!p->member) continue;
      state += fmt::format(" {}:{}", p->info.name,
                           p->removed ? "removed"
                           : !p->up() ? "down"
                                      : fmt::format("{}/t{}/applied {}", RoleName(p->node->role()),
                                                    p->node->GetStatus().term, p->kv->applied()));
    }
    Fail(
        fmt::format("liveness: not converged {} ms after healing:{}", o_.heal_time.count(), state));
    return false;
  }
  return true;
}

NodeSimResult Sim::Run() {
  Trace(fmt::format("seed {} mix {} snapshot_entries {} trailing {} catchup {} chunk {} segment {}",
                    o_.seed, res_.mix.ToString(), snapshot_entries_, snapshot_trailing_,
                    catchup_bytes_, chunk_bytes_, segment_bytes_));
  if (Setup()) FaultsThenHeal(o_.clients, o_.fault_time);
  finished_ = true;
  // Stop every process (graceful), so that pending requests resolve before the checks.
  for (auto& p : procs_) {
    if (!p->up()) continue;
    auto stats = p->node->GetMetrics();
    res_.snapshots_taken += stats.snapshots_taken;
    res_.snapshots_installed += stats.snapshots_installed;
    // Honest nodes never send a message another one refuses (RaftCore::Validate).
    if (stats.messages_refused > 0 && res_.ok)
      Fail(fmt::format("{} refused {} messages from honest peers", p->info.name,
                       stats.messages_refused));
    p->node->Stop();
  }
  FinalChecks({&applied_});
  return res_;
}

}  // namespace internal

NodeSimResult RunNodeSim(const NodeSimOptions& options) {
  internal::Sim sim(options);
  return sim.Run();
}

}  // namespace raft::nodesim
