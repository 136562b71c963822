// The HTTP(S) client side of kvserver and kvctl (cpp-httplib): addresses with a scheme,
// and clients that carry this process's certificate and trusted CA. Used by the startup
// join (kv_server.cc) and kvctl; the follower-to-leader forwarding has its own
// asynchronous client (http_forward.h) with the same files.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "raft/status.h"

namespace httplib {
class Client;
}

namespace kv {

// "host:port", "http://host:port" or "https://host:port".
struct HttpAddr {
  bool https = false;
  std::string host;
  int port = 0;
  std::string ToString() const;  // with its scheme
};

// Parses an address; a bare host:port gets `default_https`. kInvalidArgument naming
// `what` (e.g. "-join") when malformed or when it carries a path.
raft::Result<HttpAddr> ParseHttpAddr(std::string_view addr, bool default_https,
                                     std::string_view what);

// Client-side TLS: all optional. ca_file: the CA the server's certificate must chain to
// (empty: the system's CAs); cert_file and key_file: this client's certificate, sent when
// the server asks for one (both or neither).
struct HttpClientTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// A cpp-httplib client for `addr`: HTTPS (server certificate and host name verified) or
// plain. kInvalidArgument when a file of `tls` cannot be read or the certificate and key
// do not load.
raft::Result<std::unique_ptr<httplib::Client>> MakeHttpClient(const HttpAddr& addr,
                                                              const HttpClientTls& tls);

}  // namespace kv
