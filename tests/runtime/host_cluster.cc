#include "host_cluster.h"

#include <time.h>

#include <cstdlib>
#include <stdexcept>

#include "wire/frame.h"
#include "wire/group_frames.h"
#include "wire/wire_format.h"

namespace raft::testing {

namespace {

double ThreadCpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Adds the time of its scope to *sum.
class CpuScope {
 public:
  // sum == nullptr: measures nothing.
  explicit CpuScope(double* sum) : sum_(sum), start_(sum != nullptr ? ThreadCpu() : 0) {}
  ~CpuScope() {
    if (sum_ != nullptr) *sum_ += ThreadCpu() - start_;
  }
  CpuScope(const CpuScope&) = delete;
  CpuScope& operator=(const CpuScope&) = delete;

 private:
  double* sum_;
  double start_;
};

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }

// Syncs are no-ops: the cluster crashes processes, not machines, so what was written
// survives in the page cache either way, and thousands of fdatasyncs would only make
// the tests slow. (Power loss is the full-node simulator's business: tests/nodesim.)
class NoSyncFileSystem final : public base::ForwardingFileSystem {
 public:
  int Fdatasync(int) override { return 0; }
  int Fsync(int) override { return 0; }
  int SyncDir(const std::string&) override { return 0; }
};

NoSyncFileSystem* NoSync() {
  static NoSyncFileSystem fs;
  return &fs;
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) Fail(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

}  // namespace

HostCluster::HostCluster(HostClusterOptions options) : options_(options), rng_(options.seed) {
  if (options_.liveness_timeout_ticks == 0)
    options_.liveness_timeout_ticks = options_.election_ticks;
  for (NodeId p = 1; p <= options_.processes; ++p) {
    runtime::HostCoreOptions ho;
    ho.self = p;
    ho.liveness_timeout_ticks = options_.liveness_timeout_ticks;
    procs_[p].host = std::make_unique<runtime::HostCore>(ho);
  }
  for (auto& [p, proc] : procs_) {
    for (NodeId q = 1; q <= options_.processes; ++q) proc.host->AddPeer(q);
    if (!options_.shared_log_dir.empty()) OpenLog(p);
  }
}

void HostCluster::OpenLog(NodeId p) {
  storage::SharedLogOptions o;
  o.file_system = NoSync();
  o.segment_bytes_target = 64 << 10;  // small, so that segments roll in the tests
  auto log = storage::SharedLog::Open(options_.shared_log_dir + "/" + std::to_string(p), o);
  procs_.at(p).log = Must(std::move(log), "open the shared log");
}

void HostCluster::Persist(Proc& proc, GroupId g, Replica& r, const Ready& rd) {
  if (proc.log) {
    if (rd.snapshot && !proc.log->ApplySnapshot(g, *rd.snapshot).ok()) Fail("install");
    if (!rd.entries.empty() && !proc.log->Append(g, rd.entries).ok()) Fail("append");
    if (rd.hard_state && !proc.log->SetHardState(g, *rd.hard_state).ok()) Fail("hard state");
    return;
  }
  if (rd.snapshot && !r.memory->ApplySnapshot(*rd.snapshot).ok()) Fail("snapshot");
  if (!rd.entries.empty() && !r.memory->Append(rd.entries).ok()) Fail("append");
  if (rd.hard_state) r.memory->SetHardState(*rd.hard_state);
}

HostCluster::~HostCluster() = default;

Config HostCluster::MakeConfig(GroupId g, NodeId p) const {
  Config c;
  c.id = p;
  c.seed = g * 7919 + p + options_.seed * 104729;
  c.election_ticks = options_.election_ticks;
  c.heartbeat_ticks = options_.heartbeat_ticks;
  c.quiesce = options_.quiesce;
  return c;
}

void HostCluster::AddGroup(GroupId g) {
  std::vector<NodeId> voters;
  for (NodeId p = 1; p <= options_.processes; ++p) voters.push_back(p);
  for (auto& [p, proc] : procs_) {
    Replica& r = proc.replicas[g];
    if (!options_.shared_log_dir.empty()) {
      if (!proc.log) Fail("AddGroup on a crashed process with a shared log");
      const std::vector<Entry> boot = BootstrapEntries(voters);
      if (!proc.log->Append(g, boot).ok() ||
          !proc.log->SetHardState(g, HardState{1, kNoNode, boot.back().index}).ok() ||
          !proc.log->Sync().ok())
        Fail("bootstrap");
      r.storage = proc.log->Group(g);
    } else {
      r.memory = std::make_unique<MemoryStorage>();
      if (!r.memory->Bootstrap(voters).ok()) Fail("bootstrap");
      r.storage = r.memory.get();
    }
    if (!proc.host) continue;  // crashed: it finds the group at Restart
    if (Status s = proc.host->AddGroup(g, MakeConfig(g, p), r.storage); !s.ok()) Fail(s.ToString());
  }
}

void HostCluster::Crash(NodeId p) {
  Proc& proc = procs_.at(p);
  proc.host.reset();
  proc.log.reset();  // without a Sync
  for (auto& [g, r] : proc.replicas) {
    r.applied.clear();  // the state machine is rebuilt by replaying the log
    r.reads.clear();
    if (!r.memory) r.storage = nullptr;
  }
}

void HostCluster::Restart(NodeId p) {
  Proc& proc = procs_.at(p);
  if (proc.host) return;
  runtime::HostCoreOptions ho;
  ho.self = p;
  ho.liveness_timeout_ticks = options_.liveness_timeout_ticks;
  proc.host = std::make_unique<runtime::HostCore>(ho);
  for (NodeId q = 1; q <= options_.processes; ++q) proc.host->AddPeer(q);
  if (!options_.shared_log_dir.empty()) OpenLog(p);
  for (auto& [g, r] : proc.replicas) {
    if (proc.log) {
      r.storage = proc.log->Group(g);
      if (r.storage == nullptr) Fail("a group lost by the shared log across a restart");
    }
    if (Status s = proc.host->AddGroup(g, MakeConfig(g, p), r.storage); !s.ok()) Fail(s.ToString());
  }
}

std::uint64_t HostCluster::committed_entries() const {
  std::uint64_t n = 0;
  for (const auto& [g, entries] : committed_) n += entries.size();
  return n;
}

void HostCluster::CheckLeader(GroupId g, NodeId p, const RawNode& core) {
  if (core.role() != Role::kLeader) return;
  auto [it, fresh] = leaders_.try_emplace({g, core.term()}, p);
  if (!fresh && it->second != p) {
    Fail("election safety: group " + std::to_string(g) + " has leaders " +
         std::to_string(it->second) + " and " + std::to_string(p) + " in term " +
         std::to_string(core.term()));
  }
}

void HostCluster::CheckApply(GroupId g, NodeId p, const Entry& e) {
  auto [it, fresh] = committed_[g].try_emplace(e.index, e.term, e.data);
  if (!fresh && (it->second.first != e.term || it->second.second != e.data)) {
    Fail("state machine safety: group " + std::to_string(g) + " process " + std::to_string(p) +
         " applied index " + std::to_string(e.index) + " term " + std::to_string(e.term) +
         ", another replica term " + std::to_string(it->second.first));
  }
}

void HostCluster::RemoveReplica(GroupId g, NodeId p) {
  Proc& proc = procs_.at(p);
  if (Status s = proc.host->RemoveGroup(g); !s.ok()) Fail(s.ToString());
  if (proc.log && !proc.log->RemoveGroup(g).ok()) Fail("remove");
  proc.replicas.erase(g);
}

void HostCluster::ResetCpu() {
  for (auto& [p, proc] : procs_) proc.cpu = 0;
}

void HostCluster::Tick() {
  ++now_;
  for (auto& [p, proc] : procs_) {
    if (!proc.host) continue;
    CpuScope cpu(options_.measure_cpu ? &proc.cpu : nullptr);
    proc.host->Tick();
  }
  Quiet();
}

void HostCluster::Quiet() {
  for (int round = 0; round < 1000; ++round) {
    for (auto& [p, proc] : procs_) {
      HandleReady(p);
      Flush(p);
    }
    std::deque<Wire> due, later;
    for (Wire& w : net_) (w.due <= now_ ? due : later).push_back(std::move(w));
    net_.swap(later);
    if (due.empty()) return;
    for (const Wire& w : due) Deliver(w);
  }
  Fail("the network did not quiet down in 1000 rounds");
}

void HostCluster::HandleReady(NodeId p) {
  Proc& proc = procs_.at(p);
  if (!proc.host) return;
  CpuScope cpu(options_.measure_cpu ? &proc.cpu : nullptr);
  runtime::HostCore& host = *proc.host;
  // Rounds as a host's disk lane will run them: every touched group's Ready written,
  // one Sync for all, then each group's messages_after_persist, applies and Advance.
  for (int round = 0; round < 100; ++round) {
    std::vector<GroupId> touched = host.TakeTouched();
    if (touched.empty()) return;
    std::vector<std::pair<GroupId, Ready>> pending;
    for (GroupId g : touched) {
      auto it = proc.replicas.find(g);
      if (it == proc.replicas.end()) continue;
      Replica& r = it->second;
      Status s = host.With(g, [&](RawNode& core) {
        if (!core.HasReady()) return;
        Ready rd = core.GetReady();
        host.Send(g, std::move(rd.messages));
        Persist(proc, g, r, rd);
        pending.emplace_back(g, std::move(rd));
      });
      if (!s.ok()) Fail(s.ToString());
    }
    if (pending.empty()) continue;
    proc.readies += pending.size();
    if (proc.log) {
      if (!proc.log->Sync().ok()) Fail("sync");
      ++proc.syncs;
    }
    for (auto& [g, rd] : pending) {
      Replica& r = proc.replicas.at(g);
      Status s = host.With(g, [&](RawNode& core) {
        host.Send(g, std::move(rd.messages_after_persist));
        for (const Entry& e : rd.committed_entries) {
          CheckApply(g, p, e);
          if (e.type == EntryType::kNormal && !e.data.empty()) r.applied.push_back(e.data);
        }
        for (ReadState& rs : rd.read_states) r.reads.push_back(std::move(rs));
        core.Advance(rd);
        CheckLeader(g, p, core);
      });
      if (!s.ok()) Fail(s.ToString());
    }
  }
  Fail("Readies did not settle in 100 rounds");
}

void HostCluster::Flush(NodeId p) {
  Proc& proc = procs_.at(p);
  if (!proc.host) return;
  CpuScope cpu(options_.measure_cpu ? &proc.cpu : nullptr);
  std::uniform_real_distribution<double> coin(0, 1);
  auto send = [&](NodeId to, wire::FrameType type, std::string payload) {
    Traffic& t = traffic_[{p, to}];
    ++t.frames;
    t.bytes += wire::kFrameHeaderBytes + payload.size();
    if (isolated_.count(p) || isolated_.count(to)) return;
    if (options_.drop_rate > 0 && coin(rng_) < options_.drop_rate) return;
    auto delay = [&]() -> std::int64_t {
      if (options_.max_delay_ticks <= 0) return 0;
      return static_cast<std::int64_t>(rng_() % (options_.max_delay_ticks + 1));
    };
    if (options_.duplicate_rate > 0 && coin(rng_) < options_.duplicate_rate)
      net_.push_back({now_ + delay(), p, to, type, payload});
    net_.push_back({now_ + delay(), p, to, type, std::move(payload)});
  };
  for (runtime::HostOutput& o : proc.host->TakeOutput()) {
    Traffic& t = traffic_[{p, o.to}];
    if (o.send_beat) {
      ++t.beat_frames;
      t.beats += o.beat.beats.size();
      send(o.to, wire::FrameType::kHostBeat, Must(wire::EncodeHostBeat(o.beat), "beat"));
    }
    for (const wire::GroupMessage& gm : o.messages) {
      ++t.message_frames;
      send(o.to, wire::FrameType::kGroupMessage,
           Must(wire::EncodeGroupMessage(gm.group, gm.message), "message"));
    }
    if (!o.acks.acks.empty()) {
      ++t.ack_frames;
      t.acks += o.acks.acks.size();
      send(o.to, wire::FrameType::kHostBeatAck, Must(wire::EncodeHostBeatAck(o.acks), "ack"));
    }
  }
}

void HostCluster::Deliver(const Wire& w) {
  Proc& proc = procs_.at(w.to);
  if (!proc.host || isolated_.count(w.to) || isolated_.count(w.from)) return;  // lost
  CpuScope cpu(options_.measure_cpu ? &proc.cpu : nullptr);
  Status s;
  switch (w.type) {
    case wire::FrameType::kHostBeat:
      s = proc.host->Receive(w.from, Must(wire::DecodeHostBeat(w.payload), "beat"));
      break;
    case wire::FrameType::kHostBeatAck:
      s = proc.host->Receive(w.from, Must(wire::DecodeHostBeatAck(w.payload), "ack"));
      break;
    case wire::FrameType::kGroupMessage:
      s = proc.host->Receive(w.from, Must(wire::DecodeGroupMessage(w.payload), "message"));
      break;
    default:
      Fail("unexpected frame type");
  }
  if (!s.ok()) Fail("an honest host refused a frame: " + s.ToString());
}

NodeId HostCluster::Leader(GroupId g) const {
  NodeId leader = kNoNode;
  Term term = 0;
  for (const auto& [p, proc] : procs_) {
    if (isolated_.count(p) || !proc.host) continue;
    const RawNode* core = proc.host->Get(g);
    if (core == nullptr || core->role() != Role::kLeader) continue;
    const Term t = core->GetStatus().hard_state.term;
    if (t >= term) {
      term = t;
      leader = p;
    }
  }
  return leader;
}

Status HostCluster::Propose(NodeId p, GroupId g, const std::string& data) {
  if (crashed(p)) return Status(ErrorCode::kShutdown, "crashed");
  Status result;
  Status s = procs_.at(p).host->With(g, [&](RawNode& core) {
    Result<LogPosition> r = core.Propose(data);
    if (!r.ok()) result = r.status();
  });
  return s.ok() ? result : s;
}

Status HostCluster::ReadIndex(NodeId p, GroupId g, const std::string& context) {
  if (crashed(p)) return Status(ErrorCode::kShutdown, "crashed");
  Status result;
  Status s = procs_.at(p).host->With(g, [&](RawNode& core) { result = core.ReadIndex(context); });
  return s.ok() ? result : s;
}

const std::vector<std::string>& HostCluster::Applied(NodeId p, GroupId g) {
  return procs_.at(p).replicas.at(g).applied;
}

std::vector<ReadState> HostCluster::TakeReadStates(NodeId p, GroupId g) {
  std::vector<ReadState> out;
  out.swap(procs_.at(p).replicas.at(g).reads);
  return out;
}

}  // namespace raft::testing
