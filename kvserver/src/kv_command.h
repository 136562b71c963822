// KV commands: the payload of the Raft log entries kvserver proposes, and the result the
// state machine hands back to the proposer. Pure functions; no I/O, no allocation beyond
// the returned values.
//
// Grammar: docs/state-format.md, "Commands" (all integers little-endian;
// bytes32 := len:u32 byte[len]). Version 1:
//
//   command  := version:u8 op:u8 body
//   body     := put | delete | cas | set     (chosen by op; nothing may follow)
//   put      := key:bytes32 value:bytes32    (op = 1)
//   delete   := key:bytes32                  (op = 2)
//   cas      := key:bytes32 value:bytes32 expected      (op = 3)
//   set      := key:bytes32 value:bytes32    (op = 4: a put whose result carries no prev,
//                                             so applying it reads nothing)
//   expected := 0x00                         ("only if absent")
//             | 0x01 prev:bytes32            ("only if the current value is prev")
//
// Version 2 (TTL keys and CAS on the index): put, set and cas end with expire_at:u64
// (0: no TTL), `expected` may be 0x02 index:u64 ("only if the key's index is index"; 0:
// only if absent), op 5 is expire := key:bytes32 expire_at:u64, and op 6 is split :=
// key:bytes32 range:bytes32 new_range:u64 nvoters:u32 voter:u64* (ranges mode). EncodeCommand
// writes version 1 whenever none of these is used.
//
//   result   := version:u8(=1) flags:u8 index:u64 [prev_index:u64] [prev:bytes32]
//               [error:bytes32]
//   flags    := bit 0 ok, bit 1 prev present, bit 2 error present, bit 3 prev_index
//               present; other bits are 0 (results never leave the node that applied
//               them, so a new flag needs no new version)
//
// The decoders are strict: an unknown version or op, a length running past the end,
// a flag outside its set, or any trailing byte fails the decode. A new field takes a new
// version, a new op a new op code; an old decoder refuses either rather than misreading
// it. Every node of a cluster must therefore know every op its leader proposes: a node
// that predates a version or op applies such an entry as a no-op (a "malformed command"
// error result), so a cluster is upgraded whole (docs/operations.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kv {

inline constexpr std::uint8_t kCommandVersion = 1;
inline constexpr std::uint8_t kCommandVersion2 = 2;
inline constexpr std::uint8_t kResultVersion = 1;

// kSet is what a plain PUT proposes: the same write as kPut, but the result carries no
// previous value, so the apply thread of every replica skips a RocksDB read per write
// (12% of all CPU under writes at 64 connections: docs/performance.md, finding 13).
// kPut is what PUT ?prev_kv=true proposes.
// kExpire is what the leader proposes for a TTL key that is due (docs/state-format.md,
// "Expiries"): it removes the key only if its record still carries `expire_at_ms`.
// kSplit (ranges mode; docs/state-format.md, "Splits") splits the range at `key`: `value`
// is the encoded descriptor of the range as the proposer holds it, `new_range` the id of
// the range that takes the keys from `key` on, `voters` the processes its group starts on.
enum class Op : std::uint8_t { kPut = 1, kDelete = 2, kCas = 3, kSet = 4, kExpire = 5, kSplit = 6 };

struct Command {
  Op op = Op::kPut;
  std::string key;
  std::string value;  // kPut, kSet, kCas: the new value; unused (encoded as nothing) for kDelete
  // kCas only: the value the key must hold for the swap; nullopt means "only if absent".
  std::optional<std::string> expected;
  // kCas only, instead of `expected`: the index the key's record must carry (0: only if
  // absent).
  std::optional<std::uint64_t> expected_index = std::nullopt;
  // kPut, kSet, kCas: when the key expires (ms since the Unix epoch; 0: never).
  // kExpire: the expiry it carries out.
  std::uint64_t expire_at_ms = 0;
  std::uint64_t new_range = 0;             // kSplit only
  std::vector<std::uint64_t> voters = {};  // kSplit only: the new range's (at most 64)

  bool operator==(const Command&) const = default;
};

// Encodes only the fields `c.op` uses: for kDelete `value` and `expected` are dropped,
// for kPut `expected` is dropped (the decoder then leaves them empty / nullopt).
std::string EncodeCommand(const Command& c);
// False on any malformed input (see the grammar); *out is unspecified then.
bool DecodeCommand(std::string_view data, Command* out);

// What applying one command did.
// The error of a command whose key the range no longer owns (a split came first): the
// proposer routes it again. Results never leave the node, so this is no format.
inline constexpr std::string_view kWrongRangeError = "wrong range";

struct CommandResult {
  // kPut, kSet, kDelete: always true. kCas: true if the value was swapped. False also when
  // `error` is set.
  bool ok = true;
  // The key's value before the command (nullopt: it was absent; always nullopt for
  // kSet, which does not read it). For a failed kCas this is the current value, which
  // lets the client see why the swap was refused.
  std::optional<std::string> prev;
  // Non-empty when the entry was not a valid command and was applied as a no-op. Every
  // replica reaches the same verdict (the decoder is deterministic).
  std::string error;
  // Log index of the entry (results never reach the disk; clients see it as "index").
  std::uint64_t index = 0;
  // The index of the key's record before the command (0: absent or from before indexes
  // were kept); set whenever `prev` is read.
  std::uint64_t prev_index = 0;

  bool operator==(const CommandResult&) const = default;
};

std::string EncodeResult(const CommandResult& r);
// False on any malformed input; *out is unspecified then.
bool DecodeResult(std::string_view data, CommandResult* out);

}  // namespace kv
