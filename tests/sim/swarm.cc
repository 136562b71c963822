#include "swarm.h"

#include <fmt/format.h>

#include "clients.h"
#include "cluster.h"
#include "lin_checker.h"
#include "swarm_driver.h"

namespace raft::sim {
namespace {

// Sets every fault group of `m` that `on` selects, with intensities drawn from rng.
struct Groups {
  bool net = false, partition = false, crash = false, pause = false, disk = false;
  bool membership = false, transfer = false, snapshot = false;
};

void Fill(FaultMix& m, const Groups& g, Rng& rng) {
  if (g.net) {
    m.net.drop = rng.Real() * 0.2;
    m.net.duplicate = rng.Real() * 0.1;
    m.net.delay_max_ticks = static_cast<int>(rng.Range(1, 6));
    m.net.long_delay = rng.Real() * 0.05;
    m.net.long_delay_max_ticks = static_cast<int>(rng.Range(20, 200));
  }
  if (g.partition) {
    m.partition = 0.002 + rng.Real() * 0.02;
    m.heal = 0.005 + rng.Real() * 0.02;
    m.flap = rng.Chance(0.5) ? rng.Real() * 0.05 : 0;
  }
  if (g.crash) {
    m.crash = 0.001 + rng.Real() * 0.01;
    m.restart = 0.01 + rng.Real() * 0.05;
    m.torn = rng.Chance(0.7);
    m.majority_crash = rng.Chance(0.5);
  }
  if (g.pause) {
    m.pause = 0.002 + rng.Real() * 0.01;
    m.pause_max_ticks = static_cast<int>(rng.Range(5, 60));
  }
  if (g.disk) {
    m.slow_disk = rng.Real();
    m.disk_max_ticks = static_cast<int>(rng.Range(1, 20));
  }
  if (g.membership) m.conf_change = 0.002 + rng.Real() * 0.02;
  if (g.transfer) m.transfer = 0.002 + rng.Real() * 0.01;
  if (g.snapshot) {
    m.snapshot = 0.005 + rng.Real() * 0.05;
    m.snapshot_keep_max = static_cast<int>(rng.Range(0, 20));
  }
  m.client_issue = 0.05 + rng.Real() * 0.5;
  m.max_msg_bytes = rng.Chance(0.5) ? 1 << 20 : static_cast<std::uint64_t>(rng.Range(1, 200));
  m.max_inflight_msgs = rng.Chance(0.5) ? 256 : static_cast<std::uint32_t>(rng.Range(1, 4));
}

}  // namespace

std::string FaultMix::Describe() const {
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : " ") + part; };
  if (net.drop > 0 || net.duplicate > 0 || net.delay_max_ticks > 1) {
    add(fmt::format("net(drop={:.2f} dup={:.2f} delay<={} long={:.2f}/{})", net.drop, net.duplicate,
                    net.delay_max_ticks, net.long_delay, net.long_delay_max_ticks));
  }
  if (partition > 0)
    add(fmt::format("partition({:.3f} heal={:.3f} flap={:.3f})", partition, heal, flap));
  if (crash_leader > 0) {
    add(fmt::format("crash-leader({:.3f} new={:.2f})", crash_leader, crash_new_leader));
  }
  if (crash > 0) {
    add(fmt::format("crash({:.3f} restart={:.3f}{}{})", crash, restart, torn ? " torn" : "",
                    majority_crash ? " majority" : ""));
  }
  if (pause > 0) add(fmt::format("pause({:.3f} <={})", pause, pause_max_ticks));
  if (slow_disk > 0) add(fmt::format("slowdisk({:.2f} <={})", slow_disk, disk_max_ticks));
  if (conf_change > 0) add(fmt::format("membership({:.3f})", conf_change));
  if (transfer > 0) add(fmt::format("transfer({:.3f})", transfer));
  if (snapshot > 0) add(fmt::format("snapshot({:.3f} keep<={})", snapshot, snapshot_keep_max));
  add(fmt::format("clients({:.2f}) msgbytes={} inflight={}", client_issue, max_msg_bytes,
                  max_inflight_msgs));
  if (conn_reset > 0) add(fmt::format("conn-reset({:.3f})", conn_reset));
  if (bounce > 0) add(fmt::format("bounce({:.3f})", bounce));
  if (lease_reads) add("lease-reads");
  return s;
}

const std::vector<std::string>& ProfileNames() {
  static const std::vector<std::string> kNames = {"swarm", "all",        "reliable", "network",
                                                  "crash", "membership", "snapshot", "figure8"};
  return kNames;
}

bool IsProfile(const std::string& name) {
  for (const auto& n : ProfileNames()) {
    if (n == name) return true;
  }
  return false;
}

FaultMix PickMix(Rng& rng, const std::string& profile) {
  Groups g;
  if (profile == "swarm") {
    g = Groups{rng.Chance(0.5), rng.Chance(0.5), rng.Chance(0.5), rng.Chance(0.5),
               rng.Chance(0.5), rng.Chance(0.5), rng.Chance(0.5), rng.Chance(0.5)};
  } else if (profile == "all") {
    g = Groups{true, true, true, true, true, true, true, true};
  } else if (profile == "network") {
    g.net = g.partition = true;
  } else if (profile == "crash") {
    g.crash = g.pause = g.disk = true;
  } else if (profile == "membership") {
    g.membership = g.transfer = g.net = true;
    g.partition = rng.Chance(0.5);
  } else if (profile == "snapshot") {
    g.snapshot = g.net = true;
    g.crash = rng.Chance(0.5);
  }
  FaultMix m;
  Fill(m, g, rng);
  if (profile == "figure8") {
    m.net.delay_max_ticks = static_cast<int>(rng.Range(1, 4));
    m.crash_leader = 0.01 + rng.Real() * 0.04;
    m.crash_new_leader = 0.4 + rng.Real() * 0.5;
    m.net.delay_min_ticks = 1;
    m.restart = 0.02 + rng.Real() * 0.1;
    m.torn = rng.Chance(0.5);
    m.keep_majority_up = true;
    m.client_issue = 0.3 + rng.Real() * 0.6;
    m.max_msg_bytes = 1;  // one entry per append: replication lags entry by entry
    m.max_inflight_msgs = 256;
  }
  return m;
}

std::string ReplayCommand(const RunOptions& o) {
  std::string s = fmt::format("raft_sim --seed {}", o.seed);
  if (o.nodes != 0) s += fmt::format(" --nodes {}", o.nodes);
  if (o.profile != "swarm") s += " --profile " + o.profile;
  if (o.fault_ticks != RunOptions{}.fault_ticks) s += fmt::format(" --ticks {}", o.fault_ticks);
  if (o.lease_reads) s += " --lease";
  if (o.quiesce) s += " --quiesce";
  return s + " --trace";
}

RunResult RunSeed(const RunOptions& o) {
  RunResult res;
  Rng rng(o.seed);
  static constexpr int kSizes[] = {3, 5, 7};
  res.nodes = o.nodes != 0 ? o.nodes : kSizes[rng.Uniform(3)];
  if (o.profile == "figure8" && o.nodes == 0) res.nodes = 5;
  FaultMix mix = PickMix(rng, o.profile);
  if (o.lease_reads) {
    mix.lease_reads = true;
    mix.conn_reset = rng.Chance(0.5) ? 0.002 + rng.Real() * 0.02 : 0;
    mix.bounce = rng.Chance(0.5) ? 0.001 + rng.Real() * 0.01 : 0;
  }
  res.mix = mix.Describe();
  ClusterOptions copts;
  copts.voters = res.nodes;
  copts.spares = 2;
  copts.max_msg_bytes = mix.max_msg_bytes;
  copts.max_inflight_msgs = mix.max_inflight_msgs;
  copts.check_electability = mix.conf_change == 0;
  copts.lease_reads = o.lease_reads;
  copts.quiesce = o.quiesce;
  Trace trace(o.trace);
  trace.Log(
      0, fmt::format("seed {} nodes {} profile {} mix: {}", o.seed, res.nodes, o.profile, res.mix));
  try {
    Cluster c(copts, rng.Next(), &trace);
    ClientOptions cl;
    cl.issue_chance = mix.client_issue;
    Clients clients(&c, cl);
    c.set_clients(&clients);
    c.net().set_faults(mix.net);
    for (NodeId id : c.all_ids()) {
      if (c.rng().Chance(mix.slow_disk)) c.SetDiskDelay(id, 0, mix.disk_max_ticks);
    }
    SwarmDriver driver(c, mix);
    // Quiescence runs: the clients rest for stretches of 20..150 ticks, so that groups
    // fall asleep amid the faults (and wake on the next request, or on the detector).
    std::int64_t rest_toggle =
        o.quiesce ? 20 + static_cast<std::int64_t>(c.rng().Uniform(100)) : -1;
    bool resting = false;
    for (int t = 0; t < o.fault_ticks; ++t) {
      if (t == rest_toggle) {
        resting = !resting;
        clients.set_issuing(!resting);
        c.Log(resting ? "CLIENTS rest" : "CLIENTS resume");
        rest_toggle = t + 20 + static_cast<std::int64_t>(c.rng().Uniform(resting ? 130 : 100));
      }
      driver.Inject();
      c.Tick();
    }
    // Liveness: heal everything.
    c.Log("LIVENESS: heal all links, restart and unpause every node, fast disks");
    c.net().HealAll();
    c.net().set_faults(NetFaults{});
    for (NodeId id : c.ids()) {
      SimNode& n = c.node(id);
      c.SetDiskDelay(id, 0, 0);
      n.paused_until = 0;
      if (!n.retired) c.Restart(id);
    }
    clients.set_issuing(false);
    std::string marker = fmt::format("M|live-{}", o.seed);
    Index idx = c.ProposeAndCommit(marker, o.liveness_ticks);
    if (idx == 0) {
      throw SimFailure(
          fmt::format("liveness: no proposal committed within {} ticks after healing "
                      "(leader now: n{})",
                      o.liveness_ticks, c.Leader()));
    }
    bool caught_up = c.RunUntil(
        [&] {
          for (NodeId id : c.checker().committed_conf().voters) {
            if (c.Running(id) && c.node(id).applied < idx) return false;
          }
          return true;
        },
        o.liveness_ticks);
    if (!caught_up) {
      std::string lag;
      for (NodeId id : c.checker().committed_conf().voters) {
        if (c.Running(id)) lag += fmt::format(" n{}@{}", id, c.node(id).applied);
      }
      throw SimFailure(
          fmt::format("liveness: voters did not all apply the marker at {} within {} "
                      "ticks:{}",
                      idx, o.liveness_ticks, lag));
    }
    c.RunTicks(cl.timeout_ticks);
    if (o.quiesce) {
      // Healed and idle, the group falls asleep: every running voter of the committed
      // configuration. Not expected while a running node outside it remains (a removed
      // member that never learned it: its campaigns wake the voters).
      auto voters = c.checker().committed_conf().voters;
      bool stray = false;
      for (NodeId id : c.ids()) {
        if (c.Running(id) && !voters.count(id) && !c.checker().committed_conf().learners.count(id))
          stray = true;
      }
      bool asleep = c.RunUntil(
          [&] {
            for (NodeId id : voters)
              if (c.Running(id) && !c.node(id).raw->Quiesced()) return false;
            return true;
          },
          20 * copts.election_ticks);
      if (!asleep && !stray) {
        std::string awake;
        for (NodeId id : voters)
          if (c.Running(id) && !c.node(id).raw->Quiesced()) awake += fmt::format(" n{}", id);
        throw SimFailure("quiescence: healed and idle, voters still awake after " +
                         std::to_string(20 * copts.election_ticks) + " ticks:" + awake);
      }
      res.lin_note += asleep ? "" : "stray node kept the group awake";
    }
    res.ticks = c.now();
    if (c.node_ticks() > 0)
      res.asleep =
          static_cast<double>(c.quiesced_node_ticks()) / static_cast<double>(c.node_ticks());
    res.committed = c.checker().applied().size();
    res.ops_completed = clients.completed();
    res.terms_with_leader = c.checker().leaders().size();
    if (o.check_linearizability) {
      lin::CheckResult lr = lin::CheckHistory(clients.history());
      if (lr.verdict == lin::Verdict::kNotLinearizable ||
          lr.verdict == lin::Verdict::kInvalidHistory) {
        throw SimFailure("linearizability: " + lr.ToString());
      }
      if (lr.verdict == lin::Verdict::kTimeout) res.lin_note = "lin checker budget exhausted";
    }
  } catch (const SimFailure& f) {
    res.ok = false;
    res.failure = f.what();
  }
  return res;
}

}  // namespace raft::sim
