#include "scale_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "raft/host.h"
#include "sim_env.h"
#include "sim_file_system.h"
#include "sim_kv.h"
#include "sim_network.h"
#include "sim_world.h"

namespace raft::nodesim {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

class ScaleModel {
 public:
  explicit ScaleModel(const ScaleModelOptions& o)
      : o_(o), world_(o.seed), net_(&world_), m_(o.machines), replicas_(std::min(o.replicas, m_)) {
    SimNetworkFaults f;
    f.delay_min = o.net_delay_min;
    f.delay_max = o.net_delay_max;
    net_.SetFaults(f);
    SimWorld::MachineCost cost;
    cost.measure_cpu = o.measure_cpu;
    cost.cpu_scale = o.cpu_scale;
    cost.fixed_item = o.fixed_item;
    world_.SetMachineCost(cost);
    ranges_ = o.ranges > 0 ? o.ranges : o.ranges_per_machine * m_;
    for (int j = 0; j < m_; ++j) {
      auto mc = std::make_unique<MachineProc>();
      mc->disk = std::make_unique<SimDisk>(&world_.rng());
      SimDisk* disk = mc->disk.get();
      SimWorld::Machine machine;
      machine.cores = o.cores;
      machine.sync_latency = o.sync_latency;
      machine.syncs = [disk] { return disk->counters().fsyncs; };
      machine.frames = [this] { return net_.stats().frames_sent; };
      machine.frame_cost = o.frame_us;
      const int id = world_.AddMachine(std::move(machine));
      world_.PlaceSlot(j, id);       // the host's lanes
      world_.PlaceSlot(m_ + j, id);  // the front end's
      addrs_[static_cast<NodeId>(j + 1)] = fmt::format("m{}:4000", j);
      machines_.push_back(std::move(mc));
    }
  }
  ~ScaleModel() {
    finished_ = true;
    for (auto& mc : machines_) mc->host.reset();
  }

  ScaleModelResult Run();

 private:
  struct MachineProc {
    std::unique_ptr<SimDisk> disk;
    std::unique_ptr<SimFileSystem> fs;
    std::map<GroupId, std::unique_ptr<SimKv>> kvs;  // outlive the host
    std::unique_ptr<Host> host;
  };

  // Range i (group i + 1) lives on the replicas_ machines from i on; its leader belongs
  // on machine i mod M.
  int Home(GroupId g) const { return static_cast<int>((g - 1) % static_cast<GroupId>(m_)); }
  bool StartHosts();
  // Moves every leader home; false if some range has none at the deadline.
  bool SpreadLeaders(Clock::time_point deadline);
  // Runs `fn` on machine j's front end after charging `cost` to it.
  void FrontEnd(int j, int client, microseconds cost, std::function<void()> fn);
  microseconds Hop() {
    return microseconds(world_.rng().Range(o_.net_delay_min.count(), o_.net_delay_max.count()));
  }
  void Issue(int client);
  // A write answered. A failed one (a leader moved) refreshes the range's route.
  void Done(int client, GroupId g, Clock::time_point start, bool forwarded, bool ok);
  bool InWindow(Clock::time_point t) const { return t >= window_start_ && t < window_end_; }

  const ScaleModelOptions o_;
  SimWorld world_;
  SimNetwork net_;
  const int m_;
  const int replicas_;
  int ranges_ = 0;
  std::map<NodeId, std::string> addrs_;
  std::vector<std::unique_ptr<MachineProc>> machines_;
  std::map<GroupId, int> leader_;  // the clients' routing: the machine leading each range
  int creating_ = 0;               // CreateGroup calls not answered yet
  bool finished_ = false;
  bool load_on_ = false;
  Clock::time_point window_start_ = Clock::time_point::max();
  Clock::time_point window_end_ = Clock::time_point::max();
  std::uint64_t next_key_ = 0;
  ScaleModelResult res_;
  double latency_sum_ms_ = 0;
  std::uint64_t forwarded_ = 0;
};

bool ScaleModel::StartHosts() {
  for (int j = 0; j < m_; ++j) {
    MachineProc& mc = *machines_[static_cast<std::size_t>(j)];
    mc.fs = std::make_unique<SimFileSystem>(mc.disk.get());
    auto env = std::make_unique<SimEnv>(&world_, &net_, j, mc.fs.get(), 0);
    HostOptions ho;
    ho.self = static_cast<NodeId>(j + 1);
    ho.listen_addr = addrs_[ho.self];
    ho.peers = addrs_;
    ho.data_dir = fmt::format("/data/m{}", j);
    ho.cluster_id = "scale";
    ho.snapshot_entries = 0;  // the model measures the write path (as host_bench)
    auto host = Host::StartWithEnv(ho, std::move(env));
    if (!host.ok()) {
      res_.error = fmt::format("machine {}: {}", j, host.status().ToString());
      return false;
    }
    mc.host = std::move(host).value();
  }
  for (GroupId g = 1; g <= static_cast<GroupId>(ranges_); ++g) {
    std::vector<NodeId> voters;
    for (int k = 0; k < replicas_; ++k)
      voters.push_back(static_cast<NodeId>((Home(g) + k) % m_ + 1));
    for (NodeId p : voters) {
      MachineProc& mc = *machines_[static_cast<std::size_t>(p - 1)];
      auto kv = std::make_unique<SimKv>([this](const Entry& e) {
        if (e.type == EntryType::kNormal && !e.data.empty()) world_.ChargeCpu(o_.apply_us);
      });
      SimKv* sm = kv.get();
      mc.kvs[g] = std::move(kv);
      ++creating_;
      mc.host->CreateGroup(g, voters, sm, [this, g](Status s) {
        --creating_;
        if (!s.ok()) res_.error = fmt::format("range {}: {}", g, s.ToString());
      });
    }
  }
  while (creating_ > 0 && world_.Step()) {
  }
  return res_.error.empty() && creating_ == 0;
}

bool ScaleModel::SpreadLeaders(Clock::time_point deadline) {
  while (world_.Now() < deadline) {
    bool all_home = true;
    for (GroupId g = 1; g <= static_cast<GroupId>(ranges_); ++g) {
      const int home = Home(g);
      auto st = machines_[static_cast<std::size_t>(home)]->host->GroupStatus(g);
      if (!st.ok() || st->leader == kNoNode) {
        all_home = false;
        continue;
      }
      leader_[g] = static_cast<int>(st->leader - 1);
      if (st->leader == static_cast<NodeId>(home + 1)) continue;
      all_home = false;
      machines_[st->leader - 1]->host->TransferLeadership(g, static_cast<NodeId>(home + 1),
                                                          milliseconds(500), [](Status) {});
    }
    if (all_home) return true;
    world_.RunUntil(world_.Now() + milliseconds(300));
  }
  for (GroupId g = 1; g <= static_cast<GroupId>(ranges_); ++g)
    if (!leader_.count(g)) {
      res_.error = fmt::format("range {} has no leader", g);
      return false;
    }
  return true;  // some leaders not home: the load still runs, less spread
}

void ScaleModel::FrontEnd(int j, int client, microseconds cost, std::function<void()> fn) {
  const int slot = m_ + j;
  // The clients of one machine spread over its front end's lanes (client c is on
  // machine c mod M).
  world_.Post(slot, world_.Incarnation(slot), static_cast<Lane>(client / m_ % kLanes),
              [this, cost, fn = std::move(fn)] {
                world_.ChargeCpu(cost);
                fn();
              });
}

void ScaleModel::Issue(int client) {
  if (!load_on_) return;
  const GroupId g = 1 + world_.rng().Uniform(static_cast<std::uint64_t>(ranges_));
  const int leader = leader_[g];
  const int j = o_.direct ? leader : client % m_;
  const std::string cmd = EncodePut(fmt::format("k{}", next_key_++),
                                    std::string(static_cast<std::size_t>(o_.value_bytes), 'v'));
  const Clock::time_point start = world_.Now();
  // Propose on the leader's host; `answer` runs on the leader's front end.
  auto propose = [this, g, leader, client, cmd](std::function<void(bool)> answer) {
    machines_[static_cast<std::size_t>(leader)]->host->Propose(
        g, cmd, milliseconds(5000),
        [this, leader, client, answer = std::move(answer)](Result<std::string> r) {
          if (finished_) return;
          const bool ok = r.ok();
          FrontEnd(leader, client, microseconds(0), [answer, ok] { answer(ok); });
        });
  };
  if (leader == j) {
    FrontEnd(j, client, o_.http_us, [this, g, propose, client, start] {
      propose([this, g, client, start](bool ok) { Done(client, g, start, false, ok); });
    });
    return;
  }
  FrontEnd(j, client, o_.http_us + o_.forward_us, [this, g, propose, client, start, j, leader] {
    world_.After(Hop(), [this, g, propose, client, start, j, leader] {
      FrontEnd(leader, client, o_.forward_us, [this, g, propose, client, start, j, leader] {
        propose([this, g, client, start, j, leader](bool ok) {
          FrontEnd(leader, client, o_.forward_us, [this, g, client, start, j, ok] {
            world_.After(Hop(), [this, g, client, start, j, ok] {
              FrontEnd(j, client, o_.forward_us,
                       [this, g, client, start, ok] { Done(client, g, start, true, ok); });
            });
          });
        });
      });
    });
  });
}

void ScaleModel::Done(int client, GroupId g, Clock::time_point start, bool forwarded, bool ok) {
  if (!ok) {
    ++res_.failed;
    auto st = machines_[static_cast<std::size_t>(Home(g))]->host->GroupStatus(g);
    if (st.ok() && st->leader != kNoNode) leader_[g] = static_cast<int>(st->leader - 1);
  } else if (InWindow(world_.Now())) {
    ++res_.writes;
    if (forwarded) ++forwarded_;
    latency_sum_ms_ += std::chrono::duration<double, std::milli>(world_.Now() - start).count();
  }
  Issue(client);
}

ScaleModelResult ScaleModel::Run() {
  res_.machines = m_;
  res_.ranges = ranges_;
  if (!StartHosts()) return res_;
  if (!SpreadLeaders(world_.Now() + std::chrono::seconds(30))) return res_;
  load_on_ = true;
  const int clients = o_.clients_per_machine * m_;
  for (int c = 0; c < clients; ++c) Issue(c);
  world_.RunUntil(world_.Now() + o_.warmup);
  window_start_ = world_.Now();
  window_end_ = window_start_ + o_.window;
  std::vector<microseconds> busy0;
  std::vector<std::uint64_t> syncs0;
  for (int j = 0; j < m_; ++j) {
    busy0.push_back(world_.MachineBusy(j));
    syncs0.push_back(machines_[static_cast<std::size_t>(j)]->disk->counters().fsyncs);
  }
  const std::uint64_t frames0 = net_.stats().frames_sent;
  world_.RunUntil(window_end_);
  const double secs = std::chrono::duration<double>(o_.window).count();
  double util_sum = 0;
  double busy_sum = 0;
  std::uint64_t syncs = 0;
  for (int j = 0; j < m_; ++j) {
    const double busy =
        std::chrono::duration<double>(world_.MachineBusy(j) - busy0[static_cast<std::size_t>(j)])
            .count();
    busy_sum += busy;
    const double util = busy / (secs * o_.cores);
    util_sum += util;
    res_.max_cpu_utilization = std::max(res_.max_cpu_utilization, util);
    syncs += machines_[static_cast<std::size_t>(j)]->disk->counters().fsyncs -
             syncs0[static_cast<std::size_t>(j)];
  }
  load_on_ = false;
  res_.cpu_utilization = util_sum / m_;
  res_.fsyncs_per_machine_second = static_cast<double>(syncs) / m_ / secs;
  res_.writes_per_second = static_cast<double>(res_.writes) / secs;
  if (res_.writes > 0) {
    res_.mean_latency_ms = latency_sum_ms_ / static_cast<double>(res_.writes);
    res_.cpu_us_per_write = busy_sum * 1e6 / static_cast<double>(res_.writes);
    res_.forwarded = static_cast<double>(forwarded_) / static_cast<double>(res_.writes);
    res_.frames_per_write =
        static_cast<double>(net_.stats().frames_sent - frames0) / static_cast<double>(res_.writes);
  }
  return res_;
}

}  // namespace

ScaleModelResult RunScaleModel(const ScaleModelOptions& options) {
  ScaleModel model(options);
  return model.Run();
}

}  // namespace raft::nodesim
