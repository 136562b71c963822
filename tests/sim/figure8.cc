#include "figure8.h"

#include <set>
#include <string>
#include <vector>

#include "cluster.h"

namespace raft::sim {
namespace {

NodeId LeaderAmong(Cluster& c, const std::set<NodeId>& group) {
  for (NodeId id : group) {
    if (c.Running(id) && c.node(id).raw->role() == Role::kLeader) return id;
  }
  return kNoNode;
}

void Require(bool ok, const std::string& what) {
  if (!ok) throw SimFailure("figure 8 script: " + what);
}

}  // namespace

void RunScriptedFigure8(std::uint64_t seed) {
  ClusterOptions o;
  o.voters = 5;
  o.max_msg_bytes = 1;  // one entry per append: the old entry and the no-op travel apart
  o.check_electability = true;
  Cluster c(o, seed, nullptr);
  Require(c.ProposeAndCommit("base", 300) != 0, "no initial commit");
  c.RunTicks(20);
  NodeId s1 = c.Leader();
  Require(s1 != kNoNode, "no leader");
  std::vector<NodeId> f;
  for (NodeId id : c.ids()) {
    if (id != s1) f.push_back(id);
  }
  NodeId s2 = f[0], s3 = f[1], s4 = f[2], s5 = f[3];
  std::set<NodeId> all = c.all_ids();
  // (a) S1 replicates X to S2 only, then both crash.
  c.net().Isolate({s1, s2}, all);
  Require(c.Propose(s1, "X").ok(), "S1 refused X");
  c.RunTicks(5);
  c.Crash(s1);
  c.Crash(s2);
  c.net().HealAll();
  // (b) S3..S5 elect a leader, which writes Y locally only and crashes.
  Require(c.RunUntil(
              [&] {
                return LeaderAmong(c, {s3, s4, s5}) != kNoNode;
              },
              300),
          "no leader among S3..S5");
  NodeId l2 = LeaderAmong(c, {s3, s4, s5});
  c.net().Isolate({l2}, all);
  Require(c.Propose(l2, "Y").ok(), "refused Y");
  c.RunTicks(3);
  c.Crash(l2);
  c.net().HealAll();
  // (c) S1 and S2 return; the leader of the next term may copy X to a majority but must
  // not count it as committed before an entry of its own term is replicated too. Keep the
  // Y holder away while it happens, then let it back.
  c.net().Isolate({l2}, all);
  c.Restart(s1);
  c.Restart(s2);
  c.Restart(l2);
  Require(c.RunUntil([&] { return c.Leader() != kNoNode && c.Leader() != l2; }, 300),
          "no leader after S1 returned");
  c.RunTicks(30);
  c.net().HealAll();
  Index i = c.ProposeAndCommit("final", 400);
  Require(i != 0, "final entry not committed");
  Require(c.RunUntil(
              [&] {
                for (NodeId id : c.ids()) {
                  if (c.node(id).applied < i) return false;
                }
                return true;
              },
              400),
          "not every node applied the final entry");
}

}  // namespace raft::sim
