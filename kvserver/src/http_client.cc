// HTTP(S) client helpers (see http_client.h).
#include "http_client.h"

#include <httplib.h>

#include <fstream>

#include "flags.h"

namespace kv {
namespace {

raft::Status Invalid(std::string msg) {
  return raft::Status(raft::ErrorCode::kInvalidArgument, std::move(msg));
}

// An empty string when `path` can be opened for reading, else why not.
std::string Unreadable(const std::string& path) {
  std::ifstream f(path);
  if (f) return "";
  std::string msg = "cannot read ";
  msg.append(path);
  return msg;
}

}  // namespace

std::string HttpAddr::ToString() const {
  std::string out = https ? "https://" : "http://";
  out.append(host).append(":").append(std::to_string(port));
  return out;
}

raft::Result<HttpAddr> ParseHttpAddr(std::string_view addr, bool default_https,
                                     std::string_view what) {
  HttpAddr out;
  out.https = default_https;
  std::string_view rest = addr;
  if (rest.substr(0, 8) == "https://") {
    out.https = true;
    rest.remove_prefix(8);
  } else if (rest.substr(0, 7) == "http://") {
    out.https = false;
    rest.remove_prefix(7);
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string hostport(rest);
  std::string msg(what);
  if (hostport.find('/') != std::string::npos || !SplitHostPort(hostport, &out.host, &out.port))
    return Invalid(msg.append(" must be host:port, http://host:port or https://host:port, not '")
                       .append(addr)
                       .append("'"));
  return out;
}

raft::Result<std::unique_ptr<httplib::Client>> MakeHttpClient(const HttpAddr& addr,
                                                              const HttpClientTls& tls) {
  if (!addr.https) return std::make_unique<httplib::Client>(addr.host, addr.port);
  if (tls.cert_file.empty() != tls.key_file.empty())
    return Invalid("a client certificate needs both its certificate and its key file");
  for (const std::string* f : {&tls.ca_file, &tls.cert_file, &tls.key_file})
    if (!f->empty())
      if (std::string why = Unreadable(*f); !why.empty()) return Invalid(why);
  auto cli = std::make_unique<httplib::Client>(addr.ToString(), tls.cert_file, tls.key_file);
  if (!cli->is_valid())
    return Invalid(std::string("cannot load the client certificate ")
                       .append(tls.cert_file)
                       .append(" with key ")
                       .append(tls.key_file));
  if (!tls.ca_file.empty()) cli->set_ca_cert_path(tls.ca_file);
  cli->enable_server_certificate_verification(true);
  return cli;
}

}  // namespace kv
