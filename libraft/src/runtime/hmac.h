// SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104), for the handshake's proof of the
// cluster secret. libraft links no crypto library; this is the one primitive it needs.
#pragma once

#include <string>
#include <string_view>

namespace raft::runtime {

std::string Sha256(std::string_view data);                               // 32 raw bytes
std::string HmacSha256(std::string_view key, std::string_view message);  // 32 raw bytes
// Compares in time independent of where the inputs differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace raft::runtime
