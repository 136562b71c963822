// CRC32C against published vectors (RFC 3720 B.4, the iSCSI test patterns) and against
// a bit-at-a-time reference on random inputs of every length and alignment.
#include "base/crc32c.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>

namespace raft::base {
namespace {

std::uint32_t NaiveCrc32c(std::string_view data) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    c ^= byte;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

TEST_CASE("crc32c matches the RFC 3720 test vectors", "[base][crc32c]") {
  CHECK(Crc32c("123456789") == 0xE3069283u);
  CHECK(Crc32c("") == 0u);
  CHECK(Crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(Crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string ascending(32, '\0');
  std::string descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  CHECK(Crc32c(ascending) == 0x46DD794Eu);
  CHECK(Crc32c(descending) == 0x113FDB5Cu);
}

TEST_CASE("crc32c (hardware where available) and slicing-by-8 agree with the bitwise definition",
          "[base][crc32c]") {
  INFO("hardware crc32: " << Crc32cHardware());
  std::mt19937_64 rng(42);
  std::string buf(300, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (std::size_t start = 0; start < 9; ++start) {
    for (std::size_t len = 0; start + len <= buf.size(); len += 1 + len / 8) {
      std::string_view v(buf.data() + start, len);
      INFO("start " << start << " len " << len);
      REQUIRE(Crc32c(v) == NaiveCrc32c(v));
      REQUIRE(Crc32cExtendPortable(0, v.data(), v.size()) == NaiveCrc32c(v));
      REQUIRE(Crc32cExtend(0x12345678u, v.data(), v.size()) ==
              Crc32cExtendPortable(0x12345678u, v.data(), v.size()));
    }
  }
}

TEST_CASE("crc32c extends across split points", "[base][crc32c]") {
  const std::string s = "The quick brown fox jumps over the lazy dog, twice over.";
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    const std::uint32_t head = Crc32cExtend(0, s.data(), cut);
    CHECK(Crc32cExtend(head, s.data() + cut, s.size() - cut) == Crc32c(s));
  }
}

TEST_CASE("Crc32cCombine gives the CRC of the concatenation", "[base][crc]") {
  std::mt19937 rng(7);
  for (std::size_t la : {0, 1, 7, 100, 4096}) {
    for (std::size_t lb : {0, 1, 3, 8, 1000, 65537}) {
      std::string a(la, '\0'), b(lb, '\0');
      for (char& c : a) c = static_cast<char>(rng());
      for (char& c : b) c = static_cast<char>(rng());
      INFO("la " << la << ", lb " << lb);
      CHECK(Crc32cCombine(Crc32c(a), Crc32c(b), lb) == Crc32c(a + b));
    }
  }
}

}  // namespace
}  // namespace raft::base
