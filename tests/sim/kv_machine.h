// The replicated state machine of the simulation: a string -> string map driven by
// client operations encoded in normal log entries.
//
// Entry payload grammar (text, fields separated by '|'; keys and values never contain '|'):
//   op      := "K|" client "|" op_id "|" kind "|" key "|" value "|" has_expected "|" expected
//   kind    := "g" | "p" | "c" | "d"         (get, put, cas, delete)
//   marker  := "M|" anything                 (liveness probes; no effect)
//   noop    := ""                            (a leader's term-start entry; no effect)
// Snapshot bytes: "S|" then for each key in order: key.size ":" key value.size ":" value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "kv_history.h"

namespace raft::sim {

struct KvOp {
  std::uint64_t client = 0;
  std::uint64_t op_id = 0;  // unique per run (the history recorder's id + 1)
  lin::Input input;
};

std::string EncodeKvOp(const KvOp& op);
// False for payloads that are not client operations (noop, marker, garbage).
bool DecodeKvOp(const std::string& data, KvOp* out);

class KvMachine {
 public:
  // Applies `op` and returns what the client observes.
  lin::Output Apply(const lin::Input& op);
  std::optional<std::string> Get(const std::string& key) const;

  std::string Serialize() const;
  // Replaces the whole state; false on malformed bytes.
  bool Deserialize(const std::string& bytes);
  // FNV-1a of Serialize(): equal digests at one applied index on every node.
  std::uint64_t Digest() const;
  std::size_t size() const { return kv_.size(); }

 private:
  std::map<std::string, std::string> kv_;
};

}  // namespace raft::sim
