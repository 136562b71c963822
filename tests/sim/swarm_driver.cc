#include "swarm_driver.h"

#include <fmt/format.h>

namespace raft::sim {

void SwarmDriver::Inject() {
  Rng& rng = c_.rng();
  if (rng.Chance(mix_.partition)) NewPartition();
  if (rng.Chance(mix_.heal) && !c_.net().blocked().empty()) {
    c_.net().HealAll();
    c_.Log("FAULT heal all links");
  }
  if (rng.Chance(mix_.flap)) Flap();
  if (rng.Chance(mix_.crash)) CrashOne();
  if (rng.Chance(mix_.restart)) RestartOne();
  if (rng.Chance(mix_.crash_leader)) {
    NodeId l = c_.Leader();
    if (l != kNoNode) c_.Crash(l, mix_.torn && rng.Chance(0.5));
  }
  if (mix_.crash_new_leader > 0) {
    NodeId l = c_.Leader();
    Term t = l == kNoNode ? 0 : c_.node(l).raw->term();
    if (t > last_leader_term_) {
      last_leader_term_ = t;
      if (rng.Chance(mix_.crash_new_leader)) c_.Crash(l, mix_.torn && rng.Chance(0.5));
    }
  }
  if (mix_.keep_majority_up) {
    std::size_t up = 0, live = Live().size();
    for (NodeId id : Live()) up += c_.Running(id);
    if (up < live / 2 + 1) RestartOne();
  }
  if (rng.Chance(mix_.pause)) {
    NodeId id = RandomRunning();
    if (id != kNoNode) {
      int ticks = static_cast<int>(rng.Range(1, mix_.pause_max_ticks));
      // With lease reads a leader is not paused (see FaultMix::lease_reads); a follower's
      // stopped clock only makes its promise last longer.
      bool spare = mix_.lease_reads && c_.node(id).raw->role() == Role::kLeader;
      if (!spare) c_.Pause(id, ticks);
    }
  }
  if (rng.Chance(mix_.slow_disk * 0.01)) {
    NodeId id = RandomRunning();
    if (id != kNoNode) {
      int hi = static_cast<int>(rng.Range(0, mix_.disk_max_ticks));
      c_.SetDiskDelay(id, 0, hi);
      c_.Log(fmt::format("FAULT n{} disk now takes 0..{} ticks", id, hi));
    }
  }
  // Drawn only when on, so that runs without them keep their schedules.
  if (mix_.conn_reset > 0 && rng.Chance(mix_.conn_reset)) ResetLeaderConnection();
  if (mix_.bounce > 0 && rng.Chance(mix_.bounce)) Bounce();
  if (rng.Chance(mix_.conf_change)) ConfChangeOne();
  if (rng.Chance(mix_.transfer)) TransferOne();
  if (rng.Chance(mix_.snapshot)) {
    NodeId id = RandomRunning();
    if (id != kNoNode)
      c_.TakeSnapshot(id, static_cast<Index>(rng.Range(0, mix_.snapshot_keep_max)));
  }
}

std::vector<NodeId> SwarmDriver::Live() const {
  std::vector<NodeId> out;
  for (NodeId id : c_.ids()) {
    if (!c_.node(id).retired) out.push_back(id);
  }
  return out;
}
NodeId SwarmDriver::RandomRunning() {
  std::vector<NodeId> up;
  for (NodeId id : Live()) {
    if (c_.Running(id)) up.push_back(id);
  }
  return up.empty() ? kNoNode : up[c_.rng().Uniform(up.size())];
}

void SwarmDriver::NewPartition() {
  Rng& rng = c_.rng();
  Network& net = c_.net();
  std::set<NodeId> all = c_.all_ids();
  std::vector<NodeId> live = Live();
  if (live.size() < 2) return;
  net.HealAll();
  switch (rng.Uniform(5)) {
    case 0: {  // random split
      std::set<NodeId> side;
      for (NodeId id : live) {
        if (rng.Chance(0.5)) side.insert(id);
      }
      net.Isolate(side, all);
      c_.Log(fmt::format("FAULT partition: {} nodes split off", side.size()));
      break;
    }
    case 1: {  // isolate the leader
      NodeId l = c_.Leader();
      if (l == kNoNode) l = live[rng.Uniform(live.size())];
      net.Isolate({l}, all);
      c_.Log(fmt::format("FAULT isolate n{}", l));
      break;
    }
    case 2: {  // asymmetric: cut some directed links
      int k = static_cast<int>(rng.Range(1, static_cast<std::int64_t>(live.size())));
      for (int i = 0; i < k; ++i) {
        NodeId a = live[rng.Uniform(live.size())], b = live[rng.Uniform(live.size())];
        if (a != b) net.Block(a, b);
      }
      c_.Log(fmt::format("FAULT asymmetric: {} directed links cut", net.blocked().size()));
      break;
    }
    case 3: {  // partial connectivity: a connected majority core, others reach one member
      std::vector<NodeId> order = live;
      for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Uniform(i)]);
      std::size_t core = order.size() / 2 + 1;
      for (std::size_t i = core; i < order.size(); ++i) {
        NodeId x = order[i];
        NodeId bridge = order[rng.Uniform(core)];
        for (NodeId y : all) {
          if (y != x && y != bridge) net.BlockBoth(x, y);
        }
      }
      c_.Log(fmt::format("FAULT partial connectivity: core of {}", core));
      break;
    }
    default: {  // isolate a random node
      NodeId x = live[rng.Uniform(live.size())];
      net.Isolate({x}, all);
      c_.Log(fmt::format("FAULT isolate n{}", x));
      break;
    }
  }
}

void SwarmDriver::Flap() {
  std::vector<NodeId> live = Live();
  if (live.size() < 2) return;
  Rng& rng = c_.rng();
  NodeId a = live[rng.Uniform(live.size())], b = live[rng.Uniform(live.size())];
  if (a == b) return;
  if (c_.net().Connected(a, b)) {
    c_.net().BlockBoth(a, b);
  } else {
    c_.net().Unblock(a, b);
    c_.net().Unblock(b, a);
  }
  c_.Log(fmt::format("FAULT flap n{}<->n{}", a, b));
}

void SwarmDriver::CrashOne() {
  std::vector<NodeId> live = Live();
  std::size_t up = 0;
  for (NodeId id : live) up += c_.Running(id);
  if (!mix_.majority_crash && up <= live.size() / 2 + 1) return;
  NodeId id = RandomRunning();
  if (id == kNoNode) return;
  c_.Crash(id, mix_.torn && c_.rng().Chance(0.5));
}

void SwarmDriver::RestartOne() {
  std::vector<NodeId> down;
  for (NodeId id : Live()) {
    if (!c_.Running(id)) down.push_back(id);
  }
  if (!down.empty()) c_.Restart(down[c_.rng().Uniform(down.size())]);
}

void SwarmDriver::ConfChangeOne() {
  NodeId l = c_.Leader();
  if (l == kNoNode) return;
  Rng& rng = c_.rng();
  ConfState conf = c_.node(l).raw->GetStatus().conf;
  std::vector<NodeId> spares;
  for (NodeId id : c_.all_ids()) {
    if (!c_.node(id).started) spares.push_back(id);
  }
  ConfChange cc;
  std::uint64_t pick = rng.Uniform(4);
  if (pick == 0 && !spares.empty()) {
    cc = {ConfChangeType::kAddLearner, spares.front(), {}};
  } else if (pick == 1 && !conf.learners.empty()) {
    cc = {ConfChangeType::kAddVoter, *conf.learners.begin(), {}};
  } else if (pick == 2 && !spares.empty()) {
    cc = {ConfChangeType::kAddVoter, spares.front(), {}};
  } else if (conf.voters.size() > 3 || !conf.learners.empty()) {
    std::vector<NodeId> members(conf.voters.begin(), conf.voters.end());
    if (conf.voters.size() <= 3) members.clear();
    members.insert(members.end(), conf.learners.begin(), conf.learners.end());
    cc = {ConfChangeType::kRemoveNode, members[rng.Uniform(members.size())], {}};
  } else {
    return;
  }
  auto r = c_.node(l).raw->ProposeConfChange(cc);
  c_.Log(fmt::format("MEMBERSHIP n{} proposes {} n{}: {}", l,
                     cc.type == ConfChangeType::kAddLearner ? "add-learner"
                     : cc.type == ConfChangeType::kAddVoter ? "add-voter"
                                                            : "remove",
                     cc.node, r.ok() ? fmt::format("at {}", r->index) : r.status().ToString()));
  if (r.ok() && cc.type != ConfChangeType::kRemoveNode) c_.StartSpare(cc.node);
  c_.Kick(l);
}

void SwarmDriver::TransferOne() {
  NodeId l = c_.Leader();
  if (l == kNoNode) return;
  ConfState conf = c_.node(l).raw->GetStatus().conf;
  std::vector<NodeId> others;
  for (NodeId v : conf.voters) {
    if (v != l) others.push_back(v);
  }
  if (others.empty()) return;
  NodeId t = others[c_.rng().Uniform(others.size())];
  Status s = c_.node(l).raw->TransferLeadership(t);
  c_.Log(fmt::format("TRANSFER n{} -> n{}: {}", l, t, s.ok() ? "started" : s.ToString()));
  c_.Kick(l);
}

// The runtime's transport reports ReportLeaderLost whenever an inbound connection ends,
// also when the peer is alive (a reset, a middlebox): a follower hears it about its
// live leader.
void SwarmDriver::ResetLeaderConnection() {
  NodeId id = RandomRunning();
  if (id == kNoNode || c_.node(id).raw->role() != Role::kFollower) return;
  NodeId lead = c_.node(id).raw->leader();
  if (lead == kNoNode) return;
  c_.Log(fmt::format("FAULT n{}: connection from its leader n{} reset", id, lead));
  c_.node(id).raw->ReportLeaderLost(lead);
  c_.Kick(id);
}

// A crash and an immediate restart (a supervisor restarting the process at once): the
// node comes back inside the election timeout of whatever it acknowledged before.
void SwarmDriver::Bounce() {
  NodeId id = RandomRunning();
  if (id == kNoNode) return;
  c_.Log(fmt::format("FAULT n{} bounces (crash, restart at once)", id));
  c_.Crash(id, mix_.torn && c_.rng().Chance(0.5));
  c_.Restart(id);
}

}  // namespace raft::sim
