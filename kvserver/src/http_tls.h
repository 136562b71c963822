// TLS of the HTTP port: the OpenSSL contexts built from this node's PEM files (the
// server's, and the client's for calls to other nodes: forwarding), swapped on reload,
// and what a handler may learn of the client's certificate.
//
// Protocol: TLS 1.3 only (as on the Raft port): no cipher list to configure, no
// renegotiation, forward secrecy always. Clients need OpenSSL 1.1.1 or later (curl,
// cpp-httplib, Go, Python all qualify). docs/operations.md, "HTTPS".
//
// Not chosen: reloading by polling the files' mtimes (a half-written file would be picked
// up; SIGHUP says "the files are ready"), SNI with several certificates.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "raft/status.h"

namespace boost::asio::ssl {
class context;
}
struct ssl_st;

namespace kv {

struct HttpTlsFiles {
  std::string cert_file;  // PEM: the server certificate, then any intermediates
  std::string key_file;   // PEM: its private key
  // PEM: the CA that client certificates must chain to; used when client_cert_auth.
  std::string trusted_ca_file;
  bool client_cert_auth = false;  // a connection without a verified certificate is refused
};

// A server context from the files: TLS 1.3 only, the certificate chain and a key that
// matches it, and with client_cert_auth, a client certificate required and verified
// against trusted_ca_file. kInvalidArgument naming the file and OpenSSL's reason when a
// file is missing, unreadable or does not match.
raft::Result<std::shared_ptr<boost::asio::ssl::context>> MakeHttpTlsContext(
    const HttpTlsFiles& files);
// A client context from the same files, for this node's calls to other nodes' HTTPS
// ports: TLS 1.3 only, the server's certificate verified against trusted_ca_file (the
// system's CAs when empty), cert_file/key_file presented when the server asks. The host
// name is checked per connection (HttpStream::VerifyServerName).
raft::Result<std::shared_ptr<boost::asio::ssl::context>> MakeHttpTlsClientContext(
    const HttpTlsFiles& files);

// The contexts handed to new connections (server and client). Reload() builds new ones
// from the same files and swaps both in; connections already open keep the ones they
// started with (each holds a reference). Thread safety: every member may be called from
// any thread.
class HttpTlsContexts {
 public:
  static raft::Result<std::unique_ptr<HttpTlsContexts>> Load(HttpTlsFiles files);
  // Re-reads the files. On an error the current context stays in use and the error is
  // returned (the caller logs it).
  raft::Status Reload();
  std::shared_ptr<boost::asio::ssl::context> Current() const;
  std::shared_ptr<boost::asio::ssl::context> CurrentClient() const;
  const HttpTlsFiles& files() const { return files_; }

 private:
  explicit HttpTlsContexts(HttpTlsFiles files) : files_(std::move(files)) {}
  const HttpTlsFiles files_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;  // guarded by mu_; never null
  std::shared_ptr<boost::asio::ssl::context> client_;   // guarded by mu_; never null
};

// The subject common name of the peer's certificate on an established connection, when
// that certificate was verified (client_cert_auth); nullopt when there is none, it was
// not verified, it has no CN or more than one, or the CN holds a NUL byte.
std::optional<std::string> VerifiedPeerCommonName(ssl_st* ssl);

}  // namespace kv
