// libFuzzer target for the wire codecs (docs/wire-protocol.md, section 8).
// Input: byte 0 picks the frame limit and the feed chunk size; the rest is a byte
// stream fed to a FrameDecoder. Every frame it yields is decoded as a payload; whatever
// decodes must re-encode to the identical bytes. The same bytes also go straight to the
// payload decoders, bypassing the checksum, and to the group frame decoders of protocol
// version 4 (group_frames.h). Crashes, sanitizer reports and aborts are findings.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "wire/frame.h"
#include "wire/group_frames.h"
#include "wire/payload.h"

namespace {

using raft::wire::DecodePayload;
using raft::wire::EncodePayloadFrame;
using raft::wire::Frame;
using raft::wire::FrameDecoder;
using raft::wire::FrameType;
using raft::wire::kFrameHeaderBytes;
using raft::wire::kFrameTypeMax;

void CheckCanonical(const Frame& frame) {
  auto decoded = DecodePayload(frame);
  if (!decoded.ok()) return;
  auto again = EncodePayloadFrame(*decoded);
  if (!again.ok() || again->substr(kFrameHeaderBytes) != frame.payload) std::abort();
}

// Version 4's group frames: whatever decodes must re-encode to the identical bytes.
void CheckGroupCanonical(FrameType type, std::string_view payload) {
  namespace w = raft::wire;
  raft::Result<std::string> again = std::string();
  if (type == FrameType::kGroupMessage) {
    auto d = w::DecodeGroupMessage(payload);
    if (!d.ok()) return;
    again = w::EncodeGroupMessage(d->group, d->message);
  } else if (type == FrameType::kHostBeat) {
    auto d = w::DecodeHostBeat(payload);
    if (!d.ok()) return;
    again = w::EncodeHostBeat(*d);
  } else if (type == FrameType::kHostBeatAck) {
    auto d = w::DecodeHostBeatAck(payload);
    if (!d.ok()) return;
    again = w::EncodeHostBeatAck(*d);
  } else {
    return;
  }
  if (!again.ok() || *again != payload) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  const std::uint32_t max = control & 0x80 ? 1u << 16 : 256;
  const std::size_t chunk = 1 + (control & 0x3f);
  FrameDecoder decoder(max);
  for (std::string_view s = rest; !s.empty();) {
    const std::size_t n = s.size() < chunk ? s.size() : chunk;
    const bool ok = decoder.Feed(s.substr(0, n)).ok();
    s.remove_prefix(n);
    while (auto f = decoder.Pop()) {
      CheckCanonical(*f);
      CheckGroupCanonical(f->type, f->payload);
    }
    if (!ok) break;
  }
  (void)decoder.Finish();

  for (std::uint8_t t = 1; t <= kFrameTypeMax; ++t) {
    CheckCanonical(Frame{static_cast<FrameType>(t), 1, std::string(rest)});
  }
  for (FrameType t : {FrameType::kGroupMessage, FrameType::kHostBeat, FrameType::kHostBeatAck}) {
    CheckGroupCanonical(t, rest);
  }
  return 0;
}
