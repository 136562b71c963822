#include "kv_command.h"

#include <limits>

#include "raft/coding.h"

namespace kv {
namespace {

constexpr std::uint8_t kFlagOk = 1u << 0;
constexpr std::uint8_t kFlagPrev = 1u << 1;
constexpr std::uint8_t kFlagError = 1u << 2;
constexpr std::uint8_t kFlagPrevIndex = 1u << 3;
constexpr std::uint8_t kFlagsAll = kFlagOk | kFlagPrev | kFlagError | kFlagPrevIndex;

bool NeedsVersion2(const Command& c) {
  return c.op == Op::kExpire || c.op == Op::kSplit || c.expire_at_ms != 0 ||
         (c.op == Op::kCas && c.expected_index);
}

constexpr std::uint32_t kBytesMax = std::numeric_limits<std::uint32_t>::max();

using raft::ByteReader;
using raft::ByteWriter;

}  // namespace

// Sizes beyond u32 (bytes32) cannot be proposed: the runtime's message limit is far
// smaller.
std::string EncodeCommand(const Command& c) {
  const bool v2 = NeedsVersion2(c);
  std::string out;
  out.reserve(2 + 4 + c.key.size() + 4 + c.value.size() + 1 + 8 +
              (c.expected ? 4 + c.expected->size() : 8));
  ByteWriter w(&out);
  w.U8(v2 ? kCommandVersion2 : kCommandVersion);
  w.U8(static_cast<std::uint8_t>(c.op));
  w.Bytes(c.key);
  switch (c.op) {
    case Op::kPut:
    case Op::kSet:
      w.Bytes(c.value);
      if (v2) w.U64(c.expire_at_ms);
      break;
    case Op::kDelete:
      break;
    case Op::kCas:
      w.Bytes(c.value);
      if (c.expected_index) {
        w.U8(2);
        w.U64(*c.expected_index);
      } else if (c.expected) {
        w.U8(1);
        w.Bytes(*c.expected);
      } else {
        w.U8(0);
      }
      if (v2) w.U64(c.expire_at_ms);
      break;
    case Op::kExpire:
      w.U64(c.expire_at_ms);
      break;
    case Op::kSplit:
      w.Bytes(c.value);
      w.U64(c.new_range);
      w.U32(static_cast<std::uint32_t>(c.voters.size()));
      for (std::uint64_t v : c.voters) w.U64(v);
      break;
  }
  return out;
}

bool DecodeCommand(std::string_view data, Command* out) {
  ByteReader in(data, "kv_command");
  const std::uint8_t version = in.U8("version");
  if (version != kCommandVersion && version != kCommandVersion2) in.Fail("unknown version");
  const bool v2 = version == kCommandVersion2;
  const std::uint8_t op = in.U8("op");
  *out = Command{};
  out->key = in.Bytes("key", kBytesMax);
  switch (op) {
    case static_cast<std::uint8_t>(Op::kPut):
    case static_cast<std::uint8_t>(Op::kSet):
      out->op = static_cast<Op>(op);
      out->value = in.Bytes("value", kBytesMax);
      if (v2) out->expire_at_ms = in.U64("expire_at");
      break;
    case static_cast<std::uint8_t>(Op::kDelete):
      out->op = Op::kDelete;
      break;
    case static_cast<std::uint8_t>(Op::kCas): {
      out->op = Op::kCas;
      out->value = in.Bytes("value", kBytesMax);
      const std::uint8_t has_expected = in.U8("has_expected");
      if (has_expected == 1) {
        out->expected = in.Bytes("expected", kBytesMax);
      } else if (has_expected == 2 && v2) {
        out->expected_index = in.U64("expected_index");
      } else if (has_expected != 0) {
        in.Fail("has_expected is not 0, 1 or (version 2) 2");
      }
      if (v2) out->expire_at_ms = in.U64("expire_at");
      break;
    }
    case static_cast<std::uint8_t>(Op::kExpire):
      if (!v2) in.Fail("expire is a version 2 op");
      out->op = Op::kExpire;
      out->expire_at_ms = in.U64("expire_at");
      break;
    case static_cast<std::uint8_t>(Op::kSplit):
      if (!v2) in.Fail("split is a version 2 op");
      out->op = Op::kSplit;
      out->value = in.Bytes("range", kBytesMax);
      out->new_range = in.U64("new_range");
      for (std::uint32_t i = 0, n = in.Count("voters", 64, 8); i < n && in.ok(); ++i)
        out->voters.push_back(in.U64("voter"));
      break;
    default:
      in.Fail("unknown op");
  }
  // One encoding per command: version 2 only when a version 2 field is used.
  if (in.ok() && v2 && !NeedsVersion2(*out)) in.Fail("version 2 without a version 2 field");
  return in.Finish().ok();
}

std::string EncodeResult(const CommandResult& r) {
  std::string out;
  std::uint8_t flags = (r.ok ? kFlagOk : 0) | (r.prev ? kFlagPrev : 0) |
                       (r.error.empty() ? 0 : kFlagError) |
                       (r.prev_index != 0 ? kFlagPrevIndex : 0);
  ByteWriter w(&out);
  w.U8(kResultVersion);
  w.U8(flags);
  w.U64(r.index);
  if (r.prev_index != 0) w.U64(r.prev_index);
  if (r.prev) w.Bytes(*r.prev);
  if (!r.error.empty()) w.Bytes(r.error);
  return out;
}

bool DecodeResult(std::string_view data, CommandResult* out) {
  ByteReader in(data, "kv_result");
  if (in.U8("version") != kResultVersion) in.Fail("unknown version");
  const std::uint8_t flags = in.U8("flags");
  if ((flags & ~kFlagsAll) != 0) in.Fail("unknown flag");
  *out = CommandResult{};
  out->index = in.U64("index");
  out->ok = (flags & kFlagOk) != 0;
  if (flags & kFlagPrevIndex) {
    out->prev_index = in.U64("prev_index");
    if (out->prev_index == 0) in.Fail("prev_index flagged but 0");  // would not round-trip
  }
  if (flags & kFlagPrev) out->prev = in.Bytes("prev", kBytesMax);
  if (flags & kFlagError) {
    out->error = in.Bytes("error", kBytesMax);
    // An error flag with an empty message would not round-trip: refuse it.
    if (out->error.empty()) in.Fail("empty error");
  }
  return in.Finish().ok();
}

}  // namespace kv
