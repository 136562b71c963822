// Frames: the length-prefixed, checksummed envelope of every payload on a connection
// (docs/wire-protocol.md, section 3). Pure code: no sockets, no Asio.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "raft/status.h"
#include "wire/wire_format.h"

namespace raft::wire {

// "Handshake", "RaftMessage"...; "?" for a value outside the enum.
const char* FrameTypeName(FrameType type);

struct Frame {
  FrameType type = FrameType::kRaftMessage;
  std::uint8_t version = kProtocolVersion;
  std::string payload;  // checksum verified; grammar not yet checked

  bool operator==(const Frame&) const = default;
};

using FrameHeaderBytes = std::array<char, kFrameHeaderBytes>;

// The 20-byte header of a frame of `type` carrying `payload`, for a gather write of
// header then payload. The version is kHandshakeFrameVersion for the handshake types
// and `version` (the one negotiated on the connection) otherwise. kInvalidArgument if
// `type` is not a FrameType or payload.size() > payload_bytes_max (the peer would
// reject the frame).
Result<FrameHeaderBytes> EncodeFrameHeader(
    FrameType type, std::string_view payload,
    std::uint32_t payload_bytes_max = kFramePayloadBytesMaxDefault,
    std::uint8_t version = kProtocolVersion);

// Header and payload in one string. Errors as EncodeFrameHeader.
Result<std::string> EncodeFrame(FrameType type, std::string_view payload,
                                std::uint32_t payload_bytes_max = kFramePayloadBytesMaxDefault,
                                std::uint8_t version = kProtocolVersion);

// Rewrites the version of an encoded frame that is not a handshake type (1-3), and the
// header checksum with it: for frames queued before the connection negotiated one.
void SetFrameVersion(std::string* frame, std::uint8_t version);

// Streaming decoder for the bytes of one connection, fed chunks of any size as they
// arrive. It checks magic as soon as 4 bytes are in and the whole header (checksum,
// version, type, flags, length <= payload_bytes_max) before buffering any payload. The
// payload buffer grows with the bytes actually received and never beyond the declared
// length, so a peer cannot make it allocate more than it sends (nor above the limit).
//
// After the first error the decoder is failed for good (the stream cannot be
// resynchronized): Feed returns that error again and the caller closes the connection.
// Frames completed before the error stay available from Pop().
//
// Memory: completed frames queue up until popped; callers Pop() all after each Feed.
// Thread safety: none; one connection's reader owns its decoder.
class FrameDecoder {
 public:
  // `first_payload_bytes_max` limits the first `first_frames` frames of the stream (a
  // listener passes kFirstFramePayloadBytesMax and kHandshakeFramesIn: those frames are
  // the unauthenticated handshake), the other limit every later one.
  explicit FrameDecoder(std::uint32_t payload_bytes_max = kFramePayloadBytesMaxDefault,
                        std::uint32_t first_payload_bytes_max = UINT32_MAX,
                        std::size_t first_frames = 1)
      : payload_bytes_max_(payload_bytes_max),
        first_payload_bytes_max_(std::min(payload_bytes_max, first_payload_bytes_max)),
        first_frames_(first_frames) {}

  // Consumes all of `bytes`. Ok, or kCorruption naming the first violation and the
  // stream offset of the frame it was found in.
  Status Feed(std::string_view bytes);

  // The oldest complete frame not yet popped, in stream order.
  std::optional<Frame> Pop();

  // Call at end of stream: Ok at a frame boundary; kCorruption for a truncated frame;
  // the earlier error if the decoder failed.
  Status Finish() const;

  // Bytes of an incomplete frame held (0 at a frame boundary).
  std::size_t partial_bytes() const;
  bool failed() const { return !error_.ok(); }

 private:
  Status CheckMagic();
  Status ParseHeader();
  Status CompletePayload();
  Status Fail(std::string message);

  const std::uint32_t payload_bytes_max_;
  const std::uint32_t first_payload_bytes_max_;
  const std::size_t first_frames_;
  std::size_t frames_started_ = 0;   // frames whose header passed ParseHeader
  std::uint64_t stream_offset_ = 0;  // stream offset of the frame being decoded
  // Header bytes received for the current frame, header_len_ <= kFrameHeaderBytes.
  FrameHeaderBytes header_{};
  std::size_t header_len_ = 0;
  bool in_payload_ = false;  // header complete and valid; payload being received
  std::uint32_t payload_len_ = 0;
  std::uint32_t payload_crc_ = 0;
  Frame current_;  // current_.payload.size() <= payload_len_
  std::deque<Frame> ready_;
  Status error_;
};

// Decodes exactly one frame that occupies all of `bytes` (no more, no less).
Result<Frame> DecodeFrame(std::string_view bytes,
                          std::uint32_t payload_bytes_max = kFramePayloadBytesMaxDefault);

}  // namespace raft::wire
