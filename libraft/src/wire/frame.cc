#include "wire/frame.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "base/assert.h"
#include "base/crc32c.h"
#include "raft/coding.h"

namespace raft::wire {

using base::Crc32c;
using base::Crc32cExtend;
using raft::ByteWriter;

namespace {

// Initial payload buffer; it grows geometrically (capped at the declared length).
constexpr std::size_t kPayloadReserveInitial = 64 << 10;

bool IsFrameType(std::uint8_t t) {
  return (t >= 1 && t <= kFrameTypeMax) || (t >= kGroupFrameTypeMin && t <= kGroupFrameTypeMax);
}

// Whether a frame of `type` may carry `version` (section 3.2): the handshake types
// version 1; RaftMessage and the snapshot frames versions 2-3; HandshakeFinish 2-4; the
// group frames 4 (section 4.4).
bool TypeFitsVersion(FrameType t, std::uint8_t version) {
  switch (t) {
    case FrameType::kHandshake:
    case FrameType::kHandshakeAck:
    case FrameType::kHandshakeReject:
      return version == kHandshakeFrameVersion;
    case FrameType::kRaftMessage:
    case FrameType::kSnapshotChunk:
    case FrameType::kSnapshotChunkAck:
      return version >= kProtocolVersionMin && version <= kProtocolVersionMax;
    case FrameType::kHandshakeFinish:
      return version >= kProtocolVersionMin && version <= kProtocolVersionHost;
    case FrameType::kGroupMessage:
    case FrameType::kGroupSnapshotChunk:
    case FrameType::kGroupSnapshotChunkAck:
    case FrameType::kHostBeat:
    case FrameType::kHostBeatAck:
      return version == kProtocolVersionHost;
  }
  return false;
}

bool IsHandshakeType(FrameType t) {
  return t == FrameType::kHandshake || t == FrameType::kHandshakeAck ||
         t == FrameType::kHandshakeReject;
}

}  // namespace

const char* FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kHandshake:
      return "Handshake";
    case FrameType::kHandshakeAck:
      return "HandshakeAck";
    case FrameType::kHandshakeReject:
      return "HandshakeReject";
    case FrameType::kRaftMessage:
      return "RaftMessage";
    case FrameType::kSnapshotChunk:
      return "SnapshotChunk";
    case FrameType::kSnapshotChunkAck:
      return "SnapshotChunkAck";
    case FrameType::kHandshakeFinish:
      return "HandshakeFinish";
    case FrameType::kGroupMessage:
      return "GroupMessage";
    case FrameType::kGroupSnapshotChunk:
      return "GroupSnapshotChunk";
    case FrameType::kGroupSnapshotChunkAck:
      return "GroupSnapshotChunkAck";
    case FrameType::kHostBeat:
      return "HostBeat";
    case FrameType::kHostBeatAck:
      return "HostBeatAck";
  }
  return "?";
}

Result<FrameHeaderBytes> EncodeFrameHeader(FrameType type, std::string_view payload,
                                           std::uint32_t payload_bytes_max, std::uint8_t version) {
  if (!IsFrameType(static_cast<std::uint8_t>(type))) {
    return Status(
        ErrorCode::kInvalidArgument,
        fmt::format("wire: cannot encode unknown frame type {}", static_cast<unsigned>(type)));
  }
  const std::uint8_t v = IsHandshakeType(type) ? kHandshakeFrameVersion : version;
  if (!TypeFitsVersion(type, v)) {
    return Status(
        ErrorCode::kInvalidArgument,
        fmt::format("wire: a {} frame cannot carry protocol version {}", FrameTypeName(type), v));
  }
  if (payload.size() > payload_bytes_max) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("wire: {} payload of {} bytes exceeds the frame limit of {}",
                              FrameTypeName(type), payload.size(), payload_bytes_max));
  }
  std::string h;
  h.reserve(kFrameHeaderBytes);
  ByteWriter w(&h);
  w.Raw(std::string_view(reinterpret_cast<const char*>(kMagic), kMagicBytes));
  w.U8(v);
  w.U8(static_cast<std::uint8_t>(type));
  w.U16(0);  // flags
  w.U32(static_cast<std::uint32_t>(payload.size()));
  w.U32(Crc32c(payload));
  w.U32(Crc32c(h));
  FrameHeaderBytes out;
  std::memcpy(out.data(), h.data(), kFrameHeaderBytes);
  return out;
}

Result<std::string> EncodeFrame(FrameType type, std::string_view payload,
                                std::uint32_t payload_bytes_max, std::uint8_t version) {
  auto header = EncodeFrameHeader(type, payload, payload_bytes_max, version);
  if (!header.ok()) return header.status();
  std::string out;
  out.reserve(kFrameHeaderBytes + payload.size());
  out.append(header->data(), header->size());
  out.append(payload);
  return out;
}

void SetFrameVersion(std::string* frame, std::uint8_t version) {
  RAFT_ASSERT(frame->size() >= kFrameHeaderBytes, "not an encoded frame");
  const auto type = static_cast<FrameType>(static_cast<std::uint8_t>((*frame)[kMagicBytes + 1]));
  if (IsHandshakeType(type) || static_cast<std::uint8_t>((*frame)[kMagicBytes]) == version) return;
  (*frame)[kMagicBytes] = static_cast<char>(version);
  raft::EncodeFixed32(frame->data() + kHeaderCrcOffset,
                      Crc32c(std::string_view(frame->data(), kHeaderCrcOffset)));
}

Status FrameDecoder::Fail(std::string message) {
  error_ = Status(ErrorCode::kCorruption,
                  fmt::format("wire: {} (frame at stream offset {})", message, stream_offset_));
  return error_;
}

Status FrameDecoder::CheckMagic() {
  const std::size_t n = std::min(header_len_, kMagicBytes);
  if (std::memcmp(header_.data(), kMagic, n) == 0) return Status::Ok();
  std::string got;
  for (std::size_t i = 0; i < n; ++i) {
    got += fmt::format("{}{:02x}", i ? " " : "", static_cast<unsigned char>(header_[i]));
  }
  return Fail(fmt::format("bad magic {} (not a raft peer?)", got));
}

Status FrameDecoder::ParseHeader() {
  const std::uint32_t stored = raft::DecodeFixed32(header_.data() + kHeaderCrcOffset);
  const std::uint32_t computed = Crc32cExtend(0, header_.data(), kHeaderCrcOffset);
  if (stored != computed) {
    return Fail(fmt::format("frame header checksum mismatch (stored {:08x}, computed {:08x})",
                            stored, computed));
  }
  const auto version = static_cast<std::uint8_t>(header_[kVersionOffset]);
  const auto type = static_cast<std::uint8_t>(header_[kTypeOffset]);
  const std::uint16_t flags =
      static_cast<std::uint16_t>(static_cast<unsigned char>(header_[kFlagsOffset]) |
                                 static_cast<unsigned char>(header_[kFlagsOffset + 1]) << 8);
  if (!IsFrameType(type)) return Fail(fmt::format("unknown frame type {}", type));
  const auto frame_type = static_cast<FrameType>(type);
  if (!TypeFitsVersion(frame_type, version)) {
    return Fail(fmt::format(
        "unsupported version {} for a {} frame (this node speaks {}..{}, and {} for a host "
        "of many groups)",
        version, FrameTypeName(frame_type), kProtocolVersionMin, kProtocolVersionMax,
        kProtocolVersionHost));
  }
  if (flags != 0) return Fail(fmt::format("reserved frame flags {:#06x} set", flags));
  payload_len_ = raft::DecodeFixed32(header_.data() + kPayloadLenOffset);
  const bool early = frames_started_ < first_frames_;
  const std::uint32_t limit = early ? first_payload_bytes_max_ : payload_bytes_max_;
  if (payload_len_ > limit) {
    return Fail(fmt::format("{} frame payload of {} bytes exceeds the limit of {}{}",
                            FrameTypeName(frame_type), payload_len_, limit,
                            early ? " for a connection's handshake frames" : ""));
  }
  ++frames_started_;
  payload_crc_ = raft::DecodeFixed32(header_.data() + kPayloadCrcOffset);
  current_ = Frame{frame_type, version, std::string()};
  current_.payload.reserve(std::min<std::size_t>(payload_len_, kPayloadReserveInitial));
  in_payload_ = true;
  return Status::Ok();
}

Status FrameDecoder::CompletePayload() {
  const std::uint32_t computed = Crc32c(current_.payload);
  if (computed != payload_crc_) {
    return Fail(fmt::format("{} frame payload checksum mismatch (stored {:08x}, computed {:08x})",
                            FrameTypeName(current_.type), payload_crc_, computed));
  }
  stream_offset_ += kFrameHeaderBytes + payload_len_;
  ready_.push_back(std::move(current_));
  current_ = Frame{};
  header_len_ = 0;
  in_payload_ = false;
  return Status::Ok();
}

Status FrameDecoder::Feed(std::string_view bytes) {
  if (failed()) return error_;
  while (!bytes.empty()) {
    if (!in_payload_) {
      const std::size_t take = std::min(bytes.size(), kFrameHeaderBytes - header_len_);
      std::memcpy(header_.data() + header_len_, bytes.data(), take);
      const bool magic_incomplete = header_len_ < kMagicBytes;
      header_len_ += take;
      bytes.remove_prefix(take);
      if (magic_incomplete) {
        if (Status s = CheckMagic(); !s.ok()) return s;
      }
      if (header_len_ < kFrameHeaderBytes) continue;
      if (Status s = ParseHeader(); !s.ok()) return s;
    } else {
      std::string& payload = current_.payload;
      const std::size_t take = std::min<std::size_t>(bytes.size(), payload_len_ - payload.size());
      const std::size_t needed = payload.size() + take;
      if (needed > payload.capacity()) {
        // Grow geometrically, but never past the declared length. A fresh string is
        // reserved because std::string::reserve on a non-empty string may round the
        // request up to twice the old capacity, beyond the declared length.
        std::string grown;
        grown.reserve(
            std::min<std::size_t>(payload_len_, std::max(needed, 2 * payload.capacity())));
        grown.append(payload);
        payload.swap(grown);
      }
      payload.append(bytes.data(), take);
      bytes.remove_prefix(take);
    }
    if (in_payload_ && current_.payload.size() == payload_len_) {
      if (Status s = CompletePayload(); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

std::optional<Frame> FrameDecoder::Pop() {
  if (ready_.empty()) return std::nullopt;
  Frame f = std::move(ready_.front());
  ready_.pop_front();
  return f;
}

std::size_t FrameDecoder::partial_bytes() const {
  return header_len_ + (in_payload_ ? current_.payload.size() : 0);
}

Status FrameDecoder::Finish() const {
  if (failed()) return error_;
  if (in_payload_) {
    return Status(ErrorCode::kCorruption,
                  fmt::format("wire: stream ended inside a {} frame after {} of {} payload bytes "
                              "(frame at stream offset {})",
                              FrameTypeName(current_.type), current_.payload.size(), payload_len_,
                              stream_offset_));
  }
  if (header_len_ > 0) {
    return Status(ErrorCode::kCorruption,
                  fmt::format("wire: stream ended inside a frame header after {} of {} bytes "
                              "(frame at stream offset {})",
                              header_len_, kFrameHeaderBytes, stream_offset_));
  }
  return Status::Ok();
}

Result<Frame> DecodeFrame(std::string_view bytes, std::uint32_t payload_bytes_max) {
  FrameDecoder decoder(payload_bytes_max);
  if (Status s = decoder.Feed(bytes); !s.ok()) return s;
  if (Status s = decoder.Finish(); !s.ok()) return s;
  std::optional<Frame> frame = decoder.Pop();
  if (!frame) return Status(ErrorCode::kCorruption, "wire: no frame in an empty input");
  if (decoder.Pop()) {
    return Status(ErrorCode::kCorruption, "wire: trailing bytes after the frame (another frame)");
  }
  return std::move(*frame);
}

}  // namespace raft::wire
