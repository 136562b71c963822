// CRC32C for the on-disk format: the one implementation lives in wire/crc32c.h (both
// formats use the same checksum); storage adds the LevelDB-style mask used on disk
// (docs/storage-format.md). Pure and thread-safe.
#pragma once

#include <cstdint>

#include "wire/crc32c.h"

namespace raft::storage {

using wire::Crc32c;
using wire::Crc32cExtend;

constexpr std::uint32_t kCrcMaskDelta = 0xa282ead8u;

// A CRC stored next to the data it covers is masked, so that a CRC of bytes that
// themselves contain CRCs stays well distributed (LevelDB's reasoning).
inline std::uint32_t MaskCrc(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + kCrcMaskDelta;
}
inline std::uint32_t UnmaskCrc(std::uint32_t masked) {
  std::uint32_t rot = masked - kCrcMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace raft::storage
