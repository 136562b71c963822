// One entry point from frames to typed payloads and back, for the runtime and the
// fuzzer: a Payload is whichever of the seven payload types a frame carries.
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "raft/message.h"
#include "raft/status.h"
#include "wire/frame.h"
#include "wire/handshake.h"
#include "wire/snapshot_chunk.h"
#include "wire/wire_format.h"

namespace raft::wire {

// Alternatives in FrameType order: Handshake = kHandshake ... HandshakeFinish =
// kHandshakeFinish.
using Payload = std::variant<Handshake, HandshakeAck, HandshakeReject, Message, SnapshotChunk,
                             SnapshotChunkAck, HandshakeFinish>;

// The frame type that carries `payload`.
FrameType PayloadFrameType(const Payload& payload);

// Encodes `payload` and wraps it in a frame. kInvalidArgument if the payload breaks its
// grammar's limits or exceeds payload_bytes_max.
Result<std::string> EncodePayloadFrame(
    const Payload& payload, std::uint32_t payload_bytes_max = kFramePayloadBytesMaxDefault);

// Decodes a frame's payload by the grammar of its type. kCorruption on any violation.
Result<Payload> DecodePayload(const Frame& frame);

}  // namespace raft::wire
