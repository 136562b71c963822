// What kvbench sends: keys, values and the HTTP request for one operation against either
// kvserver (docs/http-api.md) or etcd's v3 JSON gateway. Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kvbench {

enum class Target { kKvserver, kEtcd };
enum class OpKind { kRead, kWrite };

// The name of key number `index`: "k" and 8 zero-padded digits ("k00000042"), written
// into `out` (cleared first). `spread`: the name starts with one more byte, 0x21 +
// index % 94 (printable ASCII but space), so that the keys spread over the ranges of a
// kvserver started with -shards (split by first byte; docs/multi-raft.md).
void KeyName(uint64_t index, std::string& out, bool spread = false);

// Fills `value` (value_bytes long) with printable bytes; the first 8 bytes carry `stamp`
// in hex so successive writes of a key differ.
void StampValue(uint64_t stamp, std::string& value);

// Appends the request for one operation to `out`:
//   kvserver  write: PUT /kv/{key} body=value      read: GET /kv/{key} (linearizable)
//   etcd      write: POST /v3/kv/put {"key","value"} (base64)
//             read:  POST /v3/kv/range {"key"} (linearizable: serializable defaults false)
// `scratch` is reused for the etcd JSON body.
void AppendOp(std::string& out, std::string& scratch, Target target, OpKind op,
              std::string_view host, std::string_view key, std::string_view value);

}  // namespace kvbench
