#include "cluster.h"

#include <fmt/format.h>

#include "clients.h"

namespace raft::sim {

Cluster::Cluster(const ClusterOptions& options, std::uint64_t seed, const Trace* trace)
    : options_(options), rng_(seed), trace_(trace != nullptr ? trace : &silent_) {
  std::vector<NodeId> voters;
  for (int i = 1; i <= options_.voters; ++i) voters.push_back(static_cast<NodeId>(i));
  for (int i = 1; i <= options_.voters + options_.spares; ++i) {
    SimNode& n = nodes_[static_cast<NodeId>(i)];
    n.id = static_cast<NodeId>(i);
  }
  founding_ = std::set<NodeId>(voters.begin(), voters.end());
  for (NodeId id : voters) {
    SimNode& n = nodes_.at(id);
    n.storage = std::make_unique<MemoryStorage>();
    Status s = n.storage->Bootstrap(voters);
    if (!s.ok()) throw SimFailure("bootstrap failed: " + s.ToString());
    n.started = true;
    n.durable_seen = n.durable_hs();
  }
  for (NodeId id : voters) Restart(id);
}

Cluster::~Cluster() = default;

Config Cluster::NodeConfig(NodeId id, Index applied) {
  Config c;
  c.id = id;
  c.election_ticks = options_.election_ticks;
  c.heartbeat_ticks = options_.heartbeat_ticks;
  c.seed = rng_.Next();
  c.applied = applied;
  c.max_msg_bytes = options_.max_msg_bytes;
  c.max_inflight_msgs = options_.max_inflight_msgs;
  c.pre_vote = options_.pre_vote;
  c.check_quorum = options_.check_quorum;
  c.read_only = options_.lease_reads ? ReadOnlyOption::kLeaseBased : ReadOnlyOption::kSafe;
  c.quiesce = options_.quiesce;
  return c;
}

void Cluster::WatchProcesses() {
  for (auto& [id, n] : nodes_) {
    if (!n.running() || now_ < n.paused_until) continue;  // a stopped process watches nothing
    runtime::ProcessLiveness& live =
        detectors_.try_emplace(id, options_.election_ticks).first->second;
    std::set<NodeId> lost;
    for (const auto& [p, o] : nodes_) {
      if (p == id) continue;
      if (o.running() && now_ >= o.paused_until && net_.Connected(p, id)) live.Heard(p, now_);
      if (live.Lost(p, now_)) lost.insert(p);
    }
    if (runtime::ShouldWake(*n.raw, lost)) {
      std::string names;
      for (NodeId p : lost) names += fmt::format(" n{}", p);
      Log(fmt::format("n{} host lost the process of{} (leader n{}): unquiesce", id, names,
                      n.raw->leader()));
      n.raw->Unquiesce();
      ProcessReady(n);
    }
  }
}

void Cluster::Tick() {
  ++now_;
  checker_.now = now_;
  if (clients_ != nullptr) clients_->Tick();
  if (options_.quiesce) WatchProcesses();
  enum class Kind { kTick, kSync, kDeliver };
  struct Event {
    Kind kind;
    NodeId id;
    Envelope env;
  };
  std::vector<Event> events;
  for (auto& [id, n] : nodes_) {
    if (!n.running() || now_ < n.paused_until) continue;
    events.push_back({Kind::kTick, id, {}});
    if (n.pending && n.pending->sync_tick <= now_) events.push_back({Kind::kSync, id, {}});
  }
  for (Envelope& e : net_.TakeDue(now_)) {
    NodeId to = e.msg.to;
    events.push_back({Kind::kDeliver, to, std::move(e)});
  }
  if (options_.shuffle_events) {
    for (std::size_t i = events.size(); i > 1; --i) {
      std::swap(events[i - 1], events[rng_.Uniform(i)]);
    }
  }
  for (Event& ev : events) {
    auto it = nodes_.find(ev.id);
    switch (ev.kind) {
      case Kind::kTick:
        if (it->second.running() && now_ >= it->second.paused_until) {
          ++node_ticks_;
          quiesced_node_ticks_ += it->second.raw->Quiesced();
          it->second.raw->Tick();
          ProcessReady(it->second);
        }
        break;
      case Kind::kSync:
        if (it->second.running() && it->second.pending && now_ >= it->second.paused_until) {
          CompleteWrite(it->second);
          ProcessReady(it->second);
        }
        break;
      case Kind::kDeliver:
        Deliver(std::move(ev.env));
        break;
    }
    ObserveRoles();
    if (options_.check_electability) checker_.CheckElectability(nodes_, founding_);
  }
}

void Cluster::RunTicks(int n) {
  for (int i = 0; i < n; ++i) Tick();
}

bool Cluster::RunUntil(const std::function<bool()>& pred, int max_ticks) {
  for (int i = 0; i < max_ticks; ++i) {
    if (pred()) return true;
    Tick();
  }
  return pred();
}

std::vector<NodeId> Cluster::ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) {
    if (n.started) out.push_back(id);
  }
  return out;
}

std::set<NodeId> Cluster::all_ids() const {
  std::set<NodeId> out;
  for (const auto& [id, n] : nodes_) out.insert(id);
  return out;
}

bool Cluster::Running(NodeId id) const {
  auto it = nodes_.find(id);
  return it != nodes_.end() && it->second.running();
}

void Cluster::Crash(NodeId id, bool torn) {
  SimNode& n = node(id);
  if (!n.running()) return;
  if (n.pending && torn) TornWrite(n);
  Log(fmt::format("n{} CRASH{} (lost: {})", id, torn ? " torn" : "",
                  n.pending ? fmt::format("write of {} entries{}", n.pending->rd.entries.size(),
                                          n.pending->rd.hard_state ? " + hard state" : "")
                            : std::string("nothing pending")));
  n.raw.reset();
  n.pending.reset();
  n.kv = KvMachine();
  n.applied = 0;
  n.reported_commit = 0;
  n.received_snapshots.clear();
  n.read_states.clear();
  n.paused_until = 0;
  last_role_.erase(id);
  if (clients_ != nullptr) clients_->OnCrash(id);
  // Like the runtime's transport, the others see the crashed node's connections end.
  for (auto& [other, o] : nodes_)
    if (o.running() && now_ >= o.paused_until) o.raw->ReportLeaderLost(id);
}

void Cluster::Restart(NodeId id) {
  SimNode& n = node(id);
  if (n.running() || n.retired || !n.started) return;
  auto snap = n.storage->Snapshot();
  n.kv = KvMachine();
  if (snap->index > 0 && !n.kv.Deserialize(n.snapshot_data)) {
    throw SimFailure(fmt::format("harness: n{} has unreadable snapshot bytes", id));
  }
  n.applied = snap->index;
  n.applied_conf = snap->conf;
  auto r = RawNode::Create(NodeConfig(id, n.applied), n.storage.get());
  if (!r.ok()) {
    throw SimFailure(fmt::format("tick {}: n{} cannot restart from its durable state: {}", now_, id,
                                 r.status().ToString()));
  }
  n.raw = std::move(r).value();
  ++n.incarnation;
  Log(fmt::format("n{} RESTART durable={} log=[{}..{}] snap={}", id,
                  DescribeHardState(n.durable_hs()), n.storage->FirstIndex(),
                  n.storage->LastIndex(), snap->index));
  ProcessReady(n);
  ObserveRoles();
}

void Cluster::Pause(NodeId id, int ticks) {
  SimNode& n = node(id);
  if (!n.running()) return;
  n.paused_until = now_ + ticks;
  Log(fmt::format("n{} PAUSE for {} ticks", id, ticks));
}

void Cluster::SetDiskDelay(NodeId id, int min_ticks, int max_ticks) {
  SimNode& n = node(id);
  n.disk_delay_min_ticks = min_ticks;
  n.disk_delay_max_ticks = max_ticks;
}

void Cluster::StartSpare(NodeId id) {
  SimNode& n = node(id);
  if (n.started) return;
  n.storage = std::make_unique<MemoryStorage>();
  n.started = true;
  Log(fmt::format("n{} START (empty)", id));
  Restart(id);
}

bool Cluster::TakeSnapshot(NodeId id, Index keep) {
  SimNode& n = node(id);
  if (!n.running() || n.pending) return false;
  auto cur = n.storage->Snapshot();
  if (n.applied <= cur->index) return false;
  auto r = n.storage->CreateSnapshot(n.applied, n.applied_conf);
  if (!r.ok()) {
    throw SimFailure(fmt::format("tick {}: harness: n{} CreateSnapshot({}) failed: {}", now_, id,
                                 n.applied, r.status().ToString()));
  }
  n.snapshot_data = n.kv.Serialize();
  Index compact = n.applied > keep ? n.applied - keep : 0;
  if (compact > 0) {
    Status s = n.storage->Compact(compact);
    if (!s.ok()) throw SimFailure("harness: compact failed: " + s.ToString());
  }
  Log(fmt::format("n{} SNAPSHOT at {} {}, log now [{}..{}]", id, n.applied,
                  DescribeConf(n.applied_conf), n.storage->FirstIndex(), n.storage->LastIndex()));
  return true;
}

void Cluster::Kick(NodeId id) {
  ProcessReady(node(id));
  ObserveRoles();
}

NodeId Cluster::Leader() const {
  NodeId best = kNoNode;
  Term best_term = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.running() && n.raw->role() == Role::kLeader && n.raw->term() >= best_term) {
      best = id;
      best_term = n.raw->term();
    }
  }
  return best;
}

int Cluster::LeaderCount() const {
  int c = 0;
  for (const auto& [id, n] : nodes_) c += n.running() && n.raw->role() == Role::kLeader;
  return c;
}

Result<LogPosition> Cluster::Propose(NodeId id, std::string data) {
  SimNode& n = node(id);
  if (!n.running()) return Status(ErrorCode::kShutdown, "node is down");
  auto r = n.raw->Propose(std::move(data));
  Kick(id);
  return r;
}

void Cluster::Offer(NodeId id, std::string data) {
  (void)Propose(id, std::move(data));  // refusals are expected; see the header
}

Index Cluster::AppliedIndexOf(const std::string& data) const {
  const auto& applied = checker_.applied();
  for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
    if (it->second.data == data) return it->first;
  }
  return 0;
}

Index Cluster::ProposeAndCommit(const std::string& data, int max_ticks) {
  std::int64_t next_try = now_;
  bool ok = RunUntil(
      [&] {
        if (AppliedIndexOf(data) != 0) return true;
        if (now_ >= next_try) {
          NodeId l = Leader();
          if (l != kNoNode && Propose(l, data).ok()) {
            next_try = now_ + 3 * options_.election_ticks;
          }
        }
        return false;
      },
      max_ticks);
  return ok ? AppliedIndexOf(data) : 0;
}

}  // namespace raft::sim
