// Little-endian fixed-width encoding primitives of docs/wire-protocol.md, section 2.
//
// ByteWriter appends to a caller-owned string and cannot fail: callers check limits first.
// ByteReader reads from a borrowed buffer, is bounds-checked, and never reads past its
// end. Its first error is sticky: after a failure every read returns 0 or empty and
// Finish() reports that first error, so a decoder can read all fields and check once.
// Neither is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "raft/status.h"

namespace raft::wire {

class ByteWriter {
 public:
  // `out` is borrowed and must outlive the writer; bytes are appended to it.
  explicit ByteWriter(std::string* out) : out_(out) {}

  void U8(std::uint8_t v);
  void U16(std::uint16_t v);
  void U32(std::uint32_t v);
  void U64(std::uint64_t v);
  // bytes := len:u32 byte[len]. Requires data.size() <= UINT32_MAX (checked by callers).
  void Bytes(std::string_view data);
  // The bytes alone, without a length.
  void Raw(std::string_view data);

 private:
  std::string* out_;
};

class ByteReader {
 public:
  // `in` is borrowed and must outlive the reader. `grammar` names the production being
  // decoded ("raft_message") in error messages; it and every `field` argument below
  // must be string literals (they are stored, not copied).
  ByteReader(std::string_view in, const char* grammar) : in_(in), grammar_(grammar) {}

  std::uint8_t U8(const char* field);
  std::uint16_t U16(const char* field);
  std::uint32_t U32(const char* field);
  std::uint64_t U64(const char* field);

  // bytes(max_len): fails if the length exceeds max_len or the bytes remaining. The
  // string is allocated only after both checks.
  std::string Bytes(const char* field, std::uint32_t max_len);

  // A u32 count of items that follow, each at least item_bytes_min long: fails if
  // count > max or the remaining input cannot hold `count` items. A caller may thus
  // reserve `count` items without allocating more than the input can justify.
  std::uint32_t Count(const char* field, std::uint32_t max, std::size_t item_bytes_min);

  // Records a grammar error (an unknown enum value, a reserved bit...) unless an earlier
  // error is already recorded. Produces kCorruption "wire: <grammar>: <message>".
  void Fail(const std::string& message);

  bool ok() const { return status_.ok(); }
  std::size_t offset() const { return pos_; }
  std::size_t remaining() const { return in_.size() - pos_; }

  // Ok iff every read succeeded and the input was consumed exactly (trailing bytes are
  // kCorruption). Otherwise the first error.
  Status Finish();

 private:
  // True if n more bytes are available; otherwise records a truncation error.
  bool Need(const char* field, std::size_t n);

  std::string_view in_;
  std::size_t pos_ = 0;  // invariant: pos_ <= in_.size()
  const char* grammar_;
  Status status_;
};

}  // namespace raft::wire
