// KV commands: the payload of the Raft log entries kvserver proposes, and the result the
// state machine hands back to the proposer. Pure functions; no I/O, no allocation beyond
// the returned values.
//
// Grammar (all integers little-endian; bytes32 := len:u32 byte[len]):
//
//   command  := version:u8(=1) op:u8 body
//   body     := put | delete | cas | set     (chosen by op; nothing may follow)
//   put      := key:bytes32 value:bytes32    (op = 1)
//   delete   := key:bytes32                  (op = 2)
//   cas      := key:bytes32 value:bytes32 expected      (op = 3)
//   set      := key:bytes32 value:bytes32    (op = 4: a put whose result carries no prev,
//                                             so applying it reads nothing)
//   expected := 0x00                         ("only if absent")
//             | 0x01 prev:bytes32            ("only if the current value is prev")
//
//   result   := version:u8(=1) flags:u8 index:u64 [prev:bytes32] [error:bytes32]
//   flags    := bit 0 ok, bit 1 prev present, bit 2 error present; other bits are 0
//
// The decoders are strict: an unknown version or op, a length running past the end,
// a flag outside its set, or any trailing byte fails the decode. A new field takes a new
// version, a new op a new op code; an old decoder refuses either rather than misreading
// it. Every node of a cluster must therefore know every op its leader proposes: op 4
// (set) is new in this version, and a node that predates it applies a set as a no-op
// (an "unknown op" error result), so a cluster is upgraded whole (docs/operations.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kv {

inline constexpr std::uint8_t kCommandVersion = 1;
inline constexpr std::uint8_t kResultVersion = 1;

// kSet is what a plain PUT proposes: the same write as kPut, but the result carries no
// previous value, so the apply thread of every replica skips a RocksDB read per write
// (12% of all CPU under writes at 64 connections: docs/performance.md, finding 13).
// kPut is what PUT ?prev_kv=true proposes.
enum class Op : std::uint8_t { kPut = 1, kDelete = 2, kCas = 3, kSet = 4 };

struct Command {
  Op op = Op::kPut;
  std::string key;
  std::string value;  // kPut, kSet, kCas: the new value; unused (encoded as nothing) for kDelete
  // kCas only: the value the key must hold for the swap; nullopt means "only if absent".
  std::optional<std::string> expected;

  bool operator==(const Command&) const = default;
};

// Encodes only the fields `c.op` uses: for kDelete `value` and `expected` are dropped,
// for kPut `expected` is dropped (the decoder then leaves them empty / nullopt).
std::string EncodeCommand(const Command& c);
// False on any malformed input (see the grammar); *out is unspecified then.
bool DecodeCommand(std::string_view data, Command* out);

// What applying one command did.
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

  bool operator==(const CommandResult&) const = default;
};

std::string EncodeResult(const CommandResult& r);
// False on any malformed input; *out is unspecified then.
bool DecodeResult(std::string_view data, CommandResult* out);

}  // namespace kv
