#include "kv_command.h"

namespace kv {
namespace {

constexpr std::uint8_t kFlagOk = 1u << 0;
constexpr std::uint8_t kFlagPrev = 1u << 1;
constexpr std::uint8_t kFlagError = 1u << 2;
constexpr std::uint8_t kFlagsAll = kFlagOk | kFlagPrev | kFlagError;

void PutU8(std::string* out, std::uint8_t v) { out->push_back(static_cast<char>(v)); }

void PutBytes32(std::string* out, std::string_view bytes) {
  // Sizes beyond u32 cannot be proposed (the runtime's message limit is far smaller).
  auto n = static_cast<std::uint32_t>(bytes.size());
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out->append(bytes.data(), n);
}

// A cursor over the input; every Get* fails (returns false) instead of reading past
// the end.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}

  bool GetU8(std::uint8_t* v) {
    if (data_.empty()) return false;
    *v = static_cast<std::uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }

  bool GetU64(std::uint64_t* v) {
    if (data_.size() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i)
      *v |= std::uint64_t{static_cast<unsigned char>(data_[i])} << (8 * i);
    data_.remove_prefix(8);
    return true;
  }

  bool GetBytes32(std::string* out) {
    if (data_.size() < 4) return false;
    std::uint32_t n = 0;
    for (int i = 0; i < 4; ++i)
      n |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(data_[i])) << (8 * i);
    data_.remove_prefix(4);
    if (data_.size() < n) return false;
    out->assign(data_.data(), n);
    data_.remove_prefix(n);
    return true;
  }

  bool AtEnd() const { return data_.empty(); }

 private:
  std::string_view data_;
};

}  // namespace

std::string EncodeCommand(const Command& c) {
  std::string out;
  out.reserve(2 + 4 + c.key.size() + 4 + c.value.size() + 1 +
              (c.expected ? 4 + c.expected->size() : 0));
  PutU8(&out, kCommandVersion);
  PutU8(&out, static_cast<std::uint8_t>(c.op));
  PutBytes32(&out, c.key);
  switch (c.op) {
    case Op::kPut:
      PutBytes32(&out, c.value);
      break;
    case Op::kDelete:
      break;
    case Op::kCas:
      PutBytes32(&out, c.value);
      if (c.expected) {
        PutU8(&out, 1);
        PutBytes32(&out, *c.expected);
      } else {
        PutU8(&out, 0);
      }
      break;
  }
  return out;
}

bool DecodeCommand(std::string_view data, Command* out) {
  Cursor in(data);
  std::uint8_t version = 0, op = 0;
  if (!in.GetU8(&version) || version != kCommandVersion) return false;
  if (!in.GetU8(&op)) return false;
  *out = Command{};
  if (!in.GetBytes32(&out->key)) return false;
  switch (op) {
    case static_cast<std::uint8_t>(Op::kPut):
      out->op = Op::kPut;
      if (!in.GetBytes32(&out->value)) return false;
      break;
    case static_cast<std::uint8_t>(Op::kDelete):
      out->op = Op::kDelete;
      break;
    case static_cast<std::uint8_t>(Op::kCas): {
      out->op = Op::kCas;
      std::uint8_t has_expected = 0;
      if (!in.GetBytes32(&out->value) || !in.GetU8(&has_expected)) return false;
      if (has_expected == 1) {
        out->expected.emplace();
        if (!in.GetBytes32(&*out->expected)) return false;
      } else if (has_expected != 0) {
        return false;
      }
      break;
    }
    default:
      return false;
  }
  return in.AtEnd();
}

std::string EncodeResult(const CommandResult& r) {
  std::string out;
  std::uint8_t flags =
      (r.ok ? kFlagOk : 0) | (r.prev ? kFlagPrev : 0) | (r.error.empty() ? 0 : kFlagError);
  PutU8(&out, kResultVersion);
  PutU8(&out, flags);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((r.index >> (8 * i)) & 0xff));
  if (r.prev) PutBytes32(&out, *r.prev);
  if (!r.error.empty()) PutBytes32(&out, r.error);
  return out;
}

bool DecodeResult(std::string_view data, CommandResult* out) {
  Cursor in(data);
  std::uint8_t version = 0, flags = 0;
  if (!in.GetU8(&version) || version != kResultVersion) return false;
  if (!in.GetU8(&flags) || (flags & ~kFlagsAll) != 0) return false;
  *out = CommandResult{};
  if (!in.GetU64(&out->index)) return false;
  out->ok = (flags & kFlagOk) != 0;
  if (flags & kFlagPrev) {
    out->prev.emplace();
    if (!in.GetBytes32(&*out->prev)) return false;
  }
  if (flags & kFlagError) {
    // An error flag with an empty message would not round-trip: refuse it.
    if (!in.GetBytes32(&out->error) || out->error.empty()) return false;
  }
  return in.AtEnd();
}

}  // namespace kv
