// core_idle_bench: what idle groups cost the consensus core, with and without
// quiescence (docs/performance.md, "Idle groups"; issue 17's idle-cost target).
//
//   core_idle_bench [--groups N] [--ticks T] [--quiesce on|off]
//
// N groups of 3 replicas (RawNode over MemoryStorage) on 3 simulated processes, in one
// thread. Each group elects replica 1 and commits one entry, then the groups idle. Per
// tick every replica is ticked (as a host that ticks everything would) and its Readies
// are handled at once; messages go straight to their target replica. Printed: CPU time
// per tick for all replicas and per process, messages per tick, and how many replicas
// sleep. Only the core's share of a host's cost: no network, disk or runtime.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "raft/raw_node.h"
#include "raft/storage.h"

namespace {

using raft::Message;
using raft::NodeId;

struct Replica {
  std::unique_ptr<raft::MemoryStorage> storage;
  std::unique_ptr<raft::RawNode> node;
};

struct Group {
  Replica r[3];  // node ids 1..3: replica i lives on process i
};

struct Sim {
  std::vector<Group> groups;
  std::deque<std::pair<std::size_t, Message>> queue;  // (group, message)
  std::uint64_t messages = 0;

  void Handle(std::size_t g, Replica& rep) {
    while (rep.node->HasReady()) {
      raft::Ready rd = rep.node->GetReady();
      for (auto& m : rd.messages) queue.emplace_back(g, std::move(m));
      if (rd.snapshot) (void)rep.storage->ApplySnapshot(*rd.snapshot);
      if (!rd.entries.empty() && !rep.storage->Append(rd.entries).ok()) std::abort();
      if (rd.hard_state) rep.storage->SetHardState(*rd.hard_state);
      for (auto& m : rd.messages_after_persist) queue.emplace_back(g, std::move(m));
      rep.node->Advance(rd);
    }
  }
  void Drain() {
    while (!queue.empty()) {
      auto [g, m] = std::move(queue.front());
      queue.pop_front();
      ++messages;
      Replica& to = groups[g].r[m.to - 1];
      if (!to.node->Step(m).ok()) std::abort();
      Handle(g, to);
    }
  }
  void TickAll() {
    for (std::size_t g = 0; g < groups.size(); ++g) {
      for (Replica& rep : groups[g].r) {
        rep.node->Tick();
        Handle(g, rep);
      }
    }
    Drain();
  }
  std::size_t Asleep() const {
    std::size_t n = 0;
    for (const Group& g : groups)
      for (const Replica& rep : g.r) n += rep.node->Quiesced();
    return n;
  }
};

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t groups = 10000;
  int ticks = 200;
  bool quiesce = true;
  for (int i = 1; i < argc; ++i) {
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr,
                     "usage: core_idle_bench [--groups N] [--ticks T] [--quiesce on|off]\n");
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--groups")) {
      groups = std::strtoull(next(), nullptr, 10);
    } else if (!std::strcmp(argv[i], "--ticks")) {
      ticks = std::atoi(next());
    } else if (!std::strcmp(argv[i], "--quiesce")) {
      quiesce = std::strcmp(next(), "off") != 0;
    } else {
      std::fprintf(stderr, "usage: core_idle_bench [--groups N] [--ticks T] [--quiesce on|off]\n");
      return 2;
    }
  }

  Sim sim;
  sim.groups.resize(groups);
  for (std::size_t g = 0; g < groups; ++g) {
    for (NodeId id = 1; id <= 3; ++id) {
      Replica& rep = sim.groups[g].r[id - 1];
      rep.storage = std::make_unique<raft::MemoryStorage>();
      if (!rep.storage->Bootstrap({1, 2, 3}).ok()) return 1;
      raft::Config c;
      c.id = id;
      c.seed = g + 1;
      c.quiesce = quiesce;
      auto n = raft::RawNode::Create(c, rep.storage.get());
      if (!n.ok()) return 1;
      rep.node = std::move(n).value();
    }
  }
  // Elect replica 1 everywhere and commit one entry per group.
  for (std::size_t g = 0; g < groups; ++g) {
    Replica& l = sim.groups[g].r[0];
    l.node->Campaign();
    sim.Handle(g, l);
  }
  sim.Drain();
  for (std::size_t g = 0; g < groups; ++g) {
    Replica& l = sim.groups[g].r[0];
    if (l.node->role() != raft::Role::kLeader || !l.node->Propose("x").ok()) {
      std::fprintf(stderr, "group %zu: no leader on replica 1\n", g);
      return 1;
    }
    sim.Handle(g, l);
  }
  sim.Drain();
  for (int i = 0; i < 5; ++i) sim.TickAll();  // time to fall asleep, if it will

  sim.messages = 0;
  const double cpu0 = CpuSeconds();
  for (int i = 0; i < ticks; ++i) sim.TickAll();
  const double cpu = CpuSeconds() - cpu0;
  const double us_per_tick = cpu * 1e6 / ticks;
  std::printf(
      "core-idle: groups=%zu replicas=%zu quiesce=%s asleep=%zu ticks=%d | "
      "cpu %.0f us/tick (%.0f us per process), messages %.1f/tick | "
      "at 100 ms ticks: %.2f%% of a core per process\n",
      groups, groups * 3, quiesce ? "on" : "off", sim.Asleep(), ticks, us_per_tick, us_per_tick / 3,
      static_cast<double>(sim.messages) / ticks, us_per_tick / 3 / 1000.0);
  return 0;
}
