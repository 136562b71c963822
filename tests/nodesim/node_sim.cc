#include "node_sim.h"

#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "kv_history.h"
#include "lin_checker.h"
#include "raft/node.h"
#include "sim_env.h"
#include "sim_file_system.h"
#include "sim_kv.h"
#include "sim_network.h"
#include "sim_world.h"

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

namespace {

constexpr milliseconds kOpTimeout = 1000ms;

void ClearDiskFaults(SimDisk& d) {
  d.options().fail_fsync_probability = 0;
  d.options().fail_write_probability = 0;
  d.options().capacity_bytes = UINT64_MAX;
}
bool DiskFaulty(SimDisk& d) {
  return d.options().fail_fsync_probability > 0 || d.options().fail_write_probability > 0 ||
         d.options().capacity_bytes != UINT64_MAX;
}
constexpr int kTickMs = 10;

// One process slot: its disk survives crashes; everything else is its current incarnation.
struct Proc {
  int slot = 0;
  MemberInfo info;
  std::unique_ptr<SimDisk> disk;
  std::unique_ptr<SimFileSystem> fs;
  std::unique_ptr<SimKv> kv;
  std::unique_ptr<Node> node;
  bool started_once = false;  // has had a process (its data dir may hold state)
  bool member = false;        // added to the configuration (or the bootstrapper)
  bool removed = false;       // removed from the configuration: stays down
  bool restart_pending = false;
  bool up() const { return node != nullptr; }
};

class Sim {
 public:
  explicit Sim(const NodeSimOptions& o) : o_(o), world_(o.seed), net_(&world_) {
    res_.mix = o.swarm ? DrawMix() : o.mix;
    if (!o.swarm) res_.mix = o.mix;
    const int n = o.voters + o.spares;
    for (int i = 0; i < n; ++i) {
      auto p = std::make_unique<Proc>();
      p->slot = i;
      p->info.name = fmt::format("n{}", i);
      p->info.id = NodeIdFromName(p->info.name);
      p->info.raft_addr = fmt::format("n{}:4000", i);
      p->disk = std::make_unique<SimDisk>(&world_.rng());
      // Half the seeds tear unsynced writes with garbage, not only short (drawn apart
      // from the run's Rng, so that a seed's schedule does not depend on it).
      p->disk->options().tear_with_garbage = Rng(o.seed ^ 0x7ea5u).Chance(0.5);
      procs_.push_back(std::move(p));
    }
    net_.SetSendObserver([this](int slot, const Message& m) {
      if (m.type == MessageType::kPreVote || m.type == MessageType::kPreVoteResponse) return;
      Term& t = max_term_sent_[slot];
      if (m.term > t) t = m.term;
    });
    // Per-run settings drawn from the seed: small snapshots and chunks, so that
    // compaction, snapshot streaming and restores happen all the time.
    snapshot_entries_ = static_cast<std::uint64_t>(world_.rng().Range(5, 60));
    snapshot_trailing_ = static_cast<std::uint64_t>(world_.rng().Range(0, 20));
    chunk_bytes_ = static_cast<std::uint32_t>(world_.rng().Range(16, 600));
    segment_bytes_ = static_cast<std::uint64_t>(world_.rng().Range(512, 16384));
  }

  ~Sim() {
    finished_ = true;
    for (auto& p : procs_) p->node.reset();
  }

  NodeSimResult Run();

 private:
  FaultMix DrawMix();
  void Trace(const std::string& s) {
    if (o_.trace) std::fprintf(stderr, "[%9.3f] %s\n", Seconds(), s.c_str());
  }
  double Seconds() const { return std::chrono::duration<double>(world_.Now() - start_).count(); }
  void Fail(const std::string& what) {
    if (!res_.ok) return;
    res_.ok = false;
    res_.failure = fmt::format("t={:.3f}s step={}: {}", Seconds(), world_.steps(), what);
    Trace("FAIL " + res_.failure);
  }
  bool failed() const { return !res_.ok; }

  // Processes.
  NodeOptions OptionsFor(const Proc& p, bool bootstrap) const;
  bool StartProc(Proc& p, bool bootstrap);
  void CrashProc(Proc& p);
  void StopProc(Proc& p);
  void ScheduleRestart(Proc& p, milliseconds after);
  Proc* Leader();
  Proc* RandomUp();
  std::vector<Proc*> MembersUp();

  // Checks.
  void OnApplied(int slot, const Entry& e);
  void CheckStep();

  // Clients.
  void ClientLoop(int client);
  lin::Tick Now() { return ++lin_clock_; }

  // Faults.
  void FaultLoop();
  void OperatorLoop();
  void Membership();
  void Heal();

  // Phases.
  bool Setup();
  bool HealAndVerify();
  void RunFor(milliseconds d);
  bool RunUntilTrue(milliseconds bound, const std::function<bool()>& done);

  const NodeSimOptions o_;
  SimWorld world_;
  SimNetwork net_;
  NodeSimResult res_;
  Clock::time_point start_ = world_.Now();
  std::vector<std::unique_ptr<Proc>> procs_;
  std::uint64_t snapshot_entries_ = 20, snapshot_trailing_ = 5;
  std::uint32_t chunk_bytes_ = 128;
  std::uint64_t segment_bytes_ = 4096;
  bool faults_on_ = false;
  bool finished_ = false;
  bool membership_busy_ = false;

  // State machine safety: what was first applied at each index, anywhere.
  std::map<Index, std::pair<Term, std::string>> applied_;
  // Election safety: the leader seen in each term.
  std::map<Term, NodeId> leaders_;
  // Durability, per slot, over all its incarnations: the highest term its messages
  // carried (pre-votes aside: they carry a term not yet taken) and the highest index its
  // state machine applied. A restart must recover at least both (docs/runtime.md: nothing
  // that depends on a term leaves before it is durable; nothing is applied before it is
  // durable here).
  std::map<int, Term> max_term_sent_;
  std::map<int, Index> max_applied_;

  // Clients.
  lin::HistoryRecorder history_;
  lin::Tick lin_clock_ = 0;
  std::uint64_t next_op_ = 1;
  // Values of acknowledged writes, which must be in the committed log at the end.
  std::set<std::string> acked_values_;
  // The log index of each write command, by its last field (a unique value, or a
  // delete's op id), and the highest index of a write acknowledged so far: a read
  // invoked after that acknowledgement must get a read index at least as high.
  std::map<std::string, Index> tag_index_;
  Index max_acked_index_ = 0;
  std::map<int, int> reads_in_flight_;  // by slot
};

FaultMix Sim::DrawMix() {
  // Each fault on with probability 1/2; lease reads in a quarter of the runs.
  Rng& r = world_.rng();
  FaultMix m;
  m.crash = r.Chance(0.5);
  m.disk_errors = r.Chance(0.5);
  m.disk_full = r.Chance(0.5);
  m.slow_disk = r.Chance(0.5);
  m.drop = r.Chance(0.5);
  m.duplicate = r.Chance(0.5);
  m.reorder = r.Chance(0.5);
  m.delay = r.Chance(0.5);
  m.cut = r.Chance(0.5);
  m.partition = r.Chance(0.5);
  m.membership = r.Chance(0.5);
  m.transfer = r.Chance(0.5);
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
  opts.snapshot_chunk_bytes = chunk_bytes_;
  opts.segment_bytes = segment_bytes_;
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
  if (e.index > res_.last_index) res_.last_index = e.index;
  if (e.type == EntryType::kNormal && !e.data.empty()) {
    auto nl = e.data.rfind('\n');
    if (nl != std::string::npos) tag_index_.emplace(e.data.substr(nl + 1), e.index);
  }
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

// ------------------------------------------------------------------------------ clients

void Sim::ClientLoop(int client) {
  if (finished_ || failed() || !faults_on_) return;
  Rng& r = world_.rng();
  auto next = [this, client] {
    world_.After(std::chrono::microseconds(world_.rng().Range(0, 20000)),
                 [this, client] { ClientLoop(client); });
  };
  Proc* target = r.Chance(0.6) ? Leader() : nullptr;
  if (target == nullptr) target = RandomUp();
  if (target == nullptr) {
    next();
    return;
  }
  const std::string key = fmt::format("k{}", r.Uniform(static_cast<std::uint64_t>(o_.keys)));
  const std::uint64_t op = next_op_++;
  // Unique values (so acknowledged writes can be found), of varied length (so
  // snapshots span several chunks).
  const std::string value =
      fmt::format("v{}{}", op, std::string(static_cast<std::size_t>(r.Uniform(40)), 'x'));
  const std::uint64_t kind = r.Uniform(10);
  const int slot = target->slot;
  Node* node = target->node.get();
  if (kind < 4) {
    auto id = history_.Invoke(static_cast<lin::ClientId>(client), Now(), lin::Input::Get(key));
    const Index floor = max_acked_index_;
    ++reads_in_flight_[slot];
    node->ReadBarrier(kOpTimeout, [this, id, slot, key, next, floor](Result<std::string> res) {
      --reads_in_flight_[slot];
      Proc& p = *procs_[static_cast<std::size_t>(slot)];
      if (res.ok() && std::stoull(*res) < floor)
        Fail(
            fmt::format("stale read index: a read on n{} got index {}, but a write at index {} "
                        "was acknowledged before the read began",
                        slot, *res, floor));
      if (res.ok() && p.kv) {
        history_.Complete(id, Now(), lin::Output::Value(p.kv->Get(key)));
        ++res_.reads_ok;
      } else {
        history_.Discard(id);  // a read without an answer constrains nothing
      }
      if (!finished_) next();
    });
    return;
  }
  lin::Input input;
  std::string cmd;
  if (kind < 7) {
    input = lin::Input::Put(key, value);
    cmd = EncodePut(key, value);
  } else if (kind < 9) {
    // Expect the current value of some node's state machine, or absence.
    std::optional<std::string> expected;
    if (target->kv && r.Chance(0.8)) expected = target->kv->Get(key);
    input = lin::Input::Cas(key, expected, value);
    cmd = EncodeCas(key, expected, value);
  } else {
    input = lin::Input::Delete(key);
    cmd = EncodeDelete(key, op);
  }
  const std::string tag = cmd.substr(cmd.rfind('\n') + 1);
  const lin::OpKind op_kind = input.kind;
  auto id = history_.Invoke(static_cast<lin::ClientId>(client), Now(), input);
  node->Propose(std::move(cmd), kOpTimeout,
                [this, id, op_kind, value, tag, next](Result<std::string> res) {
                  if (res.ok()) {
                    ++res_.ops_ok;
                    auto it = tag_index_.find(tag);
                    if (it == tag_index_.end())
                      Fail("an acknowledged write was never applied anywhere: " + tag);
                    else if (it->second > max_acked_index_)
                      max_acked_index_ = it->second;
                    if (op_kind == lin::OpKind::kCas) {
                      history_.Complete(id, Now(), lin::Output::Swapped(*res == "1"));
                      if (*res == "1") acked_values_.insert(value);
                    } else {
                      history_.Complete(id, Now(), lin::Output::Ack());
                      if (op_kind == lin::OpKind::kPut) acked_values_.insert(value);
                    }
                  } else {
                    switch (res.status().code()) {
                      // Refused before it was proposed, or (kProposalDropped) the runtime
                      // promises it was not applied: the checker holds it to that.
                      case ErrorCode::kNotLeader:
                      case ErrorCode::kBusy:
                      case ErrorCode::kInvalidArgument:
                      case ErrorCode::kConfChangePending:
                      case ErrorCode::kProposalDropped:
                        ++res_.ops_discarded;
                        history_.Discard(id);
                        break;
                      default:  // kTimeout, kShutdown, kIOError...: outcome unknown
                        ++res_.ops_unknown;
                        break;
                    }
                  }
                  if (!finished_) next();
                });
}

// ------------------------------------------------------------------------------ faults

void Sim::FaultLoop() {
  if (!faults_on_ || finished_ || failed()) return;
  world_.After(std::chrono::microseconds(world_.rng().Range(10000, 150000)),
               [this] { FaultLoop(); });
  Rng& r = world_.rng();
  const FaultMix& m = res_.mix;
  switch (r.Uniform(9)) {
    case 0:
      if (m.crash) {
        // Keep a majority of the members able to run most of the time.
        auto up = MembersUp();
        if (!up.empty()) {
          Proc* p = up[r.Uniform(up.size())];
          // Half the time, aim at a process with a read barrier in flight: its answer may
          // then reach the next incarnation (defect 1 of issue 13).
          std::vector<Proc*> reading;
          for (Proc* q : up)
            if (reads_in_flight_[q->slot] > 0) reading.push_back(q);
          if (!reading.empty() && r.Chance(0.5)) p = reading[r.Uniform(reading.size())];
          CrashProc(*p);
          // A third of the restarts are immediate (a supervisor restarting the process).
          ScheduleRestart(*p, milliseconds(r.Chance(0.3) ? r.Range(0, 3) : r.Range(10, 800)));
        }
      }
      break;
    case 1:
      if (m.disk_errors) {
        Proc& p = *procs_[r.Uniform(procs_.size())];
        p.disk->options().fail_fsync_probability = r.Chance(0.5) ? 0.2 : 0.0;
        p.disk->options().fail_write_probability = r.Chance(0.5) ? 0.2 : 0.0;
        Proc* pp = &p;
        world_.After(milliseconds(r.Range(5, 200)), [pp] { ClearDiskFaults(*pp->disk); });
      }
      break;
    case 2:
      if (m.disk_full) {
        Proc& p = *procs_[r.Uniform(procs_.size())];
        p.disk->options().capacity_bytes = p.disk->TotalBytes() + r.Uniform(4096);
        Proc* pp = &p;
        world_.After(milliseconds(r.Range(5, 300)), [pp] { ClearDiskFaults(*pp->disk); });
      }
      break;
    case 3:
      if (m.slow_disk) {
        Proc& p = *procs_[r.Uniform(procs_.size())];
        // A paused io lane is a paused clock: lease reads assume none (core.md, "Lease
        // reads"), so lease runs stall the other lanes only.
        const Lane lanes[] = {Lane::kDisk, Lane::kDisk, Lane::kApply, Lane::kSnapshot, Lane::kIo};
        const std::uint64_t n = res_.mix.lease ? 4 : 5;
        world_.StallLane(p.slot, lanes[r.Uniform(n)], world_.Now() + milliseconds(r.Range(1, 60)));
      }
      break;
    case 4:
      if (m.cut) {
        net_.Cut(static_cast<int>(r.Uniform(procs_.size())),
                 static_cast<int>(r.Uniform(procs_.size())));
      }
      break;
    case 5:
      if (m.partition) {
        if (r.Chance(0.5)) {
          net_.Isolate(static_cast<int>(r.Uniform(procs_.size())));
        } else {
          std::vector<std::vector<int>> groups(2);
          for (auto& p : procs_) groups[r.Uniform(2)].push_back(p->slot);
          net_.SetPartition(groups);
        }
        world_.After(milliseconds(r.Range(50, 1000)), [this] {
          if (faults_on_) net_.Heal();
        });
      }
      break;
    case 6:
      if (m.membership) Membership();
      break;
    case 7:
      if (m.transfer) {
        Proc* leader = Leader();
        auto up = MembersUp();
        if (leader != nullptr && !up.empty()) {
          Proc* target = up[r.Uniform(up.size())];
          if (target != leader) {
            ++res_.transfers;
            Trace(fmt::format("transfer {} -> {}", leader->info.name, target->info.name));
            leader->node->TransferLeadership(target->info.id, 500ms, [](Status) {});
          }
        }
      }
      break;
    default:
      break;
  }
}

// An operator: restarts nodes that stopped accepting writes after a disk error.
void Sim::OperatorLoop() {
  if (finished_ || failed()) return;
  world_.After(milliseconds(world_.rng().Range(20, 200)), [this] { OperatorLoop(); });
  for (auto& p : procs_) {
    if (!p->up() || p->node->GetStatus().failure.empty()) continue;
    ++res_.failed_nodes;
    Trace(fmt::format("{} failed ({}): restart", p->info.name, p->node->GetStatus().failure));
    CrashProc(*p);
    ScheduleRestart(*p, milliseconds(world_.rng().Range(10, 300)));
  }
}

// One membership step through the leader: add a spare as a learner (and start it),
// promote a caught-up learner, or remove a voter (possibly the leader) while more than
// `voters` remain.
void Sim::Membership() {
  if (membership_busy_) return;
  Proc* leader = Leader();
  if (leader == nullptr) return;
  Rng& r = world_.rng();
  std::vector<Proc*> spares, learners, voters;
  auto st = leader->node->GetStatus();
  std::map<NodeId, bool> in_conf;  // id -> voter
  for (const auto& m : st.members) in_conf[m.info.id] = m.voter;
  for (auto& p : procs_) {
    auto it = in_conf.find(p->info.id);
    if (it == in_conf.end()) {
      if (!p->member && !p->removed) spares.push_back(p.get());
    } else if (it->second) {
      voters.push_back(p.get());
    } else {
      learners.push_back(p.get());
    }
  }
  auto done = [this](const char* what, std::string name) {
    return [this, what, name](Result<std::string> res) {
      membership_busy_ = false;
      Trace(fmt::format("{} {}: {}", what, name, res.ok() ? "ok" : res.status().ToString()));
    };
  };
  const std::uint64_t choice = r.Uniform(3);
  if (choice == 0 && !spares.empty()) {
    Proc* p = spares[r.Uniform(spares.size())];
    p->member = true;  // from now on the harness treats it as one (restarts it, waits for it)
    ++res_.members_added;
    membership_busy_ = true;
    Trace(fmt::format("add learner {}", p->info.name));
    leader->node->AddLearner(p->info, kOpTimeout, done("add learner", p->info.name));
    if (!p->up()) StartProc(*p, false);
  } else if (choice == 1 && !learners.empty()) {
    Proc* p = learners[r.Uniform(learners.size())];
    membership_busy_ = true;
    Trace(fmt::format("promote {}", p->info.name));
    leader->node->PromoteLearner(p->info.id, kOpTimeout, done("promote", p->info.name));
  } else if (choice == 2 && static_cast<int>(voters.size()) > o_.voters) {
    Proc* p = voters[r.Uniform(voters.size())];
    membership_busy_ = true;
    ++res_.members_removed;
    Trace(fmt::format("remove {}{}", p->info.name, p == leader ? " (the leader)" : ""));
    const int slot = p->slot;
    leader->node->RemoveMember(p->info.id, kOpTimeout, [this, slot](Result<std::string> res) {
      membership_busy_ = false;
      if (!res.ok()) return;
      // Applied on the leader: the member is gone. Its process stops a
      // little later (it may still be needed to commit nothing more).
      Proc* pp = procs_[static_cast<std::size_t>(slot)].get();
      pp->removed = true;
      world_.After(50ms, [this, pp] {
        if (!finished_) StopProc(*pp);
      });
    });
  }
}

void Sim::Heal() {
  faults_on_ = false;
  net_.Heal();
  net_.SetFaults(0, 0, 0, 0);
  for (auto& p : procs_) ClearDiskFaults(*p->disk);
  for (auto& p : procs_)
    if (p->member && !p->removed && !p->up() && !p->restart_pending) ScheduleRestart(*p, 1ms);
}

// ------------------------------------------------------------------------------ phases

void Sim::RunFor(milliseconds d) {
  const auto until = world_.Now() + d;
  while (!failed() && world_.Now() < until && world_.steps() < o_.max_steps) {
    if (!world_.Step()) break;
    CheckStep();
  }
  if (world_.steps() >= o_.max_steps) Fail("step budget exhausted");
}

bool Sim::RunUntilTrue(milliseconds bound, const std::function<bool()>& done) {
  const auto until = world_.Now() + bound;
  std::uint64_t n = 0;
  while (!failed() && world_.Now() < until) {
    if ((++n & 63) == 0 && done()) return true;
    if (!world_.Step()) break;
    CheckStep();
    if (world_.steps() >= o_.max_steps) {
      Fail("step budget exhausted");
      return false;
    }
  }
  return !failed() && done();
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
        auto cb = [state](Result<std::string> r) { *state = {true, r.ok()}; };
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
      leader->node->Propose(EncodePut("final", "done"), kOpTimeout,
                            [this, slot, final_index, in_flight](Result<std::string> r) {
                              *in_flight = false;
                              Proc& lp = *procs_[static_cast<std::size_t>(slot)];
                              if (r.ok() && lp.kv) *final_index = lp.kv->applied();
                            });
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
  Trace(fmt::format("seed {} mix {} snapshot_entries {} trailing {} chunk {} segment {}", o_.seed,
                    res_.mix.ToString(), snapshot_entries_, snapshot_trailing_, chunk_bytes_,
                    segment_bytes_));
  if (Setup()) {
    const FaultMix& m = res_.mix;
    net_.SetFaults(m.drop ? 0.05 : 0, m.duplicate ? 0.05 : 0, m.reorder ? 0.05 : 0,
                   m.delay ? 20 : 0);
    faults_on_ = true;
    FaultLoop();
    OperatorLoop();
    for (int c = 0; c < o_.clients; ++c) ClientLoop(c);
    RunFor(o_.fault_time);
    if (!failed()) HealAndVerify();
  }
  finished_ = true;
  // Stop every process (graceful), so that pending requests resolve before the checks.
  for (auto& p : procs_) {
    if (!p->up()) continue;
    auto stats = p->node->GetMetrics();
    res_.snapshots_taken += stats.snapshots_taken;
    res_.snapshots_installed += stats.snapshots_installed;
    p->node->Stop();
  }
  if (!failed()) {
    // Durability: every acknowledged write is in the committed log.
    std::set<std::string> in_log;
    for (const auto& [i, e] : applied_) {
      auto nl = e.second.rfind('\n');
      if (nl != std::string::npos) in_log.insert(e.second.substr(nl + 1));
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
  return res_;
}

}  // namespace

NodeSimResult RunNodeSim(const NodeSimOptions& options) {
  Sim sim(options);
  return sim.Run();
}

}  // namespace raft::nodesim
