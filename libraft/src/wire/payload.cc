#include "wire/payload.h"

#include <fmt/format.h>

#include <type_traits>
#include <utility>

#include "wire/message_codec.h"

namespace raft::wire {
namespace {

static_assert(std::variant_size_v<Payload> == kFrameTypeMax);
static_assert(
    std::is_same_v<
        std::variant_alternative_t<static_cast<std::size_t>(FrameType::kRaftMessage) - 1, Payload>,
        Message>);
static_assert(
    std::is_same_v<std::variant_alternative_t<
                       static_cast<std::size_t>(FrameType::kSnapshotChunkAck) - 1, Payload>,
                   SnapshotChunkAck>);

Result<std::string> EncodeOne(const Handshake& p) { return EncodeHandshake(p); }
Result<std::string> EncodeOne(const HandshakeAck& p) { return EncodeHandshakeAck(p); }
Result<std::string> EncodeOne(const HandshakeReject& p) { return EncodeHandshakeReject(p); }
Result<std::string> EncodeOne(const Message& p) { return EncodeMessage(p); }
Result<std::string> EncodeOne(const SnapshotChunk& p) { return EncodeSnapshotChunk(p); }
Result<std::string> EncodeOne(const SnapshotChunkAck& p) { return EncodeSnapshotChunkAck(p); }
Result<std::string> EncodeOne(const HandshakeFinish& p) { return EncodeHandshakeFinish(p); }

// Converts Result<T> to Result<Payload>.
template <typename T>
Result<Payload> Widen(Result<T> r) {
  if (!r.ok()) return r.status();
  return Payload(std::move(r).value());
}

}  // namespace

FrameType PayloadFrameType(const Payload& payload) {
  return static_cast<FrameType>(payload.index() + 1);
}

Result<std::string> EncodePayloadFrame(const Payload& payload, std::uint32_t payload_bytes_max) {
  Result<std::string> body = std::visit([](const auto& p) { return EncodeOne(p); }, payload);
  if (!body.ok()) return body.status();
  return EncodeFrame(PayloadFrameType(payload), *body, payload_bytes_max);
}

Result<Payload> DecodePayload(const Frame& frame) {
  switch (frame.type) {
    case FrameType::kHandshake:
      return Widen(DecodeHandshake(frame.payload));
    case FrameType::kHandshakeAck:
      return Widen(DecodeHandshakeAck(frame.payload));
    case FrameType::kHandshakeReject:
      return Widen(DecodeHandshakeReject(frame.payload));
    case FrameType::kRaftMessage:
      return Widen(DecodeMessage(frame.payload));
    case FrameType::kSnapshotChunk:
      return Widen(DecodeSnapshotChunk(frame.payload));
    case FrameType::kSnapshotChunkAck:
      return Widen(DecodeSnapshotChunkAck(frame.payload));
    case FrameType::kHandshakeFinish:
      return Widen(DecodeHandshakeFinish(frame.payload));
    case FrameType::kGroupMessage:
    case FrameType::kGroupSnapshotChunk:
    case FrameType::kGroupSnapshotChunkAck:
    case FrameType::kHostBeat:
    case FrameType::kHostBeatAck:
      break;  // version 4: group_frames.h decodes them
  }
  return Status(ErrorCode::kCorruption,
                fmt::format("wire: no Payload for a {} frame", FrameTypeName(frame.type)));
}

}  // namespace raft::wire
