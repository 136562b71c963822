// raft::TlsOptions: the certificates of the Raft port, for a Node (NodeOptions::peer_tls)
// or a Host (HostOptions::peer_tls).
#pragma once

#include <string>

namespace raft {

// TLS on the Raft port (docs/runtime.md, "TLS"): TLS 1.3 only, both ends present a
// certificate and verify the other's against the trusted CA (mutual TLS); a peer without
// a certificate, or with one from another CA, is refused during the TLS handshake. The
// application handshake (cluster id, node ids, secret) then runs inside TLS. Every field
// is PEM: a file name, or the PEM text itself in the *_pem field when the file name is
// empty (for certificates that do not live in files). All three (certificate, key, CA)
// or none: Node::Start and Host::Start refuse a partial set.
struct TlsOptions {
  std::string cert_file;        // this node's certificate, then any intermediates
  std::string key_file;         // its private key (unencrypted)
  std::string trusted_ca_file;  // the CA(s) that peers' certificates must chain to
  std::string cert_pem;         // used when cert_file is empty
  std::string key_pem;          // used when key_file is empty
  std::string trusted_ca_pem;   // used when trusted_ca_file is empty
  // Any field set: TLS is on (and then all three must be given).
  bool enabled() const {
    return !cert_file.empty() || !key_file.empty() || !trusted_ca_file.empty() ||
           !cert_pem.empty() || !key_pem.empty() || !trusted_ca_pem.empty();
  }
};

}  // namespace raft
