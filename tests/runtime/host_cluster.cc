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
  explicit CpuScope(double* sum) : sum_(sum), start_(ThreadCpu()) {}
  ~CpuScope() { *sum_ += ThreadCpu() - start_; }
  CpuScope(const CpuScope&) = delete;
  CpuScope& operator=(const CpuScope&) = delete;

 private:
  double* sum_;
  double start_;
};

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) Fail(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

}  // namespace

HostCluster::HostCluster(HostClusterOptions options) : options_(options) {
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
  }
}

HostCluster::~HostCluster() = default;

void HostCluster::AddGroup(GroupId g) {
  std::vector<NodeId> voters;
  for (NodeId p = 1; p <= options_.processes; ++p) voters.push_back(p);
  for (auto& [p, proc] : procs_) {
    Replica& r = proc.replicas[g];
    r.storage = std::make_unique<MemoryStorage>();
    if (!r.storage->Bootstrap(voters).ok()) Fail("bootstrap");
    Config c;
    c.id = p;
    c.seed = g * 7919 + p;
    c.election_ticks = options_.election_ticks;
    c.heartbeat_ticks = options_.heartbeat_ticks;
    c.quiesce = options_.quiesce;
    if (Status s = proc.host->AddGroup(g, c, r.storage.get()); !s.ok()) Fail(s.ToString());
  }
}

void HostCluster::RemoveReplica(GroupId g, NodeId p) {
  Proc& proc = procs_.at(p);
  if (Status s = proc.host->RemoveGroup(g); !s.ok()) Fail(s.ToString());
  proc.replicas.erase(g);
}

void HostCluster::ResetCpu() {
  for (auto& [p, proc] : procs_) proc.cpu = 0;
}

void HostCluster::Tick() {
  for (auto& [p, proc] : procs_) {
    CpuScope cpu(&proc.cpu);
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
    if (net_.empty()) return;
    std::deque<Wire> batch;
    batch.swap(net_);
    for (const Wire& w : batch) Deliver(w);
  }
  Fail("the network did not quiet down in 1000 rounds");
}

void HostCluster::HandleReady(NodeId p) {
  Proc& proc = procs_.at(p);
  CpuScope cpu(&proc.cpu);
  runtime::HostCore& host = *proc.host;
  for (GroupId g : host.TakeTouched()) {
    auto it = proc.replicas.find(g);
    if (it == proc.replicas.end()) continue;
    Replica& r = it->second;
    Status s = host.With(g, [&](RawNode& core) {
      while (core.HasReady()) {
        Ready rd = core.GetReady();
        host.Send(g, std::move(rd.messages));
        if (rd.snapshot && !r.storage->ApplySnapshot(*rd.snapshot).ok()) Fail("snapshot");
        if (!rd.entries.empty() && !r.storage->Append(rd.entries).ok()) Fail("append");
        if (rd.hard_state) r.storage->SetHardState(*rd.hard_state);
        host.Send(g, std::move(rd.messages_after_persist));
        for (const Entry& e : rd.committed_entries) {
          if (e.type == EntryType::kNormal && !e.data.empty()) r.applied.push_back(e.data);
        }
        for (ReadState& rs : rd.read_states) r.reads.push_back(std::move(rs));
        core.Advance(rd);
      }
    });
    if (!s.ok()) Fail(s.ToString());
  }
}

void HostCluster::Flush(NodeId p) {
  Proc& proc = procs_.at(p);
  CpuScope cpu(&proc.cpu);
  auto send = [&](NodeId to, wire::GroupFrameType type, std::string payload) {
    Traffic& t = traffic_[{p, to}];
    ++t.frames;
    t.bytes += wire::kFrameHeaderBytes + payload.size();
    if (isolated_.count(p) || isolated_.count(to)) return;
    net_.push_back({p, to, static_cast<std::uint8_t>(type), std::move(payload)});
  };
  for (runtime::HostOutput& o : proc.host->TakeOutput()) {
    Traffic& t = traffic_[{p, o.to}];
    if (o.send_beat) {
      ++t.beat_frames;
      t.beats += o.beat.beats.size();
      send(o.to, wire::GroupFrameType::kHostBeat, Must(wire::EncodeHostBeat(o.beat), "beat"));
    }
    for (const wire::GroupMessage& gm : o.messages) {
      ++t.message_frames;
      send(o.to, wire::GroupFrameType::kGroupMessage,
           Must(wire::EncodeGroupMessage(gm.group, gm.message), "message"));
    }
    if (!o.acks.acks.empty()) {
      ++t.ack_frames;
      t.acks += o.acks.acks.size();
      send(o.to, wire::GroupFrameType::kHostBeatAck, Must(wire::EncodeHostBeatAck(o.acks), "ack"));
    }
  }
}

void HostCluster::Deliver(const Wire& w) {
  Proc& proc = procs_.at(w.to);
  CpuScope cpu(&proc.cpu);
  Status s;
  switch (static_cast<wire::GroupFrameType>(w.type)) {
    case wire::GroupFrameType::kHostBeat:
      s = proc.host->Receive(w.from, Must(wire::DecodeHostBeat(w.payload), "beat"));
      break;
    case wire::GroupFrameType::kHostBeatAck:
      s = proc.host->Receive(w.from, Must(wire::DecodeHostBeatAck(w.payload), "ack"));
      break;
    case wire::GroupFrameType::kGroupMessage:
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
    if (isolated_.count(p)) continue;
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
  Status result;
  Status s = procs_.at(p).host->With(g, [&](RawNode& core) {
    Result<LogPosition> r = core.Propose(data);
    if (!r.ok()) result = r.status();
  });
  return s.ok() ? result : s;
}

Status HostCluster::ReadIndex(NodeId p, GroupId g, const std::string& context) {
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
