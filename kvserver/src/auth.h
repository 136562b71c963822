// Authentication and authorization on kvserver's HTTP port (issue 14; security review F-6,
// F-9, F-10, F-15): the -auth-file format, the role every route needs, and the checks a
// request passes before a route handler sees it. Pure functions and one immutable table:
// no I/O but AuthTable::Load, no Beast, testable without a server.
//
// The file (docs/operations.md, "Authentication"), one credential per line:
//   # a comment; blank lines are ignored
//   TOKEN ROLE        a bearer token (Authorization: Bearer TOKEN)
//   cn:NAME ROLE      the subject common name of a verified client certificate
//                     (-client-cert-auth); NAME may contain spaces
// ROLE is read, readwrite or admin; each includes the ones before it. A token is 16 to 512
// characters of RFC 6750's b64token alphabet (A-Z a-z 0-9 - . _ ~ + / and trailing '=').
// A line that does not parse, a duplicate credential or a file with no credential is an
// error naming the line: the server refuses to start rather than run open.
//
// Thread safety: an AuthTable is immutable once loaded; any thread may read it.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raft/status.h"

namespace kv {

// Ordered: a role may do everything the ones below it may.
enum class Role : std::uint8_t { kNone = 0, kRead = 1, kReadWrite = 2, kAdmin = 3 };
std::string_view RoleName(Role role);  // "none", "read", "readwrite", "admin"
std::optional<Role> ParseRole(std::string_view name);

// What the route table says of one request.
struct RouteAccess {
  bool exempt = false;      // answered without a credential (health probes)
  Role need = Role::kNone;  // otherwise: the least role allowed
};

// THE route-to-role table (one place; docs/operations.md shows it):
//   /health, /livez, /readyz                   exempt
//   /metrics                                   exempt, or read with -metrics-auth
//   GET|HEAD /kv, /kv/{key}, /status, /watch   read
//   any other method on /kv, /kv/{key}         readwrite (PUT, DELETE, CAS; others get 405)
//   everything else                            admin (/join, /leave, /transfer-leader, /split,
//                                              snapshots, any route added later, and
//                                              unknown paths, which then get 404)
// `path` is the target's path without the query; `method` the request method's name.
RouteAccess AccessFor(std::string_view path, std::string_view method, bool metrics_auth);

// The credentials of a -auth-file. Tokens are kept as SHA-256 digests and compared in
// constant time against every entry (the time depends on neither which token matched nor
// where a wrong one differs).
class AuthTable {
 public:
  // Parses the file's text; `source` names it in errors ("FILE:LINE: ...").
  static raft::Result<AuthTable> Parse(std::string_view text, std::string_view source);
  // Reads and parses `path`. `warning` (optional) gets a message when the file is readable
  // or writable by group or others (the server logs it).
  static raft::Result<AuthTable> Load(const std::string& path, std::string* warning = nullptr);

  // The role of a bearer token; kNone when it is not in the file.
  Role TokenRole(std::string_view token) const;
  // The role of a verified client certificate's common name; kNone when not in the file.
  Role CommonNameRole(std::string_view cn) const;

  std::size_t tokens() const { return tokens_.size(); }
  std::size_t common_names() const { return cns_.size(); }

 private:
  using Digest = std::array<unsigned char, 32>;
  std::vector<std::pair<Digest, Role>> tokens_;
  std::map<std::string, Role, std::less<>> cns_;
};

// Reads a one-line secret file (-peer-secret-file, -join-token-file, kvctl -token-file):
// the content without surrounding whitespace. kInvalidArgument naming `flag` when the file
// cannot be read or holds nothing: an empty secret never means "no authentication" (F-9).
raft::Result<std::string> ReadSecretFile(const std::string& path, std::string_view flag);

// The outcome of authenticating and authorizing one request.
struct AuthDecision {
  int status = 200;         // 200 (go on), 401 or 403
  Role role = Role::kNone;  // the caller's role (200 and 403)
  std::string who;          // "token" or "cn:NAME", for logs; empty without a credential
  std::string message;      // why it was refused
};

// Decides a request: `authorization` is the Authorization header (nullopt when absent),
// `client_cn` the verified certificate's CN (nullopt without one). A present Authorization
// header decides alone (a wrong token is 401 even with a good certificate); otherwise the
// certificate's CN is looked up. No usable credential: 401; a role below `access.need`: 403.
AuthDecision Authorize(const AuthTable& table, const RouteAccess& access,
                       std::optional<std::string_view> authorization,
                       std::optional<std::string_view> client_cn);

// The token of an "Authorization: Bearer TOKEN" value (the scheme in any letter case);
// nullopt for another scheme or a malformed value.
std::optional<std::string_view> BearerToken(std::string_view authorization);

// DNS rebinding (F-10): whether a Host header value is acceptable for a server listening on
// `listen_host` (the -laddr host). A server bound to loopback accepts only an IP literal,
// "localhost" or its own -laddr host (any port): a rebinding page's requests carry the
// attacker's DNS name. Beyond loopback every Host is accepted (authentication is the
// protection there; names behind proxies vary).
bool HostAllowed(std::string_view host_header, std::string_view listen_host);
bool IsLoopbackHost(std::string_view host);

}  // namespace kv
