// Helpers shared by the wire tests: sample and random values of every payload type,
// hand-built frame headers, and a probe of the largest heap allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "raft/message.h"
#include "wire/payload.h"

namespace raft::wire::testing {

// Every byte value, NULs included.
std::string BinaryBytes(std::size_t n, std::uint8_t seed = 0);

// A message with every field set to a distinct non-zero value.
Message FullMessage();

// Random values drawn from `rng`; integers favour the edges (0, 1, max).
std::uint64_t EdgyU64(std::mt19937_64& rng);
std::string RandomBytes(std::mt19937_64& rng, std::size_t max_len);
Message RandomMessage(std::mt19937_64& rng);
Payload RandomPayload(std::mt19937_64& rng);

// A frame header with explicit field values and a correct header CRC (unless
// header_crc_delta != 0, which is added to it), for frames the encoder refuses to make.
std::string RawHeader(std::uint8_t version, std::uint8_t type, std::uint16_t flags,
                      std::uint32_t payload_len, std::uint32_t payload_crc,
                      std::uint32_t header_crc_delta = 0);

// Encodes `p` into a frame; fails the test on error.
std::string MustEncodeFrame(const Payload& p);

// While alive, records the size of the largest operator new request (this thread's
// allocations; the tests are single-threaded). Probes do not nest.
class AllocationProbe {
 public:
  AllocationProbe();
  ~AllocationProbe();
  AllocationProbe(const AllocationProbe&) = delete;
  AllocationProbe& operator=(const AllocationProbe&) = delete;
  std::size_t largest() const;
};

}  // namespace raft::wire::testing
