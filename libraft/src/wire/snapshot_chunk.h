// Payload codecs of snapshot streaming (docs/wire-protocol.md, section 4.3). The bytes
// of a snapshot travel in SnapshotChunk frames, in order and without gaps; the receiver
// answers with SnapshotChunkAck frames that drive the sender's flow-control window.
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "raft/status.h"
#include "raft/types.h"
#include "wire/wire_format.h"

namespace raft::wire {

struct SnapshotChunk {
  Index snapshot_index = 0;  // (snapshot_index, snapshot_term) name the snapshot
  Term snapshot_term = 0;
  std::uint64_t offset = 0;  // of data[0] within the snapshot; offset + data.size() <= 2^64-1
  bool last = false;         // this chunk ends the snapshot
  std::string data;          // at most 4 GiB - 1, and the frame limit
  bool layout = false;       // the stream is in layout form (protocol version 3)

  bool operator==(const SnapshotChunk&) const = default;
};

struct SnapshotChunkAck {
  Index snapshot_index = 0;
  Term snapshot_term = 0;
  std::uint64_t offset = 0;  // bytes held durably = next offset expected
  bool abort = false;        // the receiver gave up; the sender stops and reports failure

  bool operator==(const SnapshotChunkAck&) const = default;
};

// A decoded chunk whose data stays in the payload it was decoded from (no copy of the
// bytes): valid while that payload is.
struct SnapshotChunkView {
  Index snapshot_index = 0;
  Term snapshot_term = 0;
  std::uint64_t offset = 0;
  bool last = false;
  std::string_view data;
  bool layout = false;
};

// Encoders: kInvalidArgument when a field breaks the grammar (data too large, offset
// overflow). Decoders: kCorruption on any grammar violation, including trailing bytes.
Result<std::string> EncodeSnapshotChunk(const SnapshotChunk& chunk);
// The whole frame (header and payload) of a chunk of `fields` (its data ignored) with
// `data_size` bytes that `fill` writes in place at the pointer it is given: the data is
// copied once (e.g. read from the snapshot file straight into the frame), not three
// times. `group` 0: a SnapshotChunk frame (versions 2-3); else a GroupSnapshotChunk of
// that group (version 4, section 4.4). Errors: EncodeSnapshotChunk's and
// EncodeFrameHeader's, or fill's.
Result<std::string> EncodeSnapshotChunkFrame(const SnapshotChunkView& fields, std::size_t data_size,
                                             const std::function<Status(char*)>& fill,
                                             std::uint32_t payload_bytes_max,
                                             std::uint64_t group = 0);
Result<SnapshotChunk> DecodeSnapshotChunk(std::string_view payload);
Result<SnapshotChunkView> DecodeSnapshotChunkView(std::string_view payload);
Result<std::string> EncodeSnapshotChunkAck(const SnapshotChunkAck& ack);
Result<SnapshotChunkAck> DecodeSnapshotChunkAck(std::string_view payload);

// Version 4 (section 4.4): `group:u64` in front of a snapshot_chunk or a
// snapshot_chunk_ack. Group 0 is refused both ways (kInvalidArgument, kCorruption).
struct GroupChunkView {
  std::uint64_t group = 0;
  SnapshotChunkView chunk;
};
struct GroupChunkAck {
  std::uint64_t group = 0;
  SnapshotChunkAck ack;
};
Result<GroupChunkView> DecodeGroupSnapshotChunkView(std::string_view payload);
Result<std::string> EncodeGroupSnapshotChunkAck(std::uint64_t group, const SnapshotChunkAck& ack);
Result<GroupChunkAck> DecodeGroupSnapshotChunkAck(std::string_view payload);
// A chunk (ack) of either kind by its frame type: a SnapshotChunk (Ack) is group 0.
Result<GroupChunkView> DecodeAnySnapshotChunkView(FrameType type, std::string_view payload);
Result<GroupChunkAck> DecodeAnySnapshotChunkAck(FrameType type, std::string_view payload);
// The frame of an ack: a GroupSnapshotChunkAck (version 4) of `group`, or with group 0 a
// SnapshotChunkAck (version kProtocolVersion).
Result<std::string> EncodeAnySnapshotChunkAckFrame(std::uint64_t group, const SnapshotChunkAck& ack,
                                                   std::uint32_t payload_bytes_max);

}  // namespace raft::wire
