// The full-node simulator over hosts of many groups: processes, clients, faults, checks
// (host_sim.h). Single-threaded, like all of the simulator; it shares node_sim's world,
// network, disk, state machine and checker, and its trace logger.
#include "host_sim.h"

#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "lin_checker.h"
#include "node_sim_internal.h"
#include "raft/host.h"

namespace raft::nodesim {
namespace {

using namespace std::chrono_literals;
using internal::ClearDiskFaults;
using internal::DiskFaulty;
using internal::kOpTimeout;
using internal::kTickMs;
using internal::TraceLogger;
using std::chrono::milliseconds;

// One process slot: its disk survives crashes; everything else is its incarnation's.
struct HostProc {
  int slot = 0;
  NodeId id = kNoNode;
  std::string addr;
  std::unique_ptr<SimDisk> disk;
  std::unique_ptr<TraceLogger> logger;  // with --trace
  std::unique_ptr<SimFileSystem> fs;
  // Declared before the host: they outlive it (its apply lane feeds them).
  std::map<GroupId, std::unique_ptr<SimKv>> kvs;
  std::unique_ptr<Host> host;
  std::set<GroupId> running;  // groups whose CreateGroup completed in this incarnation
  bool started_once = false;
  bool restart_pending = false;
  bool up() const { return host != nullptr; }
};

class HostSim final : public internal::SimRun {
 public:
  explicit HostSim(const HostSimOptions& o) : SimRun(o.seed, o.trace, o.max_steps), o_(o) {
    res_.mix = o.swarm ? internal::DrawFaultMix(world_.rng()) : o.mix;
    res_.mix.lease = false;  // not built for hosted groups
    for (int i = 0; i < o.processes; ++i) {
      auto p = std::make_unique<HostProc>();
      p->slot = i;
      p->id = static_cast<NodeId>(i + 1);
      p->addr = fmt::format("h{}:4000", i);
      if (o.trace) p->logger = std::make_unique<TraceLogger>(&world_, fmt::format("h{}", i));
      p->disk = std::make_unique<SimDisk>(&world_.rng());
      p->disk->options().tear_with_garbage = Rng(o.seed ^ 0x7ea5u).Chance(0.5);
      addrs_[p->id] = p->addr;
      procs_.push_back(std::move(p));
    }
    // Each group's replicas start on min(3, P) consecutive processes, round-robin.
    const int replicas = std::min(3, o.processes);
    for (GroupId g = 1; g <= static_cast<GroupId>(o.groups); ++g)
      for (int k = 0; k < replicas; ++k)
        placement_[g].push_back(static_cast<NodeId>(
            (g - 1 + static_cast<GroupId>(k)) % static_cast<GroupId>(o.processes) + 1));
    // About half the groups start from state (Host::CreateGroupFromState, as a split's new
    // range does): their log begins after index 100 * g, so a replica moved to them, or a
    // restarted one, needs the initial snapshot. Drawn from a stream of its own, so the
    // seed's other draws are those of runs before it existed.
    Rng from_state(o.seed ^ 0xf5a7e5u);
    for (GroupId g = 1; g <= static_cast<GroupId>(o.groups); ++g)
      if (from_state.Chance(0.5)) from_state_[g] = 100 * g;
    segment_bytes_ = static_cast<std::uint64_t>(world_.rng().Range(512, 16384));
    // Snapshots as a Node's run draws them (node_sim_internal.h).
    snapshot_entries_ = static_cast<std::uint64_t>(world_.rng().Range(5, 60));
    snapshot_trailing_ = static_cast<std::uint64_t>(world_.rng().Range(0, 20));
    chunk_bytes_ = static_cast<std::uint32_t>(world_.rng().Range(16, 600));
  }
  ~HostSim() override {
    finished_ = true;
    for (auto& p : procs_) p->host.reset();
  }

  NodeSimResult Run();

 private:
  GroupId RandomGroup() { return 1 + world_.rng().Uniform(static_cast<std::uint64_t>(o_.groups)); }

  bool StartProc(HostProc& p);
  // Creates g on p: bootstrapped with its placement, else joining (or resuming from the
  // log, which then ignores the voters). `then` runs once it is running.
  void CreateGroup(HostProc& p, GroupId g, bool bootstrap, std::function<void()> then);
  void CrashProc(HostProc& p);
  // Adds the host's snapshot counters (this incarnation's) to the result.
  void CountSnapshots(HostProc& p) {
    const HostMetrics m = p.host->GetMetrics();
    res_.snapshots_taken += m.snapshots_taken;
    res_.snapshots_installed += m.snapshots_installed;
  }
  void ScheduleRestart(HostProc& p, milliseconds after);
  HostProc* Leader(GroupId g);
  HostProc* RandomRunning(GroupId g);
  HostProc* ProcOf(NodeId id) { return procs_[static_cast<std::size_t>(id - 1)].get(); }
  // The members of g (voters and learners) in its leader's latest configuration; empty
  // without a leader.
  std::vector<NodeId> Members(GroupId g);
  // One step of moving a replica of a random group: a process that never held it joins
  // and is added as a learner; a learner is promoted; with four voters one is removed
  // (perhaps the leader), and its process stops hosting the group.
  void MoveReplica();

  void OnApplied(int slot, GroupId g, const Entry& e);
  void CheckStep() override;
  void ClientLoop(int client) override;
  void FaultLoop() override;
  void OperatorLoop() override;
  void Heal();
  bool HealAndVerify() override;

  const HostSimOptions o_;
  std::vector<std::unique_ptr<HostProc>> procs_;
  std::map<NodeId, std::string> addrs_;
  std::map<GroupId, std::vector<NodeId>> placement_;  // where each group starts
  std::map<GroupId, Index> from_state_;  // groups started from (empty) state at that index
  std::set<GroupId> moving_;             // a change of the group is in flight
  // Per slot: groups it joined (created empty, to be added), and groups it left (removed
  // from the configuration: never hosted there again, as the shared log does not reuse a
  // removed group's id).
  std::map<int, std::set<GroupId>> joined_, left_;
  std::uint64_t segment_bytes_ = 4096;
  std::uint64_t snapshot_entries_ = 20, snapshot_trailing_ = 5;
  std::uint32_t chunk_bytes_ = 128;
  bool finished_ = false;

  // Per group: what was first applied at each index anywhere, and the leader of each term.
  std::map<GroupId, std::map<Index, std::pair<Term, std::string>>> applied_;
  std::map<std::pair<GroupId, Term>, NodeId> leaders_;
  // Per (slot, group), over all incarnations: the highest index applied; and the groups
  // a slot ever created (its log must hold them from then on).
  std::map<std::pair<int, GroupId>, Index> max_applied_;
  std::map<int, std::set<GroupId>> created_;

  // Per group, the highest index of a write acknowledged so far (a read invoked after it
  // must get a read index at least as high).
  std::map<GroupId, Index> max_acked_index_;
};

// ------------------------------------------------------------------------- processes

bool HostSim::StartProc(HostProc& p) {
  world_.Kill(p.slot);  // a fresh incarnation: nothing of the previous one runs
  p.fs = std::make_unique<SimFileSystem>(p.disk.get());
  auto env = std::make_unique<SimEnv>(&world_, &net_, p.slot, p.fs.get(), 5);
  HostOptions o;
  o.self = p.id;
  o.listen_addr = p.addr;
  o.peers = addrs_;
  o.data_dir = fmt::format("/data/h{}", p.slot);
  o.cluster_id = "hostsim";
  o.tick_ms = kTickMs;
  o.election_ticks = 10;
  o.heartbeat_ticks = 1;
  o.max_entry_bytes = 1024;
  o.log_segment_bytes = segment_bytes_;
  // Drawn from the seed, as a Node's (node_sim_internal.h): groups snapshot often, so
  // compactions, streams in group frames and installs meet every fault.
  o.snapshot_entries = snapshot_entries_;
  o.snapshot_trailing_entries = snapshot_trailing_;
  o.snapshot_chunk_bytes = chunk_bytes_;
  o.snapshot_window_chunks = 4;
  o.logger = p.logger.get();
  auto host = Host::StartWithEnv(o, std::move(env));
  if (!host.ok()) {
    const Status s = host.status();
    Trace(fmt::format("h{} open failed: {}", p.slot, s.ToString()));
    p.fs.reset();
    world_.Kill(p.slot);
    if (!faults_on_ && !DiskFaulty(*p.disk))
      Fail(fmt::format("h{} did not come back: {}", p.slot, s.ToString()));
    return false;
  }
  p.host = std::move(host).value();
  p.running.clear();
  const std::vector<GroupId> logged = p.host->LoggedGroups();
  auto in_log = [&](GroupId g) {
    return std::find(logged.begin(), logged.end(), g) != logged.end();
  };
  for (GroupId g : created_[p.slot]) {
    if (!in_log(g) && !left_[p.slot].count(g))
      Fail(fmt::format("durability: h{} restarted without group {}, which it had created", p.slot,
                       g));
  }
  std::vector<GroupId> groups;
  const bool first = !p.started_once;
  if (first) {  // the groups placed here, bootstrapped
    for (auto& [g, voters] : placement_)
      if (std::find(voters.begin(), voters.end(), p.id) != voters.end()) groups.push_back(g);
  } else {  // the log's groups (resumed), and those joined with nothing logged yet
    for (GroupId g : logged)
      if (!left_[p.slot].count(g)) groups.push_back(g);
    for (GroupId g : joined_[p.slot])
      if (!in_log(g) && !left_[p.slot].count(g)) groups.push_back(g);
  }
  p.started_once = true;
  Trace(fmt::format("h{} up (incarnation {}), {} groups", p.slot, world_.Incarnation(p.slot),
                    groups.size()));
  for (GroupId g : groups) CreateGroup(p, g, first, nullptr);
  return true;
}

void HostSim::CreateGroup(HostProc& p, GroupId g, bool bootstrap, std::function<void()> then) {
  const std::uint64_t incarnation = world_.Incarnation(p.slot);
  HostProc* pp = &p;
  const int slot = p.slot;
  auto kv = std::make_unique<SimKv>([this, slot, g](const Entry& e) { OnApplied(slot, g, e); });
  SimKv* sm = kv.get();
  p.kvs[g] = std::move(kv);
  const std::vector<NodeId> voters = bootstrap ? placement_[g] : std::vector<NodeId>{};
  auto done = [this, pp, g, incarnation, bootstrap, then](Status s) {
    if (finished_ || world_.Incarnation(pp->slot) != incarnation || !pp->up()) return;
    if (!s.ok()) {
      Trace(fmt::format("h{} group {} not created: {}", pp->slot, g, s.ToString()));
      if (!faults_on_ && !DiskFaulty(*pp->disk))
        Fail(fmt::format("h{} could not create group {}: {}", pp->slot, g, s.ToString()));
      return;  // the operator restarts a failed host
    }
    pp->running.insert(g);
    if (bootstrap) created_[pp->slot].insert(g);
    auto st = pp->host->GroupStatus(g);
    const Index had = max_applied_[{pp->slot, g}];
    if (st.ok() && st->last_index < had)
      Fail(
          fmt::format("durability: h{} group {} restarted with its log ending at {} but had "
                      "applied up to {}",
                      pp->slot, g, st->last_index, had));
    if (then) then();
  };
  if (bootstrap && from_state_.count(g)) {
    sm->StartAt(from_state_.at(g));
    p.host->CreateGroupFromState(g, voters, sm, from_state_.at(g), std::move(done));
  } else {
    p.host->CreateGroup(g, voters, sm, std::move(done));
  }
}

void HostSim::CrashProc(HostProc& p) {
  if (!p.up()) return;
  ++res_.crashes;
  CountSnapshots(p);
  Trace(fmt::format("h{} crash", p.slot));
  p.disk->Crash(world_.rng());  // unsynced data lost or torn; old descriptors dead
  net_.Crash(p.slot);
  world_.Kill(p.slot);
  p.host.reset();  // inert: its Env is dead (pending callbacks get kShutdown)
  p.kvs.clear();
  p.fs.reset();
  p.running.clear();
}

void HostSim::ScheduleRestart(HostProc& p, milliseconds after) {
  if (p.restart_pending) return;
  p.restart_pending = true;
  HostProc* pp = &p;
  world_.After(after, [this, pp] {
    pp->restart_pending = false;
    if (finished_ || pp->up()) return;
    if (!StartProc(*pp) && !failed()) ScheduleRestart(*pp, 100ms);
  });
}

HostProc* HostSim::Leader(GroupId g) {
  HostProc* best = nullptr;
  Term best_term = 0;
  for (auto& p : procs_) {
    if (!p->up() || !p->running.count(g)) continue;
    auto st = p->host->GroupStatus(g);
    if (!st.ok() || st->role != Role::kLeader) continue;
    if (best == nullptr || st->term > best_term) {
      best = p.get();
      best_term = st->term;
    }
  }
  return best;
}

HostProc* HostSim::RandomRunning(GroupId g) {
  std::vector<HostProc*> up;
  for (auto& p : procs_)
    if (p->up() && p->running.count(g)) up.push_back(p.get());
  if (up.empty()) return nullptr;
  return up[world_.rng().Uniform(up.size())];
}

std::vector<NodeId> HostSim::Members(GroupId g) {
  HostProc* leader = Leader(g);
  if (leader == nullptr) return {};
  auto st = leader->host->GroupStatus(g);
  if (!st.ok()) return {};
  std::vector<NodeId> out = st->voters;
  out.insert(out.end(), st->learners.begin(), st->learners.end());
  return out;
}

void HostSim::MoveReplica() {
  const GroupId g = RandomGroup();
  if (moving_.count(g)) return;
  HostProc* leader = Leader(g);
  if (leader == nullptr) return;
  auto st = leader->host->GroupStatus(g);
  if (!st.ok()) return;
  Rng& r = world_.rng();
  auto done = [this, g](std::string what) {
    return ClientSide([this, g, what](Result<std::string> res) {
      moving_.erase(g);
      Trace(fmt::format("group {}: {}: {}", g, what, res.ok() ? "ok" : res.status().ToString()));
      if (res.ok()) ++res_.members_added;  // counts every change that completed
    });
  };
  if (!st->learners.empty()) {
    const NodeId q = st->learners.front();
    moving_.insert(g);
    Trace(fmt::format("group {}: promote h{}", g, q - 1));
    leader->host->PromoteLearner(g, q, kOpTimeout, done(fmt::format("promote h{}", q - 1)));
    return;
  }
  if (st->voters.size() > 3) {
    const NodeId v = st->voters[r.Uniform(st->voters.size())];
    moving_.insert(g);
    Trace(fmt::format("group {}: remove h{}", g, v - 1));
    // Once the removal is applied here, its process stops hosting the group and never
    // hosts it again (left_: a restart skips it). An unknown outcome changes nothing: the
    // process keeps the group, as a member or, if the removal did commit, as a replica
    // outside the configuration that the others ignore.
    auto removed = [this, g, v](Result<std::string> res) {
      moving_.erase(g);
      Trace(fmt::format("group {}: remove h{}: {}", g, v - 1,
                        res.ok() ? "ok" : res.status().ToString()));
      if (!res.ok()) return;
      ++res_.members_removed;
      HostProc* p = ProcOf(v);
      left_[p->slot].insert(g);
      if (p->up() && p->running.count(g)) {
        p->running.erase(g);
        p->host->RemoveGroup(g, [](Status) {});
      }
    };
    leader->host->RemoveReplica(g, v, kOpTimeout, ClientSide(removed));
    return;
  }
  // A process that never held g joins, then the leader adds it as a learner.
  std::vector<HostProc*> candidates;
  for (auto& p : procs_) {
    if (!p->up() || p->kvs.count(g) || left_[p->slot].count(g)) continue;
    if (std::find(st->voters.begin(), st->voters.end(), p->id) != st->voters.end()) continue;
    candidates.push_back(p.get());
  }
  if (candidates.empty()) return;
  HostProc* q = candidates[r.Uniform(candidates.size())];
  moving_.insert(g);
  joined_[q->slot].insert(g);
  Trace(fmt::format("group {}: h{} joins", g, q->slot));
  const NodeId qid = q->id;
  // A join that never runs (the process crashed first) must not block the group's moves.
  world_.After(3 * kOpTimeout, [this, g] { moving_.erase(g); });
  CreateGroup(*q, g, /*bootstrap=*/false, [this, g, qid, done] {
    HostProc* now = Leader(g);
    if (now == nullptr) {
      moving_.erase(g);
      return;
    }
    now->host->AddLearner(g, qid, kOpTimeout, done(fmt::format("add learner h{}", qid - 1)));
  });
}

// ---------------------------------------------------------------------------- checks

void HostSim::OnApplied(int slot, GroupId g, const Entry& e) {
  Index& hi = max_applied_[{slot, g}];
  if (e.index > hi) hi = e.index;
  auto [it, fresh] = applied_[g].emplace(e.index, std::make_pair(e.term, e.data));
  if (!fresh && (it->second.first != e.term || it->second.second != e.data)) {
    Fail(
        fmt::format("state machine safety: group {}: h{} applied index {} term {} '{}', but it "
                    "was applied elsewhere with term {} '{}'",
                    g, slot, e.index, e.term, e.data, it->second.first, it->second.second));
  }
  NoteApplied(e);
}

void HostSim::CheckStep() {
  for (auto& p : procs_) {
    if (!p->up()) continue;
    for (auto& [g, kv] : p->kvs) {
      if (!kv->error().empty())
        Fail(fmt::format("h{} group {}'s state machine: {}", p->slot, g, kv->error()));
    }
    for (GroupId g : p->running) {
      auto st = p->host->GroupStatus(g);
      if (!st.ok() || st->role != Role::kLeader) continue;
      auto [it, fresh] = leaders_.emplace(std::make_pair(g, st->term), p->id);
      if (!fresh && it->second != p->id)
        Fail(fmt::format("election safety: group {} has two leaders in term {}: {} and {}", g,
                         st->term, it->second, p->id));
    }
  }
}

// --------------------------------------------------------------------------- clients

void HostSim::ClientLoop(int client) {
  if (finished_ || failed() || !faults_on_) return;
  Rng& r = world_.rng();
  auto next = [this, client] {
    world_.After(std::chrono::microseconds(world_.rng().Range(0, 20000)),
                 [this, client] { ClientLoop(client); });
  };
  const GroupId g = RandomGroup();
  HostProc* target = r.Chance(0.6) ? Leader(g) : nullptr;
  if (target == nullptr) target = RandomRunning(g);
  if (target == nullptr) {
    next();
    return;
  }
  const std::string key = fmt::format("g{}k{}", g, r.Uniform(static_cast<std::uint64_t>(o_.keys)));
  const std::uint64_t op = next_op_++;
  const std::string value =
      fmt::format("v{}{}", op, std::string(static_cast<std::size_t>(r.Uniform(40)), 'x'));
  const std::uint64_t kind = r.Uniform(10);
  const int slot = target->slot;
  Host* host = target->host.get();
  if (kind < 4) {
    auto id = history_.Invoke(static_cast<lin::ClientId>(client), Now(), lin::Input::Get(key));
    const Index floor = max_acked_index_[g];
    host->ReadBarrier(g, kOpTimeout,
                      ClientSide([this, id, slot, g, key, next, floor](Result<std::string> res) {
                        HostProc& p = *procs_[static_cast<std::size_t>(slot)];
                        auto kv = p.kvs.find(g);
                        OnReadAnswer(id, res, floor, fmt::format("h{} (group {})", slot, g),
                                     kv != p.kvs.end() ? kv->second.get() : nullptr, key);
                        if (!finished_) next();
                      }));
    return;
  }
  std::optional<std::string> expected;
  auto kv = target->kvs.find(g);
  if (kind >= 7 && kind < 9 && kv != target->kvs.end() && r.Chance(0.8))
    expected = kv->second->Get(key);
  WriteCommand w = MakeWrite(kind, key, value, op, expected);
  const std::string tag = w.tag;
  const lin::OpKind op_kind = w.input.kind;
  auto id = history_.Invoke(static_cast<lin::ClientId>(client), Now(), w.input);
  host->Propose(g, std::move(w.cmd), kOpTimeout,
                ClientSide([this, id, g, op_kind, value, tag, next](Result<std::string> res) {
                  const Index at = OnWriteAnswer(id, op_kind, value, tag, res);
                  if (at > max_acked_index_[g]) max_acked_index_[g] = at;
                  if (!finished_) next();
                }));
}

// ---------------------------------------------------------------------------- faults

void HostSim::FaultLoop() {
  if (!faults_on_ || finished_ || failed()) return;
  world_.After(std::chrono::microseconds(world_.rng().Range(10000, 150000)),
               [this] { FaultLoop(); });
  Rng& r = world_.rng();
  const FaultMix& m = res_.mix;
  HostProc& p = *procs_[r.Uniform(procs_.size())];
  switch (r.Uniform(9)) {
    case 0:
      if (m.crash && p.up()) {
        CrashProc(p);
        ScheduleRestart(p, milliseconds(r.Chance(0.3) ? r.Range(0, 3) : r.Range(10, 800)));
      }
      break;
    case 1:
      if (m.disk_errors) internal::InjectDiskErrors(world_, p.disk.get());
      break;
    case 2:
      if (m.disk_full) internal::InjectDiskFull(world_, p.disk.get());
      break;
    case 3:
      if (m.slow_disk) {
        const Lane lanes[] = {Lane::kDisk, Lane::kDisk, Lane::kApply, Lane::kIo};
        world_.StallLane(p.slot, lanes[r.Uniform(4)], world_.Now() + milliseconds(r.Range(1, 60)));
      }
      break;
    case 4:
      if (m.cut) {
        net_.Cut(static_cast<int>(r.Uniform(procs_.size())),
                 static_cast<int>(r.Uniform(procs_.size())));
      }
      break;
    case 5:
      if (m.partition)
        internal::InjectPartition(world_, &net_, static_cast<int>(procs_.size()), &faults_on_);
      break;
    case 6:
      if (m.transfer) {
        const GroupId g = RandomGroup();
        HostProc* leader = Leader(g);
        HostProc* target = RandomRunning(g);
        if (leader != nullptr && target != nullptr && target != leader) {
          ++res_.transfers;
          Trace(fmt::format("group {}: transfer h{} -> h{}", g, leader->slot, target->slot));
          leader->host->TransferLeadership(g, target->id, 500ms, [](Status) {});
        }
      }
      break;
    case 7:
      if (m.membership) MoveReplica();
      break;
    default:
      break;
  }
}

// An operator: restarts hosts whose shared log failed (a disk error or a full disk).
void HostSim::OperatorLoop() {
  if (finished_ || failed()) return;
  world_.After(milliseconds(world_.rng().Range(20, 200)), [this] { OperatorLoop(); });
  for (auto& p : procs_) {
    if (!p->up() || p->host->Failure().empty()) continue;
    ++res_.failed_nodes;
    Trace(fmt::format("h{} failed ({}): restart", p->slot, p->host->Failure()));
    CrashProc(*p);
    ScheduleRestart(*p, milliseconds(world_.rng().Range(10, 300)));
  }
}

void HostSim::Heal() {
  faults_on_ = false;
  net_.Heal();
  net_.SetFaults(SimNetworkFaults{});
  for (auto& p : procs_) {
    ClearDiskFaults(*p->disk);
    if (p->up() && !p->host->Failure().empty()) CrashProc(*p);  // the operator's last round
    if (!p->up()) ScheduleRestart(*p, 0ms);
  }
}

bool HostSim::HealAndVerify() {
  Heal();
  // Per group: a final write committed on its leader, then applied everywhere, equal data.
  std::map<GroupId, std::shared_ptr<std::optional<Index>>> final_index;
  std::map<GroupId, std::shared_ptr<bool>> in_flight;
  for (GroupId g = 1; g <= static_cast<GroupId>(o_.groups); ++g) {
    final_index[g] = std::make_shared<std::optional<Index>>();
    in_flight[g] = std::make_shared<bool>(false);
  }
  // Every member of every group (its leader's configuration) up and running it.
  auto members_running = [&](GroupId g) {
    const std::vector<NodeId> members = Members(g);
    if (members.empty()) return false;
    for (NodeId m : members)
      if (!ProcOf(m)->up() || !ProcOf(m)->running.count(g)) return false;
    return true;
  };
  auto converged = [&] {
    bool all = true;
    for (GroupId g = 1; g <= static_cast<GroupId>(o_.groups); ++g) {
      if (!members_running(g)) {
        all = false;
        continue;
      }
      HostProc* leader = Leader(g);
      auto fi = final_index[g];
      if (!*fi) {
        all = false;
        if (*in_flight[g]) continue;
        *in_flight[g] = true;
        auto flag = in_flight[g];
        const int slot = leader->slot;
        leader->host->Propose(g, EncodePut(fmt::format("g{}final", g), "done"), kOpTimeout,
                              ClientSide([this, slot, g, fi, flag](Result<std::string> r) {
                                *flag = false;
                                HostProc& lp = *procs_[static_cast<std::size_t>(slot)];
                                auto kv = lp.kvs.find(g);
                                if (r.ok() && kv != lp.kvs.end()) *fi = kv->second->applied();
                              }));
        continue;
      }
      const SimKv* ref = leader->kvs.at(g).get();
      for (NodeId m : Members(g)) {
        const SimKv* kv = ProcOf(m)->kvs.at(g).get();
        if (kv->applied() < **fi || kv->applied() != ref->applied()) {
          all = false;
          break;
        }
      }
    }
    if (!all) return false;
    for (GroupId g = 1; g <= static_cast<GroupId>(o_.groups); ++g) {
      const std::vector<NodeId> members = Members(g);
      const SimKv* ref = ProcOf(members.front())->kvs.at(g).get();
      for (NodeId m : members) {
        if (ProcOf(m)->kvs.at(g)->data() != ref->data()) {
          Fail(
              fmt::format("group {}: h{} and h{} applied the same entries but hold different "
                          "data",
                          g, m - 1, members.front() - 1));
          return true;
        }
      }
    }
    return true;
  };
  if (RunUntilTrue(o_.heal_time, converged)) return true;
  if (failed()) return false;
  std::string state;
  for (auto& p : procs_) {
    state += fmt::format(" h{}:", p->slot);
    if (!p->up()) {
      state += "down";
      continue;
    }
    for (const GroupStatusInfo& st : p->host->GroupStatuses())
      state +=
          fmt::format(" g{}/{}/t{}/applied {}", st.group, RoleName(st.role), st.term, st.applied);
  }
  Fail(fmt::format("liveness: not converged {} ms after healing:{}", o_.heal_time.count(), state));
  return false;
}

NodeSimResult HostSim::Run() {
  Trace(
      fmt::format("seed {} mix {} processes {} groups {} ({} from state) segment {} "
                  "snapshot every {} (trailing {}) chunk {}",
                  o_.seed, res_.mix.ToString(), o_.processes, o_.groups, from_state_.size(),
                  segment_bytes_, snapshot_entries_, snapshot_trailing_, chunk_bytes_));
  for (auto& p : procs_) StartProc(*p);
  const bool setup = RunUntilTrue(5000ms, [&] {
    for (GroupId g = 1; g <= static_cast<GroupId>(o_.groups); ++g) {
      if (Leader(g) == nullptr) return false;
      for (NodeId m : placement_[g])
        if (!ProcOf(m)->up() || !ProcOf(m)->running.count(g)) return false;
    }
    return true;
  });
  if (!setup && !failed()) Fail("setup: the groups did not all start and elect");
  if (!failed()) FaultsThenHeal(o_.clients, o_.fault_time);
  finished_ = true;
  for (auto& p : procs_) {
    if (!p->up()) continue;
    CountSnapshots(*p);
    p->host->Stop();  // pending requests resolve before the checks
  }
  std::vector<const std::map<Index, std::pair<Term, std::string>>*> logs;
  for (const auto& [g, log] : applied_) logs.push_back(&log);
  FinalChecks(logs);
  return res_;
}

}  // namespace

NodeSimResult RunHostSim(const HostSimOptions& options) {
  HostSim sim(options);
  return sim.Run();
}

}  // namespace raft::nodesim
