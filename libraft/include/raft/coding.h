// Little-endian fixed-width encoding, the one codec under every format of the project
// (public: applications encode their commands and snapshots with it, as kvserver does):
// the wire protocol (docs/wire-protocol.md, section 2), the storage files and snapshot
// files (docs/storage-format.md), and the payloads above them (ConfChange, MemberInfo,
// kvserver commands). Pure; includes nothing the core's purity check bans.
//
// Two levels:
//  - EncodeFixed*/DecodeFixed* read and write at a raw pointer, for fixed layouts whose
//    size the caller has already checked (a record header, a hard-state slot).
//  - ByteWriter appends to a caller-owned string and cannot fail: callers check limits
//    first. ByteReader reads from a borrowed buffer, is bounds-checked, and never reads
//    past its end. Its first error is sticky: after a failure every read returns 0 or
//    empty and Finish() reports that first error, so a decoder can read all fields and
//    check once. Errors are kCorruption "<grammar>: ..." naming the field.
// Neither class is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "raft/export.h"
#include "raft/status.h"

namespace raft {

// Byte-by-byte, so independent of host endianness and alignment (compilers turn each
// into one load or store).
inline void EncodeFixed16(char* dst, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) dst[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void EncodeFixed32(char* dst, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void EncodeFixed64(char* dst, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline std::uint16_t DecodeFixed16(const char* p) {
  std::uint16_t v = 0;
  for (int i = 0; i < 2; ++i)
    v = static_cast<std::uint16_t>(v | std::uint16_t{static_cast<unsigned char>(p[i])} << (8 * i));
  return v;
}
inline std::uint32_t DecodeFixed32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}
inline std::uint64_t DecodeFixed64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

class RAFT_EXPORT ByteWriter {
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

class RAFT_EXPORT ByteReader {
 public:
  // `in` is borrowed and must outlive the reader. `grammar` names the production being
  // decoded ("raft_message", "snapshot_header") in error messages; it and every `field`
  // argument below must be string literals (they are stored, not copied).
  ByteReader(std::string_view in, const char* grammar) : in_(in), grammar_(grammar) {}

  std::uint8_t U8(const char* field);
  std::uint16_t U16(const char* field);
  std::uint32_t U32(const char* field);
  std::uint64_t U64(const char* field);

  // bytes(max_len): fails if the length exceeds max_len or the bytes remaining. The
  // string is allocated only after both checks.
  std::string Bytes(const char* field, std::uint32_t max_len);

  // n bytes without a length prefix; a view into the input (valid as long as it is).
  std::string_view Raw(const char* field, std::size_t n);
  // Every byte not yet read (possibly none); a view into the input. Cannot fail.
  std::string_view Rest();

  // A u32 count of items that follow, each at least item_bytes_min long: fails if
  // count > max or the remaining input cannot hold `count` items. A caller may thus
  // reserve `count` items without allocating more than the input can justify.
  std::uint32_t Count(const char* field, std::uint32_t max, std::size_t item_bytes_min);

  // Records a grammar error (an unknown enum value, a reserved bit...) unless an earlier
  // error is already recorded. Produces kCorruption "<grammar>: <message>".
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

}  // namespace raft
