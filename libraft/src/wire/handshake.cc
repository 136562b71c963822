#include "wire/handshake.h"

#include <fmt/format.h>

#include <algorithm>

#include "raft/coding.h"

namespace raft::wire {

using raft::ByteReader;
using raft::ByteWriter;

namespace {

Status Invalid(const char* grammar, const std::string& message) {
  return Status(ErrorCode::kInvalidArgument,
                fmt::format("wire: cannot encode {}: {}", grammar, message));
}

Status CheckLength(const char* grammar, const char* field, std::string_view value,
                   std::uint32_t max) {
  if (value.size() <= max) return Status::Ok();
  return Invalid(grammar,
                 fmt::format("{} of {} bytes exceeds the limit of {}", field, value.size(), max));
}

}  // namespace

const char* RejectCodeName(RejectCode code) {
  switch (code) {
    case RejectCode::kClusterMismatch:
      return "ClusterMismatch";
    case RejectCode::kVersionUnsupported:
      return "VersionUnsupported";
    case RejectCode::kAuthFailed:
      return "AuthFailed";
    case RejectCode::kWrongNode:
      return "WrongNode";
    case RejectCode::kUnknownPeer:
      return "UnknownPeer";
    case RejectCode::kShuttingDown:
      return "ShuttingDown";
  }
  return "?";
}

Result<std::string> EncodeHandshake(const Handshake& hs) {
  constexpr const char* kGrammar = "handshake";
  if (hs.version_min < 1 || hs.version_min > hs.version_max) {
    return Invalid(kGrammar,
                   fmt::format("bad version range [{}, {}]", hs.version_min, hs.version_max));
  }
  if (Status s = CheckLength(kGrammar, "cluster_id", hs.cluster_id, kClusterIdBytesMax); !s.ok()) {
    return s;
  }
  if (Status s = CheckLength(kGrammar, "auth", hs.auth, kAuthBytesMax); !s.ok()) return s;
  if (Status s = CheckLength(kGrammar, "address", hs.address, kAddressBytesMax); !s.ok()) return s;
  std::string out;
  ByteWriter w(&out);
  w.U8(hs.version_min);
  w.U8(hs.version_max);
  w.U64(hs.from);
  w.U64(hs.to);
  w.Bytes(hs.cluster_id);
  w.Bytes(hs.auth);
  w.Bytes(hs.address);
  return out;
}

Result<Handshake> DecodeHandshake(std::string_view payload) {
  ByteReader r(payload, "handshake");
  Handshake hs;
  hs.version_min = r.U8("version_min");
  hs.version_max = r.U8("version_max");
  if (r.ok() && (hs.version_min < 1 || hs.version_min > hs.version_max)) {
    r.Fail(fmt::format("bad version range [{}, {}]", hs.version_min, hs.version_max));
  }
  hs.from = r.U64("from");
  hs.to = r.U64("to");
  hs.cluster_id = r.Bytes("cluster_id", kClusterIdBytesMax);
  hs.auth = r.Bytes("auth", kAuthBytesMax);
  hs.address = r.Bytes("address", kAddressBytesMax);
  if (Status s = r.Finish(); !s.ok()) return s;
  return hs;
}

Result<std::string> EncodeHandshakeAck(const HandshakeAck& ack) {
  constexpr const char* kGrammar = "handshake_ack";
  if (ack.version < 1) return Invalid(kGrammar, "version 0");
  if (Status s = CheckLength(kGrammar, "auth", ack.auth, kAuthBytesMax); !s.ok()) return s;
  std::string out;
  ByteWriter w(&out);
  w.U8(ack.version);
  w.U64(ack.from);
  w.Bytes(ack.auth);
  return out;
}

Result<HandshakeAck> DecodeHandshakeAck(std::string_view payload) {
  ByteReader r(payload, "handshake_ack");
  HandshakeAck ack;
  ack.version = r.U8("version");
  if (r.ok() && ack.version < 1) r.Fail("version 0");
  ack.from = r.U64("from");
  ack.auth = r.Bytes("auth", kAuthBytesMax);
  if (Status s = r.Finish(); !s.ok()) return s;
  return ack;
}

Result<std::string> EncodeHandshakeReject(const HandshakeReject& rej) {
  constexpr const char* kGrammar = "handshake_reject";
  const auto code = static_cast<std::uint8_t>(rej.code);
  if (code < 1 || code > kRejectCodeMax) {
    return Invalid(kGrammar, fmt::format("unknown reject code {}", code));
  }
  if (Status s = CheckLength(kGrammar, "reason", rej.reason, kReasonBytesMax); !s.ok()) {
    return s;
  }
  std::string out;
  ByteWriter w(&out);
  w.U8(code);
  w.Bytes(rej.reason);
  return out;
}

Result<HandshakeReject> DecodeHandshakeReject(std::string_view payload) {
  ByteReader r(payload, "handshake_reject");
  HandshakeReject rej;
  const std::uint8_t code = r.U8("code");
  if (r.ok() && (code < 1 || code > kRejectCodeMax)) {
    r.Fail(fmt::format("unknown reject code {}", code));
  }
  rej.code = static_cast<RejectCode>(code);
  rej.reason = r.Bytes("reason", kReasonBytesMax);
  if (Status s = r.Finish(); !s.ok()) return s;
  return rej;
}

Result<std::string> EncodeHandshakeFinish(const HandshakeFinish& fin) {
  if (Status s = CheckLength("handshake_finish", "proof", fin.proof, kProofBytes); !s.ok()) {
    return s;
  }
  std::string out;
  ByteWriter w(&out);
  w.Bytes(fin.proof);
  return out;
}

Result<HandshakeFinish> DecodeHandshakeFinish(std::string_view payload) {
  ByteReader r(payload, "handshake_finish");
  HandshakeFinish fin;
  fin.proof = r.Bytes("proof", kProofBytes);
  if (Status s = r.Finish(); !s.ok()) return s;
  return fin;
}

Result<std::string> HandshakeTranscript(std::string_view role, std::string_view hello,
                                        std::uint8_t version, NodeId listener,
                                        std::string_view listener_nonce) {
  constexpr const char* kGrammar = "transcript";
  if (Status s = CheckLength(kGrammar, "role", role, 8); !s.ok()) return s;
  if (Status s = CheckLength(kGrammar, "hello", hello, kHelloBytesMax); !s.ok()) return s;
  if (Status s = CheckLength(kGrammar, "listener_nonce", listener_nonce, kNonceBytes); !s.ok()) {
    return s;
  }
  // "raft-handshake-v2" and its terminating NUL.
  constexpr char kContext[] = "raft-handshake-v2";
  std::string out(kContext, sizeof(kContext));
  ByteWriter w(&out);
  w.Bytes(role);
  w.Bytes(hello);
  w.U8(version);
  w.U64(listener);
  w.Bytes(listener_nonce);
  return out;
}

std::optional<std::uint8_t> NegotiateVersion(std::uint8_t peer_min, std::uint8_t peer_max,
                                             std::uint8_t our_min, std::uint8_t our_max) {
  const std::uint8_t lo = std::max(peer_min, our_min);
  const std::uint8_t hi = std::min(peer_max, our_max);
  if (lo > hi) return std::nullopt;
  return hi;
}

}  // namespace raft::wire
