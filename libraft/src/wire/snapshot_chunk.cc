#include "wire/snapshot_chunk.h"

#include <fmt/format.h>

#include <limits>

#include "raft/coding.h"
#include "wire/wire_format.h"

namespace raft::wire {

using raft::ByteReader;
using raft::ByteWriter;

namespace {

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint32_t kU32Max = std::numeric_limits<std::uint32_t>::max();

}  // namespace

Result<std::string> EncodeSnapshotChunk(const SnapshotChunk& chunk) {
  if (chunk.data.size() > kU32Max || chunk.offset > kU64Max - chunk.data.size()) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("wire: cannot encode snapshot_chunk: {} bytes at offset {}",
                              chunk.data.size(), chunk.offset));
  }
  std::string out;
  out.reserve(kSnapshotChunkFixedBytes + chunk.data.size());
  ByteWriter w(&out);
  w.U64(chunk.snapshot_index);
  w.U64(chunk.snapshot_term);
  w.U64(chunk.offset);
  w.U8(static_cast<std::uint8_t>((chunk.last ? kChunkFlagLast : 0) |
                                 (chunk.layout ? kChunkFlagLayout : 0)));
  w.Bytes(chunk.data);
  return out;
}

Result<SnapshotChunk> DecodeSnapshotChunk(std::string_view payload) {
  ByteReader r(payload, "snapshot_chunk");
  SnapshotChunk chunk;
  chunk.snapshot_index = r.U64("snapshot_index");
  chunk.snapshot_term = r.U64("snapshot_term");
  chunk.offset = r.U64("offset");
  const std::uint8_t flags = r.U8("flags");
  constexpr std::uint8_t kKnown = kChunkFlagLast | kChunkFlagLayout;
  if (r.ok() && (flags & ~kKnown) != 0) {
    r.Fail(fmt::format("reserved flag bits {:#04x} set", flags & ~kKnown));
  }
  chunk.last = (flags & kChunkFlagLast) != 0;
  chunk.layout = (flags & kChunkFlagLayout) != 0;
  chunk.data = r.Bytes("data", kU32Max);
  if (r.ok() && chunk.offset > kU64Max - chunk.data.size()) {
    r.Fail(fmt::format("{} bytes at offset {} overflow u64", chunk.data.size(), chunk.offset));
  }
  if (Status s = r.Finish(); !s.ok()) return s;
  return chunk;
}

Result<std::string> EncodeSnapshotChunkAck(const SnapshotChunkAck& ack) {
  std::string out;
  ByteWriter w(&out);
  w.U64(ack.snapshot_index);
  w.U64(ack.snapshot_term);
  w.U64(ack.offset);
  w.U8(ack.abort ? kChunkAckAbort : kChunkAckOk);
  return out;
}

Result<SnapshotChunkAck> DecodeSnapshotChunkAck(std::string_view payload) {
  ByteReader r(payload, "snapshot_chunk_ack");
  SnapshotChunkAck ack;
  ack.snapshot_index = r.U64("snapshot_index");
  ack.snapshot_term = r.U64("snapshot_term");
  ack.offset = r.U64("offset");
  const std::uint8_t status = r.U8("status");
  if (r.ok() && status != kChunkAckOk && status != kChunkAckAbort) {
    r.Fail(fmt::format("unknown status {}", status));
  }
  ack.abort = status == kChunkAckAbort;
  if (Status s = r.Finish(); !s.ok()) return s;
  return ack;
}

}  // namespace raft::wire
