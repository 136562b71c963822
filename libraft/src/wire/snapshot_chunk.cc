#include "wire/snapshot_chunk.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "raft/coding.h"
#include "wire/frame.h"
#include "wire/wire_format.h"

namespace raft::wire {

using raft::ByteReader;
using raft::ByteWriter;

namespace {

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint32_t kU32Max = std::numeric_limits<std::uint32_t>::max();

// Appends the fixed part of a snapshot_chunk and the length of its `data_size` data bytes
// (which the caller appends). kInvalidArgument if they break the grammar.
Status AppendChunkFixed(const SnapshotChunkView& f, std::size_t data_size, std::string* out) {
  if (data_size > kU32Max || f.offset > kU64Max - data_size) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("wire: cannot encode snapshot_chunk: {} bytes at offset {}",
                              data_size, f.offset));
  }
  out->reserve(out->size() + kSnapshotChunkFixedBytes + data_size);
  ByteWriter w(out);
  w.U64(f.snapshot_index);
  w.U64(f.snapshot_term);
  w.U64(f.offset);
  w.U8(
      static_cast<std::uint8_t>((f.last ? kChunkFlagLast : 0) | (f.layout ? kChunkFlagLayout : 0)));
  w.U32(static_cast<std::uint32_t>(data_size));
  return Status::Ok();
}

}  // namespace

Result<std::string> EncodeSnapshotChunk(const SnapshotChunk& chunk) {
  std::string out;
  const SnapshotChunkView fields{chunk.snapshot_index, chunk.snapshot_term, chunk.offset,
                                 chunk.last,           chunk.data,          chunk.layout};
  if (Status s = AppendChunkFixed(fields, chunk.data.size(), &out); !s.ok()) return s;
  out.append(chunk.data);
  return out;
}

Result<std::string> EncodeSnapshotChunkFrame(const SnapshotChunkView& fields, std::size_t data_size,
                                             const std::function<Status(char*)>& fill,
                                             std::uint32_t payload_bytes_max, std::uint64_t group) {
  std::string out(kFrameHeaderBytes, '\0');
  if (group != 0) ByteWriter(&out).U64(group);
  if (Status s = AppendChunkFixed(fields, data_size, &out); !s.ok()) return s;
  out.resize(out.size() + data_size);
  if (Status s = fill(out.data() + out.size() - data_size); !s.ok()) return s;
  auto header =
      EncodeFrameHeader(group != 0 ? FrameType::kGroupSnapshotChunk : FrameType::kSnapshotChunk,
                        std::string_view(out).substr(kFrameHeaderBytes), payload_bytes_max,
                        group != 0 ? kProtocolVersionHost : kProtocolVersion);
  if (!header.ok()) return header.status();
  std::memcpy(out.data(), header->data(), kFrameHeaderBytes);
  return out;
}

Result<SnapshotChunk> DecodeSnapshotChunk(std::string_view payload) {
  auto v = DecodeSnapshotChunkView(payload);
  if (!v.ok()) return v.status();
  return SnapshotChunk{v->snapshot_index, v->snapshot_term,     v->offset,
                       v->last,           std::string(v->data), v->layout};
}

Result<SnapshotChunkView> DecodeSnapshotChunkView(std::string_view payload) {
  ByteReader r(payload, "snapshot_chunk");
  SnapshotChunkView chunk;
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
  const std::uint32_t len = r.U32("data");
  chunk.data = r.ok() ? r.Raw("data", len) : std::string_view();
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

namespace {

// The group in front of a version-4 chunk or ack; 0 (with a failed reader) when absent.
std::uint64_t ReadGroup(std::string_view payload, const char* what, std::string_view* rest,
                        Status* error) {
  ByteReader r(payload.substr(0, std::min<std::size_t>(payload.size(), 8)), what);
  const std::uint64_t group = r.U64("group");
  if (r.ok() && group == 0) r.Fail("group 0");
  if (Status s = r.Finish(); !s.ok()) {
    *error = s;
    return 0;
  }
  *rest = payload.substr(8);
  return group;
}

}  // namespace

Result<GroupChunkView> DecodeGroupSnapshotChunkView(std::string_view payload) {
  std::string_view rest;
  Status error;
  GroupChunkView v;
  v.group = ReadGroup(payload, "group_snapshot_chunk", &rest, &error);
  if (v.group == 0) return error;
  auto chunk = DecodeSnapshotChunkView(rest);
  if (!chunk.ok()) return chunk.status();
  v.chunk = *chunk;
  return v;
}

Result<std::string> EncodeGroupSnapshotChunkAck(std::uint64_t group, const SnapshotChunkAck& ack) {
  if (group == 0)
    return Status(ErrorCode::kInvalidArgument, "wire: cannot encode a chunk ack of group 0");
  std::string out;
  ByteWriter(&out).U64(group);
  auto body = EncodeSnapshotChunkAck(ack);
  if (!body.ok()) return body.status();
  out.append(*body);
  return out;
}

Result<GroupChunkAck> DecodeGroupSnapshotChunkAck(std::string_view payload) {
  std::string_view rest;
  Status error;
  GroupChunkAck a;
  a.group = ReadGroup(payload, "group_snapshot_chunk_ack", &rest, &error);
  if (a.group == 0) return error;
  auto ack = DecodeSnapshotChunkAck(rest);
  if (!ack.ok()) return ack.status();
  a.ack = *ack;
  return a;
}

Result<GroupChunkView> DecodeAnySnapshotChunkView(FrameType type, std::string_view payload) {
  if (type == FrameType::kGroupSnapshotChunk) return DecodeGroupSnapshotChunkView(payload);
  auto c = DecodeSnapshotChunkView(payload);
  if (!c.ok()) return c.status();
  return GroupChunkView{0, *c};
}

Result<GroupChunkAck> DecodeAnySnapshotChunkAck(FrameType type, std::string_view payload) {
  if (type == FrameType::kGroupSnapshotChunkAck) return DecodeGroupSnapshotChunkAck(payload);
  auto a = DecodeSnapshotChunkAck(payload);
  if (!a.ok()) return a.status();
  return GroupChunkAck{0, *a};
}

Result<std::string> EncodeAnySnapshotChunkAckFrame(std::uint64_t group, const SnapshotChunkAck& ack,
                                                   std::uint32_t payload_bytes_max) {
  auto payload = group != 0 ? EncodeGroupSnapshotChunkAck(group, ack) : EncodeSnapshotChunkAck(ack);
  if (!payload.ok()) return payload.status();
  return EncodeFrame(group != 0 ? FrameType::kGroupSnapshotChunkAck : FrameType::kSnapshotChunkAck,
                     *payload, payload_bytes_max,
                     group != 0 ? kProtocolVersionHost : kProtocolVersion);
}

}  // namespace raft::wire
