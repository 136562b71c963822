// The state machine's records in RocksDB, other than metadata: a user key's record, a
// change-history event and the keys of the history and expiry spaces. Pure functions.
// The grammar and what each field means: docs/state-format.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kv {

// A user key's stored value: the index of the entry that last wrote it, its expiry time
// (0: none; ms since the Unix epoch) and the value. `value` views the decoded input.
struct Record {
  std::uint64_t index = 0;
  std::uint64_t expire_at_ms = 0;
  std::string_view value;
};
std::string EncodeRecord(std::uint64_t index, std::uint64_t expire_at_ms, std::string_view value);
// False on malformed input (*out unspecified).
bool DecodeRecord(std::string_view in, Record* out);

enum class EventType : std::uint8_t { kPut = 1, kDelete = 2, kExpire = 3 };
std::string_view EventTypeName(EventType t);  // "put", "delete", "expire"

// One change, as the history keeps it (the index is in its key).
struct Event {
  std::uint64_t index = 0;
  EventType type = EventType::kPut;
  std::string key;
  std::string value;  // kPut only

  bool operator==(const Event&) const = default;
};
std::string EncodeEvent(EventType type, std::string_view key, std::string_view value);
// False on malformed input. out->index is left as it was.
bool DecodeEvent(std::string_view in, Event* out);

// 'h' index:u64be: the history sorts by index.
std::string HistoryKey(std::uint64_t index);
// The index of a history key; nullopt if `k` is not one.
std::optional<std::uint64_t> HistoryIndex(std::string_view k);
// 'x' expire_at:u64be key: expiries sort by time.
std::string ExpiryKey(std::uint64_t expire_at_ms, std::string_view key);
// Splits an expiry key; false if `k` is not one.
bool ParseExpiryKey(std::string_view k, std::uint64_t* expire_at_ms, std::string* key);

}  // namespace kv
