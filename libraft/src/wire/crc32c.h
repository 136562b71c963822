// CRC32C (Castagnoli, reflected polynomial 0x82F63B78). Used for frame headers and
// payloads (docs/wire-protocol.md, section 3) and the storage formats. Pure and
// thread-safe. On x86-64 CPUs with SSE4.2 the crc32 instruction computes it; elsewhere a
// portable slicing-by-8 loop. Both give the same result (tests/wire/crc32c_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace raft::wire {

// Returns the CRC32C of the concatenation of the bytes `crc` was computed over and
// data[0, n). Start with crc = 0: Crc32cExtend(Crc32cExtend(0, a), b) == Crc32c(a + b).
std::uint32_t Crc32cExtend(std::uint32_t crc, const void* data, std::size_t n);

// The portable path of Crc32cExtend, always in software (for tests and comparisons).
std::uint32_t Crc32cExtendPortable(std::uint32_t crc, const void* data, std::size_t n);
// Whether Crc32cExtend uses the CPU's crc32 instruction on this machine.
bool Crc32cHardware();

// CRC32C of `data`. Crc32c("123456789") == 0xE3069283 (RFC 3720, B.4).
inline std::uint32_t Crc32c(std::string_view data) {
  return Crc32cExtend(0, data.data(), data.size());
}

}  // namespace raft::wire
