// CRC32C (Castagnoli, reflected polynomial 0x82F63B78) in software, plus the LevelDB
// style mask used on disk (docs/storage-format.md). Pure and thread-safe.
// Duplicate of wire/crc32c.h so that raft_storage links alone; to be deduplicated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace raft::storage {

// CRC32C of the concatenation of the bytes `crc` covers and data[0, n). Start with 0.
std::uint32_t Crc32cExtend(std::uint32_t crc, const void* data, std::size_t n);

// Crc32c("123456789") == 0xE3069283 (RFC 3720, B.4).
inline std::uint32_t Crc32c(std::string_view data) {
  return Crc32cExtend(0, data.data(), data.size());
}

constexpr std::uint32_t kCrcMaskDelta = 0xa282ead8u;

// Masked form stored on disk: the CRC of bytes that contain a CRC, or of zeros, is then
// unlikely to match by accident.
inline std::uint32_t MaskCrc(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + kCrcMaskDelta;
}
inline std::uint32_t UnmaskCrc(std::uint32_t masked) {
  std::uint32_t rot = masked - kCrcMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace raft::storage
