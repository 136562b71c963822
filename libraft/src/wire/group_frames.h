// Payload codecs of protocol version 4, the frames of a host of many Raft groups
// (docs/wire-protocol.md, section 4.4; docs/multi-raft.md): a group-addressed
// raft_message, and the coalesced heartbeats of every group between two processes.
// Pure functions, thread-safe. No transport speaks version 4 yet; the host's pure core
// (runtime/host_core.h) uses these types, and its tests round-trip every frame through
// this codec.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raft/message.h"
#include "raft/status.h"
#include "raft/types.h"

namespace raft::wire {

// Names a Raft group within a cluster of hosts; never 0.
using GroupId = std::uint64_t;
inline constexpr GroupId kNoGroup = 0;

struct GroupMessage {
  GroupId group = kNoGroup;
  Message message;
  bool operator==(const GroupMessage&) const = default;
};

// One group's heartbeat from the leader's process: everything a kHeartbeat carries
// besides `from` and `to`, which are the two processes (a replica's id is its
// process's id).
struct Beat {
  GroupId group = kNoGroup;
  Term term = 0;
  Index commit = 0;
  std::uint64_t read_seq = 0;
  bool quiesce = false;
  bool operator==(const Beat&) const = default;
};

// One group's heartbeat response.
struct BeatAck {
  GroupId group = kNoGroup;
  Term term = 0;
  std::uint64_t read_seq = 0;
  bool operator==(const BeatAck&) const = default;
};

// Every beat from one process to another in one flush. Empty: the liveness frame the
// hosts' failure detectors exchange every tick.
struct HostBeat {
  std::vector<Beat> beats;
  bool operator==(const HostBeat&) const = default;
};

struct HostBeatAck {
  std::vector<BeatAck> acks;
  bool operator==(const HostBeatAck&) const = default;
};

// Encoders: kInvalidArgument when a value breaks the grammar (group 0, more than
// kBeatsPerFrameMax items, a raft_message AppendMessage refuses). Decoders: kCorruption
// naming the field on any violation, trailing bytes included; they allocate at most on
// the order of the payload's size.
Result<std::string> EncodeGroupMessage(GroupId group, const Message& m);
Result<GroupMessage> DecodeGroupMessage(std::string_view payload);
Result<std::string> EncodeHostBeat(const HostBeat& hb);
Result<HostBeat> DecodeHostBeat(std::string_view payload);
Result<std::string> EncodeHostBeatAck(const HostBeatAck& ha);
Result<HostBeatAck> DecodeHostBeatAck(std::string_view payload);

// The beat of `m` if it is a kHeartbeat with nothing but what a beat carries (every
// heartbeat the core sends); otherwise nullopt, and the message travels whole.
std::optional<Beat> BeatOf(GroupId group, const Message& m);
// The beat ack of `m` if it is a kHeartbeatResponse with nothing but what one carries.
std::optional<BeatAck> BeatAckOf(GroupId group, const Message& m);
// The messages the receiving core is given: BeatOf and BeatAckOf inverted, with
// `from` the sending process and `to` the receiving one.
Message HeartbeatOf(const Beat& b, NodeId from, NodeId to);
Message HeartbeatResponseOf(const BeatAck& a, NodeId from, NodeId to);

}  // namespace raft::wire
