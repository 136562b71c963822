#include "wire/group_frames.h"

#include <fmt/format.h>

#include "raft/coding.h"
#include "wire/message_codec.h"
#include "wire/wire_format.h"

namespace raft::wire {

using raft::ByteReader;
using raft::ByteWriter;

namespace {

Status NoGroup(const char* what) {
  return Status(ErrorCode::kInvalidArgument, fmt::format("wire: cannot encode {}: group 0", what));
}

Status TooMany(const char* what, std::size_t n) {
  return Status(
      ErrorCode::kInvalidArgument,
      fmt::format("wire: cannot encode {}: {} items (at most {})", what, n, kBeatsPerFrameMax));
}

GroupId ReadGroup(ByteReader& r, const char* field) {
  const GroupId g = r.U64(field);
  if (r.ok() && g == kNoGroup) r.Fail(fmt::format("{} is 0", field));
  return g;
}

}  // namespace

Result<std::string> EncodeGroupMessage(GroupId group, const Message& m) {
  if (group == kNoGroup) return NoGroup("group_message");
  std::string out;
  ByteWriter(&out).U64(group);
  if (Status s = AppendMessage(m, &out); !s.ok()) return s;
  return out;
}

Result<GroupMessage> DecodeGroupMessage(std::string_view payload) {
  ByteReader r(payload, "group_message");
  GroupMessage gm;
  gm.group = ReadGroup(r, "group");
  std::string_view rest = r.Rest();
  if (Status s = r.Finish(); !s.ok()) return s;
  Result<Message> m = DecodeMessage(rest);
  if (!m.ok()) return m.status();
  gm.message = std::move(m).value();
  return gm;
}

Result<std::string> EncodeHostBeat(const HostBeat& hb) {
  if (hb.beats.size() > kBeatsPerFrameMax) return TooMany("host_beat", hb.beats.size());
  std::string out;
  out.reserve(4 + hb.beats.size() * kBeatBytes);
  ByteWriter w(&out);
  w.U32(static_cast<std::uint32_t>(hb.beats.size()));
  for (const Beat& b : hb.beats) {
    if (b.group == kNoGroup) return NoGroup("host_beat");
    w.U64(b.group);
    w.U64(b.term);
    w.U64(b.commit);
    w.U64(b.read_seq);
    w.U8(b.quiesce ? kBeatFlagQuiesce : 0);
  }
  return out;
}

Result<HostBeat> DecodeHostBeat(std::string_view payload) {
  ByteReader r(payload, "host_beat");
  HostBeat hb;
  const std::uint32_t n = r.Count("count", kBeatsPerFrameMax, kBeatBytes);
  hb.beats.reserve(n);  // Count() bounded n by the bytes remaining
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    Beat& b = hb.beats.emplace_back();
    b.group = ReadGroup(r, "beat.group");
    b.term = r.U64("beat.term");
    b.commit = r.U64("beat.commit");
    b.read_seq = r.U64("beat.read_seq");
    const std::uint8_t flags = r.U8("beat.flags");
    if (r.ok() && (flags & ~kBeatFlagQuiesce) != 0) {
      r.Fail(
          fmt::format("beat {} has reserved flag bits {:#04x} set", i, flags & ~kBeatFlagQuiesce));
    }
    b.quiesce = (flags & kBeatFlagQuiesce) != 0;
  }
  if (Status s = r.Finish(); !s.ok()) return s;
  return hb;
}

Result<std::string> EncodeHostBeatAck(const HostBeatAck& ha) {
  if (ha.acks.size() > kBeatsPerFrameMax) return TooMany("host_beat_ack", ha.acks.size());
  std::string out;
  out.reserve(4 + ha.acks.size() * kBeatAckBytes);
  ByteWriter w(&out);
  w.U32(static_cast<std::uint32_t>(ha.acks.size()));
  for (const BeatAck& a : ha.acks) {
    if (a.group == kNoGroup) return NoGroup("host_beat_ack");
    w.U64(a.group);
    w.U64(a.term);
    w.U64(a.read_seq);
  }
  return out;
}

Result<HostBeatAck> DecodeHostBeatAck(std::string_view payload) {
  ByteReader r(payload, "host_beat_ack");
  HostBeatAck ha;
  const std::uint32_t n = r.Count("count", kBeatsPerFrameMax, kBeatAckBytes);
  ha.acks.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    BeatAck& a = ha.acks.emplace_back();
    a.group = ReadGroup(r, "beat_ack.group");
    a.term = r.U64("beat_ack.term");
    a.read_seq = r.U64("beat_ack.read_seq");
  }
  if (Status s = r.Finish(); !s.ok()) return s;
  return ha;
}

std::optional<Beat> BeatOf(GroupId group, const Message& m) {
  if (group == kNoGroup || m.type != MessageType::kHeartbeat) return std::nullopt;
  Message rest = HeartbeatOf(Beat{group, m.term, m.commit, m.read_seq, m.quiesce}, m.from, m.to);
  if (!(rest == m)) return std::nullopt;  // carries more than a beat can
  return Beat{group, m.term, m.commit, m.read_seq, m.quiesce};
}

std::optional<BeatAck> BeatAckOf(GroupId group, const Message& m) {
  if (group == kNoGroup || m.type != MessageType::kHeartbeatResponse) return std::nullopt;
  if (!(HeartbeatResponseOf(BeatAck{group, m.term, m.read_seq}, m.from, m.to) == m))
    return std::nullopt;
  return BeatAck{group, m.term, m.read_seq};
}

Message HeartbeatOf(const Beat& b, NodeId from, NodeId to) {
  Message m;
  m.type = MessageType::kHeartbeat;
  m.from = from;
  m.to = to;
  m.term = b.term;
  m.commit = b.commit;
  m.read_seq = b.read_seq;
  m.quiesce = b.quiesce;
  return m;
}

Message HeartbeatResponseOf(const BeatAck& a, NodeId from, NodeId to) {
  Message m;
  m.type = MessageType::kHeartbeatResponse;
  m.from = from;
  m.to = to;
  m.term = a.term;
  m.read_seq = a.read_seq;
  return m;
}

}  // namespace raft::wire
