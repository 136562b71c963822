// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the one checksum of every format:
// frame headers and payloads (docs/wire-protocol.md, section 3), log records, hard state
// and snapshot files (docs/storage-format.md). Pure and thread-safe. On x86-64 CPUs with
// SSE4.2 the crc32 instruction computes it (chosen once at run time); elsewhere a
// portable slicing-by-8 loop. Both give the same result (tests/base/crc32c_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace raft::base {

// Returns the CRC32C of the concatenation of the bytes `crc` was computed over and
// data[0, n). Start with crc = 0: Crc32cExtend(Crc32cExtend(0, a), b) == Crc32c(a + b).
std::uint32_t Crc32cExtend(std::uint32_t crc, const void* data, std::size_t n);

// The CRC32C of a + b from crc1 = CRC32C(a), crc2 = CRC32C(b) and the length of b,
// without b's bytes (zlib's crc32_combine method: the operator "append len2 zero bytes"
// as a 32x32 matrix over GF(2), raised by repeated squaring; O(log len2)). For a body
// whose parts' CRCs are known already, such as the immutable files of a linked snapshot.
std::uint32_t Crc32cCombine(std::uint32_t crc1, std::uint32_t crc2, std::uint64_t len2);

// The portable path of Crc32cExtend, always in software (for tests and comparisons).
std::uint32_t Crc32cExtendPortable(std::uint32_t crc, const void* data, std::size_t n);
// Whether Crc32cExtend uses the CPU's crc32 instruction on this machine.
bool Crc32cHardware();

// CRC32C of `data`. Crc32c("123456789") == 0xE3069283 (RFC 3720, B.4).
inline std::uint32_t Crc32c(std::string_view data) {
  return Crc32cExtend(0, data.data(), data.size());
}

// The on-disk formats store a masked CRC next to the data it covers, so that the CRC of
// bytes that themselves contain CRCs stays well distributed (LevelDB's reasoning). The
// wire format stores plain CRCs.
inline constexpr std::uint32_t kCrcMaskDelta = 0xa282ead8u;
inline std::uint32_t MaskCrc(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + kCrcMaskDelta;
}
inline std::uint32_t UnmaskCrc(std::uint32_t masked) {
  std::uint32_t rot = masked - kCrcMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace raft::base
