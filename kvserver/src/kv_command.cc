#include "kv_command.h"

#include <limits>

#include "raft/coding.h"

namespace kv {
namespace {

constexpr std::uint8_t kFlagOk = 1u << 0;
constexpr std::uint8_t kFlagPrev = 1u << 1;
constexpr std::uint8_t kFlagError = 1u << 2;
constexpr std::uint8_t kFlagsAll = kFlagOk | kFlagPrev | kFlagError;

constexpr std::uint32_t kBytesMax = std::numeric_limits<std::uint32_t>::max();

using raft::ByteReader;
using raft::ByteWriter;

}  // namespace

// Sizes beyond u32 (bytes32) cannot be proposed: the runtime's message limit is far
// smaller.
std::string EncodeCommand(const Command& c) {
  std::string out;
  out.reserve(2 + 4 + c.key.size() + 4 + c.value.size() + 1 +
              (c.expected ? 4 + c.expected->size() : 0));
  ByteWriter w(&out);
  w.U8(kCommandVersion);
  w.U8(static_cast<std::uint8_t>(c.op));
  w.Bytes(c.key);
  switch (c.op) {
    case Op::kPut:
    case Op::kSet:
      w.Bytes(c.value);
      break;
    case Op::kDelete:
      break;
    case Op::kCas:
      w.Bytes(c.value);
      if (c.expected) {
        w.U8(1);
        w.Bytes(*c.expected);
      } else {
        w.U8(0);
      }
      break;
  }
  return out;
}

bool DecodeCommand(std::string_view data, Command* out) {
  ByteReader in(data, "kv_command");
  if (in.U8("version") != kCommandVersion) in.Fail("unknown version");
  const std::uint8_t op = in.U8("op");
  *out = Command{};
  out->key = in.Bytes("key", kBytesMax);
  switch (op) {
    case static_cast<std::uint8_t>(Op::kPut):
    case static_cast<std::uint8_t>(Op::kSet):
      out->op = static_cast<Op>(op);
      out->value = in.Bytes("value", kBytesMax);
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
      } else if (has_expected != 0) {
        in.Fail("has_expected is neither 0 nor 1");
      }
      break;
    }
    default:
      in.Fail("unknown op");
  }
  return in.Finish().ok();
}

std::string EncodeResult(const CommandResult& r) {
  std::string out;
  std::uint8_t flags =
      (r.ok ? kFlagOk : 0) | (r.prev ? kFlagPrev : 0) | (r.error.empty() ? 0 : kFlagError);
  ByteWriter w(&out);
  w.U8(kResultVersion);
  w.U8(flags);
  w.U64(r.index);
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
  if (flags & kFlagPrev) out->prev = in.Bytes("prev", kBytesMax);
  if (flags & kFlagError) {
    out->error = in.Bytes("error", kBytesMax);
    // An error flag with an empty message would not round-trip: refuse it.
    if (out->error.empty()) in.Fail("empty error");
  }
  return in.Finish().ok();
}

}  // namespace kv
