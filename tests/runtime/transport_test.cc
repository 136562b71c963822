// Transport-level checks that need no cluster: the handshake refuses strangers.
#include <catch2/catch.hpp>

#include "runtime/hmac.h"

namespace raft::runtime {

TEST_CASE("HMAC-SHA256 matches RFC 4231 test case 2", "[runtime][hmac]") {
  auto mac = HmacSha256("Jefe", "what do ya want for nothing?");
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : mac) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  REQUIRE(hex == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  REQUIRE(ConstantTimeEquals("abc", "abc"));
  REQUIRE_FALSE(ConstantTimeEquals("abc", "abd"));
  REQUIRE_FALSE(ConstantTimeEquals("abc", "ab"));
}

}  // namespace raft::runtime
