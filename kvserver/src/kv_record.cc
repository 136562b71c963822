#include "kv_record.h"

#include <limits>

#include "raft/coding.h"

namespace kv {
namespace {

constexpr std::uint8_t kRecordHasExpiry = 1u << 0;
constexpr char kHistoryPrefix = 'h';
constexpr char kExpiryPrefix = 'x';

void PutBig64(std::string* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t GetBig64(std::string_view p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

std::string EncodeRecord(std::uint64_t index, std::uint64_t expire_at_ms, std::string_view value) {
  std::string out;
  out.reserve(1 + 8 + (expire_at_ms != 0 ? 8 : 0) + value.size());
  raft::ByteWriter w(&out);
  w.U8(expire_at_ms != 0 ? kRecordHasExpiry : 0);
  w.U64(index);
  if (expire_at_ms != 0) w.U64(expire_at_ms);
  w.Raw(value);
  return out;
}

bool DecodeRecord(std::string_view in, Record* out) {
  raft::ByteReader r(in, "kv_record");
  const std::uint8_t flags = r.U8("flags");
  if ((flags & ~kRecordHasExpiry) != 0) r.Fail("unknown flag");
  *out = Record{};
  out->index = r.U64("index");
  if (flags & kRecordHasExpiry) {
    out->expire_at_ms = r.U64("expire_at");
    if (out->expire_at_ms == 0) r.Fail("expire_at flagged but 0");
  }
  out->value = r.Rest();
  return r.Finish().ok();
}

std::string_view EventTypeName(EventType t) {
  switch (t) {
    case EventType::kPut:
      return "put";
    case EventType::kDelete:
      return "delete";
    case EventType::kExpire:
      return "expire";
  }
  return "unknown";
}

std::string EncodeEvent(EventType type, std::string_view key, std::string_view value) {
  std::string out;
  out.reserve(1 + 4 + key.size() + value.size());
  raft::ByteWriter w(&out);
  w.U8(static_cast<std::uint8_t>(type));
  w.Bytes(key);
  if (type == EventType::kPut) w.Raw(value);
  return out;
}

bool DecodeEvent(std::string_view in, Event* out) {
  raft::ByteReader r(in, "kv_event");
  const std::uint8_t type = r.U8("type");
  if (type < 1 || type > 3) r.Fail("unknown event type");
  out->type = static_cast<EventType>(type);
  out->key = r.Bytes("key", std::numeric_limits<std::uint32_t>::max());
  out->value.clear();
  if (out->type == EventType::kPut) out->value = std::string(r.Rest());
  return r.Finish().ok();
}

std::string HistoryKey(std::uint64_t index) {
  std::string k(1, kHistoryPrefix);
  PutBig64(&k, index);
  return k;
}

std::optional<std::uint64_t> HistoryIndex(std::string_view k) {
  if (k.size() != 9 || k[0] != kHistoryPrefix) return std::nullopt;
  return GetBig64(k.substr(1));
}

std::string ExpiryKey(std::uint64_t expire_at_ms, std::string_view key) {
  std::string k(1, kExpiryPrefix);
  PutBig64(&k, expire_at_ms);
  k.append(key);
  return k;
}

bool ParseExpiryKey(std::string_view k, std::uint64_t* expire_at_ms, std::string* key) {
  if (k.size() < 9 || k[0] != kExpiryPrefix) return false;
  *expire_at_ms = GetBig64(k.substr(1, 8));
  key->assign(k.substr(9));
  return true;
}

}  // namespace kv
