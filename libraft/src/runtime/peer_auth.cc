#include "runtime/peer_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "wire/handshake.h"
#include "wire/wire_format.h"

namespace raft::runtime {

Result<std::string> MakeHandshakeNonce() {
  std::string nonce(wire::kNonceBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), static_cast<int>(nonce.size())) !=
      1) {
    return Status(ErrorCode::kIOError, "handshake: OpenSSL RAND_bytes failed to make a nonce");
  }
  return nonce;
}

Result<std::string> HandshakeProof(std::string_view secret, std::string_view role,
                                   std::string_view hello, std::uint8_t version, NodeId listener,
                                   std::string_view listener_nonce) {
  if (secret.empty()) {
    return Status(ErrorCode::kInvalidArgument, "handshake: no proof without a cluster secret");
  }
  auto transcript = wire::HandshakeTranscript(role, hello, version, listener, listener_nonce);
  if (!transcript.ok()) return transcript.status();
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(transcript->data()), transcript->size(), mac,
           &mac_len) == nullptr ||
      mac_len != wire::kProofBytes) {
    return Status(ErrorCode::kIOError, "handshake: OpenSSL HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

bool ProofEquals(std::string_view a, std::string_view b) {
  // Lengths are public (a proof is kProofBytes or nothing); the contents are compared in
  // constant time.
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace raft::runtime
