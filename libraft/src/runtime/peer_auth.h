// The cryptography of the version-2 peer handshake (docs/wire-protocol.md, section 4.1),
// with OpenSSL's libcrypto: fresh nonces, HMAC-SHA256 proofs over the handshake
// transcript, and their constant-time comparison. The transcript's bytes are the wire
// layer's (wire::HandshakeTranscript). Thread-safe (OpenSSL 3 initialises itself).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "raft/status.h"
#include "raft/types.h"

namespace raft::runtime {

// wire::kNonceBytes bytes from OpenSSL's RAND_bytes. kIOError when the generator fails
// (then no handshake may proceed: a predictable nonce would allow replays).
Result<std::string> MakeHandshakeNonce();

// HMAC-SHA256(secret, transcript(role)): the wire::kProofBytes proof of `role`
// (wire::kRoleDialer or wire::kRoleListener). `secret` must not be empty (without a
// secret nothing is proved). kInvalidArgument when an input breaks the transcript's
// limits; kIOError if OpenSSL fails.
Result<std::string> HandshakeProof(std::string_view secret, std::string_view role,
                                   std::string_view hello, std::uint8_t version, NodeId listener,
                                   std::string_view listener_nonce);

// True when the two are equal; the time taken does not depend on where they differ
// (CRYPTO_memcmp). Different lengths are unequal.
bool ProofEquals(std::string_view a, std::string_view b);

}  // namespace raft::runtime
