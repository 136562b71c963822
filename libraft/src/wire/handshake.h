// Payload codecs of the handshake frames (docs/wire-protocol.md, section 4.1): the
// dialer's Handshake, the listener's HandshakeAck or HandshakeReject (their grammar is
// frozen across protocol versions), the dialer's HandshakeFinish (version 2), and the
// transcript both proofs cover. Pure functions, thread-safe; the cryptography itself
// (nonces, HMAC) is the runtime's (runtime/peer_auth.h).
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
  std::string auth;        // v2: the dialer's nonce (kNonceBytes); at most kAuthBytesMax bytes
  // The dialer's advertised Raft address (host:port), may be empty; at most
  // kAddressBytesMax bytes. Lets a node answer a dialer it has not heard of yet.
  std::string address;

  bool operator==(const Handshake&) const = default;
};

struct HandshakeAck {
  std::uint8_t version = kProtocolVersion;  // chosen by the listener, >= 1
  NodeId from = kNoNode;                    // the listener
  // v2: listener nonce (kNonceBytes) + listener proof (kProofBytes, absent without a
  // secret); at most kAuthBytesMax bytes.
  std::string auth;

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

// The dialer's answer to a HandshakeAck (version 2): its proof of the cluster secret,
// kProofBytes bytes, or empty without a secret.
struct HandshakeFinish {
  std::string proof;  // at most kProofBytes bytes

  bool operator==(const HandshakeFinish&) const = default;
};

// Encoders: kInvalidArgument when a field breaks the limits above.
// Decoders: kCorruption on any grammar violation, including trailing bytes.
Result<std::string> EncodeHandshake(const Handshake& hs);
Result<Handshake> DecodeHandshake(std::string_view payload);
Result<std::string> EncodeHandshakeAck(const HandshakeAck& ack);
Result<HandshakeAck> DecodeHandshakeAck(std::string_view payload);
Result<std::string> EncodeHandshakeReject(const HandshakeReject& rej);
Result<HandshakeReject> DecodeHandshakeReject(std::string_view payload);
Result<std::string> EncodeHandshakeFinish(const HandshakeFinish& fin);
Result<HandshakeFinish> DecodeHandshakeFinish(std::string_view payload);

// The two roles of a handshake: the labels that make their proofs differ.
inline constexpr std::string_view kRoleDialer = "dialer";
inline constexpr std::string_view kRoleListener = "listener";
// transcript(role) of section 4.1: the bytes both proofs are an HMAC of. `hello` is the
// exact payload of the Handshake frame; `version`, `listener` and `listener_nonce` are
// what the HandshakeAck says. Inputs over their grammar limits (role 8 bytes, hello
// kHelloBytesMax, nonce kNonceBytes) are kInvalidArgument.
Result<std::string> HandshakeTranscript(std::string_view role, std::string_view hello,
                                        std::uint8_t version, NodeId listener,
                                        std::string_view listener_nonce);

// The highest version in both [peer_min, peer_max] and [our_min, our_max] (by default
// raft::Node's, [kProtocolVersionMin, kProtocolVersionMax]), or nullopt when the ranges
// do not overlap (answer with RejectCode::kVersionUnsupported).
std::optional<std::uint8_t> NegotiateVersion(std::uint8_t peer_min, std::uint8_t peer_max,
                                             std::uint8_t our_min = kProtocolVersionMin,
                                             std::uint8_t our_max = kProtocolVersionMax);

}  // namespace raft::wire
