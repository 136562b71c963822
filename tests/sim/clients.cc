#include "clients.h"

#include <fmt/format.h>

#include "cluster.h"

namespace raft::sim {

Clients::Clients(Cluster* cluster, const ClientOptions& options)
    : cluster_(cluster), options_(options) {
  for (int i = 0; i < options_.clients; ++i) {
    Client c;
    c.id = static_cast<std::uint64_t>(i + 1);
    clients_.push_back(c);
  }
}

void Clients::Tick() {
  for (Client& c : clients_) {
    if (c.out && cluster_->now() >= c.out->deadline) {
      cluster_->Log(fmt::format("client{} gives up on op {} (unknown outcome)", c.id, c.out->op));
      Abandon(c);
    }
    if (!c.out && issuing_ && cluster_->rng().Chance(options_.issue_chance)) Issue(c);
  }
}

NodeId Clients::PickNode(Client& c, bool any) {
  if (!any && c.leader_hint != kNoNode && cluster_->Running(c.leader_hint)) return c.leader_hint;
  std::vector<NodeId> up;
  for (NodeId id : cluster_->ids()) {
    if (cluster_->Running(id)) up.push_back(id);
  }
  if (up.empty()) return kNoNode;
  return up[cluster_->rng().Uniform(up.size())];
}

void Clients::Issue(Client& c) {
  Rng& rng = cluster_->rng();
  std::string key = fmt::format("k{}", rng.Uniform(static_cast<std::uint64_t>(options_.keys)));
  std::string value = fmt::format("c{}v{}", c.id, ++c.seq);
  double r = rng.Real();
  lin::Input in;
  if (r < options_.get_share) {
    in = lin::Input::Get(key);
  } else if (r < options_.get_share + options_.cas_share) {
    std::optional<std::string> expected;
    if (rng.Chance(0.8) && c.seq > 1) {
      auto peer = rng.Uniform(static_cast<std::uint64_t>(options_.clients)) + 1;
      expected = fmt::format("c{}v{}", peer, rng.Range(1, static_cast<std::int64_t>(c.seq)));
    }
    in = lin::Input::Cas(key, expected, value);
  } else {
    in = lin::Input::Put(key, value);
  }
  bool is_get = in.kind == lin::OpKind::kGet;
  NodeId target = PickNode(c, is_get && rng.Chance(options_.any_node_reads));
  if (target == kNoNode) return;
  SimNode& n = cluster_->node(target);
  Outstanding o;
  o.input = in;
  o.node = target;
  o.incarnation = n.incarnation;
  o.deadline = cluster_->now() + options_.timeout_ticks;
  o.op = recorder_.Invoke(c.id, Stamp(), in);
  ++issued_;
  if (is_get) {
    o.context = fmt::format("read-c{}-{}", c.id, o.op);
    Status s = n.raw->ReadIndex(o.context);
    if (!s.ok()) {
      recorder_.Discard(o.op);
      c.leader_hint = kNoNode;
      return;
    }
    cluster_->Log(fmt::format("client{} get {} at n{} (op {})", c.id, key, target, o.op));
  } else {
    KvOp op{c.id, o.op + 1, in};
    auto r = n.raw->Propose(EncodeKvOp(op));
    if (!r.ok()) {
      recorder_.Discard(o.op);
      NodeId hint = kNoNode;
      const std::string& msg = r.status().message();
      if (msg.rfind("leader is ", 0) == 0) hint = std::stoull(msg.substr(10));
      c.leader_hint = hint;
      return;
    }
    o.pos = *r;
    cluster_->Log(fmt::format("client{} {} at n{} -> {}/{} (op {})", c.id,
                              lin::DescribeOperation(lin::Operation{c.id, 0, {}, in, {}}), target,
                              o.pos.index, o.pos.term, o.op));
  }
  c.leader_hint = target;
  c.out = std::move(o);
  cluster_->Kick(target);
}

void Clients::Finish(Client& c, const lin::Output& out) {
  recorder_.Complete(c.out->op, Stamp(), out);
  ++completed_;
  c.out.reset();
}

void Clients::Abandon(Client& c) { c.out.reset(); }

void Clients::OnApplied(const SimNode& n, const Entry& e, const KvOp* op, const lin::Output& out) {
  for (Client& c : clients_) {
    if (!c.out || c.out->node != n.id || c.out->incarnation != n.incarnation) continue;
    if (c.out->input.kind == lin::OpKind::kGet || c.out->pos.index != e.index) continue;
    if (e.term == c.out->pos.term) {
      if (op == nullptr || op->op_id != c.out->op + 1) {
        throw SimFailure(
            fmt::format("tick {}: entry {}/{} applied at n{} is not client{}'s "
                        "proposal",
                        cluster_->now(), e.index, e.term, n.id, c.id));
      }
      Finish(c, out);
    } else {
      recorder_.Discard(c.out->op);
      c.out.reset();
    }
  }
}

void Clients::OnReadState(const SimNode& n, const ReadState& rs) {
  for (Client& c : clients_) {
    if (c.out && c.out->node == n.id && c.out->incarnation == n.incarnation &&
        c.out->context == rs.context) {
      c.out->read_index = rs.index;
    }
  }
}

void Clients::ServeReads(const SimNode& n) {
  for (Client& c : clients_) {
    if (!c.out || c.out->node != n.id || c.out->incarnation != n.incarnation) continue;
    if (c.out->read_index == 0 || n.applied < c.out->read_index) continue;
    Finish(c, lin::Output::Value(n.kv.Get(c.out->input.key)));
  }
}

void Clients::OnCrash(NodeId id) {
  for (Client& c : clients_) {
    if (c.out && c.out->node == id) Abandon(c);
  }
}

}  // namespace raft::sim
