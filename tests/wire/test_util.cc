#include "test_util.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <limits>
#include <new>

#include "base/crc32c.h"
#include "raft/coding.h"

namespace {
bool g_probe_active = false;
std::size_t g_largest_allocation = 0;
}  // namespace

// GCC (-O2, inlined container code) flags free() on memory from this file's own
// operator new as a mismatch; with every allocation function replaced it is not one.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// Global replacement of the (non-aligned) allocation functions, to observe request
// sizes. All of them are replaced, so that news and deletes always pair up (ASan checks).
namespace {
void* Allocate(std::size_t n) noexcept {
  if (g_probe_active && n > g_largest_allocation) g_largest_allocation = n;
  return std::malloc(n == 0 ? 1 : n);
}
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = Allocate(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = Allocate(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return Allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return Allocate(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace raft::wire::testing {

using base::Crc32c;
using raft::ByteWriter;

AllocationProbe::AllocationProbe() {
  REQUIRE(!g_probe_active);
  g_largest_allocation = 0;
  g_probe_active = true;
}
AllocationProbe::~AllocationProbe() { g_probe_active = false; }
std::size_t AllocationProbe::largest() const { return g_largest_allocation; }

std::string BinaryBytes(std::size_t n, std::uint8_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i + seed) & 0xff);
  return s;
}

Message FullMessage() {
  Message m;
  m.type = MessageType::kAppend;
  m.from = 1;
  m.to = 2;
  m.term = 3;
  m.log_term = 4;
  m.index = 5;
  m.commit = 6;
  m.reject = true;
  m.reject_hint = 7;
  m.campaign_transfer = true;
  m.read_seq = 8;
  m.entries = {Entry{3, 6, EntryType::kNormal, "hello"},
               Entry{3, 7, EntryType::kConfChange, BinaryBytes(300)}, Entry{3, 8, {}, ""}};
  m.snapshot.index = 9;
  m.snapshot.term = 10;
  m.snapshot.conf.voters = {1, 2, 3};
  m.snapshot.conf.learners = {4};
  m.context = std::string("ctx\0ctx", 7);
  return m;
}

std::uint64_t EdgyU64(std::mt19937_64& rng) {
  switch (rng() % 6) {
    case 0:
      return 0;
    case 1:
      return 1;
    case 2:
      return std::numeric_limits<std::uint64_t>::max();
    case 3:
      return rng() % 1000;
    default:
      return rng();
  }
}

std::string RandomBytes(std::mt19937_64& rng, std::size_t max_len) {
  std::string s(rng() % (max_len + 1), '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

namespace {
std::set<NodeId> RandomIds(std::mt19937_64& rng) {
  std::set<NodeId> ids;
  const std::size_t n = rng() % 6;
  for (std::size_t i = 0; i < n; ++i) ids.insert(EdgyU64(rng));
  return ids;
}
}  // namespace

Message RandomMessage(std::mt19937_64& rng) {
  Message m;
  m.type = static_cast<MessageType>(1 + rng() % kMessageTypeMax);
  m.from = EdgyU64(rng);
  m.to = EdgyU64(rng);
  m.term = EdgyU64(rng);
  m.log_term = EdgyU64(rng);
  m.index = EdgyU64(rng);
  m.commit = EdgyU64(rng);
  m.reject = rng() % 2;
  m.reject_hint = EdgyU64(rng);
  m.campaign_transfer = rng() % 2;
  m.quiesce = rng() % 2;
  m.read_seq = EdgyU64(rng);
  const std::size_t n = rng() % 4 == 0 ? 0 : rng() % 8;
  for (std::size_t i = 0; i < n; ++i) {
    m.entries.push_back(Entry{EdgyU64(rng), EdgyU64(rng),
                              rng() % 2 ? EntryType::kNormal : EntryType::kConfChange,
                              RandomBytes(rng, 64)});
  }
  m.snapshot.index = EdgyU64(rng);
  m.snapshot.term = EdgyU64(rng);
  m.snapshot.conf.voters = RandomIds(rng);
  m.snapshot.conf.learners = RandomIds(rng);
  m.context = RandomBytes(rng, 16);
  return m;
}

Payload RandomPayload(std::mt19937_64& rng) {
  switch (rng() % 7) {
    case 0: {
      const auto lo = static_cast<std::uint8_t>(1 + rng() % 255);
      const auto hi = static_cast<std::uint8_t>(lo + rng() % (256 - lo));
      return Handshake{lo,
                       hi,
                       EdgyU64(rng),
                       EdgyU64(rng),
                       RandomBytes(rng, 32),
                       RandomBytes(rng, 40),
                       RandomBytes(rng, 24)};
    }
    case 1:
      return HandshakeAck{static_cast<std::uint8_t>(1 + rng() % 255), EdgyU64(rng),
                          RandomBytes(rng, 40)};
    case 2:
      return HandshakeReject{static_cast<RejectCode>(1 + rng() % kRejectCodeMax),
                             RandomBytes(rng, 60)};
    case 3:
      return RandomMessage(rng);
    case 4: {
      SnapshotChunk c{EdgyU64(rng),   EdgyU64(rng),          rng() % 1000000,
                      rng() % 2 == 0, RandomBytes(rng, 200), rng() % 2 == 0};
      return c;
    }
    case 5:
      return SnapshotChunkAck{EdgyU64(rng), EdgyU64(rng), EdgyU64(rng), rng() % 2 == 0};
    default:
      return HandshakeFinish{RandomBytes(rng, kProofBytes)};
  }
}

std::string RawHeader(std::uint8_t version, std::uint8_t type, std::uint16_t flags,
                      std::uint32_t payload_len, std::uint32_t payload_crc,
                      std::uint32_t header_crc_delta) {
  std::string h;
  ByteWriter w(&h);
  w.Raw("RAFT");
  w.U8(version);
  w.U8(type);
  w.U16(flags);
  w.U32(payload_len);
  w.U32(payload_crc);
  w.U32(Crc32c(h) + header_crc_delta);
  return h;
}

std::string MustEncodeFrame(const Payload& p) {
  Result<std::string> r = EncodePayloadFrame(p);
  INFO((r.ok() ? std::string() : r.status().message()));
  REQUIRE(r.ok());
  return *r;
}

}  // namespace raft::wire::testing
