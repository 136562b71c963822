// Payload codecs of the handshake frames (docs/wire-protocol.md, section 4.1): the
// dialer's Handshake, and the listener's HandshakeAck or HandshakeReject. Their grammar
// is frozen across protocol versions. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "raft/status.h"
#include "raft/types.h"
#include "wire/wire_format.h"

namespace raft::wire {

struct Handshake {
  std::uint8_t version_min = kProtocolVersionMin;  // 1 <= version_min <= version_max
  std::uint8_t version_max = kProtocolVersionMax;
  NodeId from = kNoNode;   // the dialer
  NodeId to = kNoNode;     // the node the dialer means to reach; kNoNode if unknown
  std::string cluster_id;  // at most kClusterIdBytesMax bytes
  std::string auth;        // opaque, defined by the runtime; at most kAuthBytesMax bytes
  // The dialer's advertised Raft address (host:port), may be empty; at most
  // kAddressBytesMax bytes. Lets a node answer a dialer it has not heard of yet.
  std::string address;

  bool operator==(const Handshake&) const = default;
};

struct HandshakeAck {
  std::uint8_t version = kProtocolVersion;  // chosen by the listener, >= 1
  NodeId from = kNoNode;                    // the listener
  std::string auth;                         // opaque; at most kAuthBytesMax bytes

  bool operator==(const HandshakeAck&) const = default;
};

enum class RejectCode : std::uint8_t {
  kClusterMismatch = 1,
  kVersionUnsupported = 2,
  kAuthFailed = 3,
  kWrongNode = 4,
  kUnknownPeer = 5,
  kShuttingDown = 6,
};
inline constexpr std::uint8_t kRejectCodeMax = 6;
// "ClusterMismatch"...; "?" for a value outside the enum.
const char* RejectCodeName(RejectCode code);

struct HandshakeReject {
  RejectCode code = RejectCode::kClusterMismatch;
  std::string reason;  // for people; at most kReasonBytesMax bytes

  bool operator==(const HandshakeReject&) const = default;
};

// Encoders: kInvalidArgument when a field breaks the limits above.
// Decoders: kCorruption on any grammar violation, including trailing bytes.
Result<std::string> EncodeHandshake(const Handshake& hs);
Result<Handshake> DecodeHandshake(std::string_view payload);
Result<std::string> EncodeHandshakeAck(const HandshakeAck& ack);
Result<HandshakeAck> DecodeHandshakeAck(std::string_view payload);
Result<std::string> EncodeHandshakeReject(const HandshakeReject& rej);
Result<HandshakeReject> DecodeHandshakeReject(std::string_view payload);

// The highest version in both [peer_min, peer_max] and [kProtocolVersionMin,
// kProtocolVersionMax], or nullopt when the ranges do not overlap (answer with
// RejectCode::kVersionUnsupported).
std::optional<std::uint8_t> NegotiateVersion(std::uint8_t peer_min, std::uint8_t peer_max);

}  // namespace raft::wire
