// The full-node simulator's faults: the fault loop of the seed's mix, the operator that restarts
// failed nodes, membership changes, healing (node_sim_internal.h).
#include <fmt/format.h>

#include "node_sim_internal.h"

namespace raft::nodesim::internal {

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
      if (m.disk_errors) InjectDiskErrors(world_, procs_[r.Uniform(procs_.size())]->disk.get());
      break;
    case 2:
      if (m.disk_full) InjectDiskFull(world_, procs_[r.Uniform(procs_.size())]->disk.get());
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
      if (m.partition) InjectPartition(world_, &net_, static_cast<int>(procs_.size()), &faults_on_);
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

void InjectDiskErrors(SimWorld& world, SimDisk* disk) {
  Rng& r = world.rng();
  disk->options().fail_fsync_probability = r.Chance(0.5) ? 0.2 : 0.0;
  disk->options().fail_write_probability = r.Chance(0.5) ? 0.2 : 0.0;
  world.After(milliseconds(r.Range(5, 200)), [disk] { ClearDiskFaults(*disk); });
}

void InjectDiskFull(SimWorld& world, SimDisk* disk) {
  Rng& r = world.rng();
  disk->options().capacity_bytes = disk->TotalBytes() + r.Uniform(4096);
  world.After(milliseconds(r.Range(5, 300)), [disk] { ClearDiskFaults(*disk); });
}

void InjectPartition(SimWorld& world, SimNetwork* net, int slots, const bool* faults_on) {
  Rng& r = world.rng();
  if (r.Chance(0.5)) {
    net->Isolate(static_cast<int>(r.Uniform(static_cast<std::uint64_t>(slots))));
  } else {
    std::vector<std::vector<int>> sides(2);
    for (int slot = 0; slot < slots; ++slot) sides[r.Uniform(2)].push_back(slot);
    net->SetPartition(sides);
  }
  world.After(milliseconds(r.Range(50, 1000)), [net, faults_on] {
    if (*faults_on) net->Heal();
  });
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
    leader->node->AddLearner(p->info, kOpTimeout, ClientSide(done("add learner", p->info.name)));
    if (!p->up()) StartProc(*p, false);
  } else if (choice == 1 && !learners.empty()) {
    Proc* p = learners[r.Uniform(learners.size())];
    membership_busy_ = true;
    Trace(fmt::format("promote {}", p->info.name));
    leader->node->PromoteLearner(p->info.id, kOpTimeout, ClientSide(done("promote", p->info.name)));
  } else if (choice == 2 && static_cast<int>(voters.size()) > o_.voters) {
    Proc* p = voters[r.Uniform(voters.size())];
    membership_busy_ = true;
    ++res_.members_removed;
    Trace(fmt::format("remove {}{}", p->info.name, p == leader ? " (the leader)" : ""));
    const int slot = p->slot;
    leader->node->RemoveMember(p->info.id, kOpTimeout,
                               ClientSide([this, slot](Result<std::string> res) {
                                 membership_busy_ = false;
                                 if (!res.ok()) return;
                                 // Applied on the leader: the member is gone. Its process stops a
                                 // little later (it may still be needed to commit nothing more).
                                 Proc* pp = procs_[static_cast<std::size_t>(slot)].get();
                                 pp->removed = true;
                                 world_.After(50ms, [this, pp] {
                                   if (!finished_) StopProc(*pp);
                                 });
                               }));
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

}  // namespace raft::nodesim::internal
