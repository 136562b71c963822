#include "runtime/host_core.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace raft::runtime {

struct HostCore::Group {
  std::unique_ptr<RawNode> core;
};

HostCore::HostCore(HostCoreOptions options)
    : options_(options), liveness_(options.liveness_timeout_ticks) {}

HostCore::~HostCore() = default;

Status HostCore::AddGroup(GroupId g, const Config& config, const Storage* storage) {
  if (g == wire::kNoGroup) return Status(ErrorCode::kInvalidArgument, "host: group 0 is reserved");
  if (config.id != options_.self) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("host: group {}: config id {} is not this process ({}): a "
                              "replica's id is its process's",
                              g, config.id, options_.self));
  }
  if (groups_.count(g)) {
    return Status(ErrorCode::kInvalidArgument, fmt::format("host: group {} exists", g));
  }
  Result<std::unique_ptr<RawNode>> core = RawNode::Create(config, storage);
  if (!core.ok()) {
    return Status(core.status().code(),
                  fmt::format("host: group {}: {}", g, core.status().message()));
  }
  auto group = std::make_unique<Group>();
  group->core = std::move(core).value();
  RawNode& ref = *group->core;
  groups_.emplace(g, std::move(group));
  Note(g, ref);
  return Status::Ok();
}

Status HostCore::RemoveGroup(GroupId g) {
  if (groups_.erase(g) == 0) return NotHosted(g);
  awake_.erase(g);
  touched_.erase(g);
  woke_or_slept_.erase(g);
  return Status::Ok();
}

std::vector<GroupId> HostCore::GroupIds() const {
  std::vector<GroupId> ids;
  ids.reserve(groups_.size());
  for (const auto& [g, group] : groups_) ids.push_back(g);
  return ids;
}

RawNode* HostCore::Find(GroupId g) {
  auto it = groups_.find(g);
  return it == groups_.end() ? nullptr : it->second->core.get();
}

const RawNode* HostCore::Get(GroupId g) const {
  auto it = groups_.find(g);
  return it == groups_.end() ? nullptr : it->second->core.get();
}

Status HostCore::NotHosted(GroupId g) const {
  return Status(ErrorCode::kInvalidArgument, fmt::format("host: group {} is not hosted", g));
}

void HostCore::Note(GroupId g, RawNode& core) {
  if (core.HasReady()) touched_.insert(g);
  if (!core.Quiesced()) {
    if (awake_.insert(g).second) woke_or_slept_.insert(g);
    return;
  }
  const bool fell_asleep = awake_.erase(g) > 0;
  // The detector wakes sleeping cores when a process is lost (Tick); one that falls
  // asleep after that must be judged too, or it would sleep through the loss.
  if (fell_asleep && ShouldWake(core, lost_)) {
    core.Unquiesce();
    ++counters_.wakes_by_detector;
    awake_.insert(g);
    return;
  }
  if (fell_asleep) woke_or_slept_.insert(g);
}

std::vector<GroupId> HostCore::TakeWokeOrSlept() {
  std::vector<GroupId> out(woke_or_slept_.begin(), woke_or_slept_.end());
  woke_or_slept_.clear();
  return out;
}

void HostCore::AddPeer(NodeId p) {
  if (p != options_.self) peers_.insert(p);
}

void HostCore::RemovePeer(NodeId p) {
  peers_.erase(p);
  lost_.erase(p);
  liveness_.Forget(p);
}

void HostCore::PeerLost(NodeId p) {
  for (auto& [g, group] : groups_) {
    RawNode& core = *group->core;
    if (core.role() != Role::kFollower || core.leader() != p) continue;
    core.ReportLeaderLost(p);
    ++counters_.leaders_lost;
    Note(g, core);
  }
}

void HostCore::Tick() {
  ++now_;
  // Only the awake: a sleeping core's Tick is a no-op (docs/core.md, "Quiescence").
  const std::vector<GroupId> awake(awake_.begin(), awake_.end());
  for (GroupId g : awake) {
    RawNode& core = *groups_.at(g)->core;
    core.Tick();
    Note(g, core);
  }

  std::set<NodeId> lost;
  const bool liveness_due = now_ % std::max<std::int64_t>(1, options_.liveness_interval_ticks) == 0;
  for (NodeId p : peers_) {
    if (liveness_.Lost(p, now_)) lost.insert(p);
    if (liveness_due) Out(p).send_beat = true;
  }
  bool newly_lost = false;
  for (NodeId p : lost) newly_lost |= lost_.count(p) == 0;
  lost_ = std::move(lost);
  if (!newly_lost) return;
  // A process was lost since the last tick: judge every sleeping core once. Those that
  // fall asleep later are judged as they do (Note).
  for (auto& [g, group] : groups_) {
    RawNode& core = *group->core;
    if (ShouldWake(core, lost_)) {
      core.Unquiesce();
      ++counters_.wakes_by_detector;
      Note(g, core);
    }
  }
}

void HostCore::Heard(NodeId from) {
  liveness_.Heard(from, now_);
  lost_.erase(from);  // not lost any more: a core falling asleep now need not wake (Note)
}

Status HostCore::StepInto(GroupId g, const Message& m) {
  RawNode* core = Find(g);
  if (core == nullptr) {
    ++counters_.unknown_group_in;
    return Status::Ok();
  }
  Status s = core->Step(m);
  Note(g, *core);
  if (!s.ok()) {
    return Status(s.code(), fmt::format("host: group {}: {}", g, s.message()));
  }
  return Status::Ok();
}

Status HostCore::Receive(NodeId from, const wire::GroupMessage& gm) {
  Heard(from);
  if (gm.message.from != from) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("host: group {}: a message from {} arrived from process {}", gm.group,
                              gm.message.from, from));
  }
  return StepInto(gm.group, gm.message);
}

Status HostCore::Receive(NodeId from, const wire::HostBeat& hb) {
  Heard(from);
  for (const wire::Beat& b : hb.beats) {
    if (Status s = StepInto(b.group, wire::HeartbeatOf(b, from, options_.self)); !s.ok()) return s;
  }
  return Status::Ok();
}

Status HostCore::Receive(NodeId from, const wire::HostBeatAck& ha) {
  Heard(from);
  for (const wire::BeatAck& a : ha.acks) {
    Message m = wire::HeartbeatResponseOf(a, from, options_.self);
    if (Status s = StepInto(a.group, m); !s.ok()) return s;
  }
  return Status::Ok();
}

std::vector<GroupId> HostCore::TakeTouched() {
  std::vector<GroupId> out(touched_.begin(), touched_.end());
  touched_.clear();
  return out;
}

HostOutput& HostCore::Out(NodeId to) {
  HostOutput& o = out_[to];
  o.to = to;
  return o;
}

void HostCore::Send(GroupId g, std::vector<Message> msgs) {
  for (Message& m : msgs) {
    HostOutput& o = Out(m.to);
    if (std::optional<wire::Beat> b = wire::BeatOf(g, m)) {
      o.send_beat = true;
      o.beat.beats.push_back(*b);
      ++counters_.beats_out;
    } else if (std::optional<wire::BeatAck> a = wire::BeatAckOf(g, m)) {
      o.acks.acks.push_back(*a);
      ++counters_.acks_out;
    } else {
      o.messages.push_back({g, std::move(m)});
      ++counters_.messages_out;
    }
  }
}

std::vector<HostOutput> HostCore::TakeOutput() {
  std::vector<HostOutput> out;
  out.reserve(out_.size());
  for (auto& [to, o] : out_) out.push_back(std::move(o));
  out_.clear();
  return out;
}

}  // namespace raft::runtime
