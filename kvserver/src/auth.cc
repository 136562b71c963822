// Authentication and authorization on the HTTP port (see auth.h).
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <boost/asio/ip/address.hpp>
#include <fstream>
#include <sstream>

namespace kv {
namespace {

constexpr std::size_t kTokenMin = 16;
constexpr std::size_t kTokenMax = 512;
constexpr std::string_view kCnPrefix = "cn:";

raft::Status Invalid(std::string msg) {
  return raft::Status(raft::ErrorCode::kInvalidArgument, std::move(msg));
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool AsciiIEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool IsB64Token(std::string_view t) {
  std::size_t i = 0;
  for (; i < t.size(); ++i) {
    char c = t[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
    if (!ok) break;
  }
  if (i == 0) return false;
  for (; i < t.size(); ++i)
    if (t[i] != '=') return false;
  return true;
}

std::array<unsigned char, 32> Sha256(std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  // EVP_Digest fails only when out of memory; an all-zero digest then matches no entry
  // (entries are digests of real tokens).
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1)
    out.fill(0);
  return out;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kNone:
      return "none";
    case Role::kRead:
      return "read";
    case Role::kReadWrite:
      return "readwrite";
    case Role::kAdmin:
      return "admin";
  }
  return "none";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "read") return Role::kRead;
  if (name == "readwrite") return Role::kReadWrite;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

RouteAccess AccessFor(std::string_view path, std::string_view method, bool metrics_auth) {
  if (path == "/health" || path == "/livez" || path == "/readyz") return {true, Role::kNone};
  if (path == "/metrics") return metrics_auth ? RouteAccess{false, Role::kRead} : RouteAccess{true};
  const bool read = method == "GET" || method == "HEAD";
  if (path == "/kv" || path.substr(0, 4) == "/kv/")
    return {false, read ? Role::kRead : Role::kReadWrite};
  if (read && (path == "/status" || path == "/watch")) return {false, Role::kRead};
  return {false, Role::kAdmin};
}

raft::Result<AuthTable> AuthTable::Parse(std::string_view text, std::string_view source) {
  AuthTable table;
  std::vector<std::string_view> seen_tokens;  // duplicates: compared at load, not secret
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view line = TrimView(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    std::string where(source);
    where.append(":").append(std::to_string(line_no)).append(": ");
    // The role is the last field; the credential is everything before it.
    std::size_t sep = line.size();
    while (sep > 0 && !IsSpace(line[sep - 1])) --sep;
    if (sep == 0)
      return Invalid(where +
                     "expected 'TOKEN ROLE' or 'cn:NAME ROLE' (ROLE: read, readwrite, "
                     "admin)");
    std::string_view role_name = line.substr(sep);
    std::string_view cred = TrimView(line.substr(0, sep));
    auto role = ParseRole(role_name);
    if (!role)
      return Invalid(
          where.append("unknown role '").append(role_name).append("' (read, readwrite or admin)"));
    if (cred.substr(0, kCnPrefix.size()) == kCnPrefix) {
      std::string cn(TrimView(cred.substr(kCnPrefix.size())));
      if (cn.empty()) return Invalid(where + "'cn:' needs a certificate common name");
      if (!table.cns_.emplace(cn, *role).second)
        return Invalid(where.append("common name '").append(cn).append("' is listed twice"));
      continue;
    }
    // The token itself never goes into a message.
    if (cred.size() < kTokenMin || cred.size() > kTokenMax)
      return Invalid(where + "a token must be " + std::to_string(kTokenMin) + " to " +
                     std::to_string(kTokenMax) +
                     " characters long (make one with: openssl rand -hex 32)");
    if (!IsB64Token(cred))
      return Invalid(where +
                     "a token may hold only A-Z a-z 0-9 - . _ ~ + / (and trailing '='), and no "
                     "space");
    for (std::string_view t : seen_tokens)
      if (t == cred) return Invalid(where + "this token is listed twice");
    seen_tokens.push_back(cred);
    table.tokens_.emplace_back(Sha256(cred), *role);
  }
  if (table.tokens_.empty() && table.cns_.empty())
    return Invalid(std::string(source) +
                   " holds no credential; refusing to start without authentication (remove "
                   "-auth-file to run without it)");
  return table;
}

raft::Result<AuthTable> AuthTable::Load(const std::string& path, std::string* warning) {
  std::ifstream f(path);
  if (!f) return Invalid(std::string("cannot read -auth-file ").append(path));
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Invalid(std::string("cannot read -auth-file ").append(path));
  struct stat st {};
  if (warning != nullptr && ::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
    *warning = std::string("-auth-file ")
                   .append(path)
                   .append(
                       " is readable or writable by group or others; chmod 600 it (it holds "
                       "tokens)");
  return Parse(ss.str(), path);
}

Role AuthTable::TokenRole(std::string_view token) const {
  const Digest d = Sha256(token);
  // Every entry is compared, whatever matches: no early exit.
  Role found = Role::kNone;
  for (const auto& [digest, role] : tokens_) {
    const bool eq = CRYPTO_memcmp(digest.data(), d.data(), d.size()) == 0;
    found = eq ? role : found;
  }
  return found;
}

Role AuthTable::CommonNameRole(std::string_view cn) const {
  auto it = cns_.find(cn);
  return it == cns_.end() ? Role::kNone : it->second;
}

raft::Result<std::string> ReadSecretFile(const std::string& path, std::string_view flag) {
  std::string name(flag);
  std::ifstream f(path);
  if (!f) return Invalid(std::string("cannot read ").append(name).append(" ").append(path));
  std::stringstream ss;
  ss << f.rdbuf();
  std::string secret(TrimView(ss.str()));
  // An empty file (a secret mount that failed, an empty template) must not mean "no
  // authentication" (security review F-9).
  if (secret.empty())
    return Invalid(name + " " + path + " is empty; refusing to run without the secret");
  return secret;
}

std::optional<std::string_view> BearerToken(std::string_view authorization) {
  std::string_view v = TrimView(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size() || !AsciiIEquals(v.substr(0, kScheme.size()), kScheme) ||
      !IsSpace(v[kScheme.size()]))
    return std::nullopt;
  std::string_view token = TrimView(v.substr(kScheme.size()));
  if (!IsB64Token(token)) return std::nullopt;
  return token;
}

AuthDecision Authorize(const AuthTable& table, const RouteAccess& access,
                       std::optional<std::string_view> authorization,
                       std::optional<std::string_view> client_cn) {
  AuthDecision d;
  if (access.exempt) return d;
  if (authorization) {
    auto token = BearerToken(*authorization);
    if (!token) {
      d.status = 401;
      d.message = "the Authorization header must be 'Bearer TOKEN'";
      return d;
    }
    d.role = table.TokenRole(*token);
    if (d.role == Role::kNone) {
      d.status = 401;
      d.message = "unknown bearer token";
      return d;
    }
    d.who = "token";
  } else if (client_cn) {
    d.role = table.CommonNameRole(*client_cn);
    if (d.role == Role::kNone) {
      d.status = 401;
      d.message = std::string("the client certificate's common name '")
                      .append(*client_cn)
                      .append("' has no role in -auth-file; send a bearer token");
      return d;
    }
    d.who = std::string("cn:").append(*client_cn);
  } else {
    d.status = 401;
    d.message = "authentication required (Authorization: Bearer TOKEN)";
    return d;
  }
  if (d.role < access.need) {
    d.status = 403;
    d.message = std::string("role ")
                    .append(RoleName(d.role))
                    .append(" may not do this; it needs ")
                    .append(RoleName(access.need));
  }
  return d;
}

bool IsLoopbackHost(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (AsciiIEquals(host, "localhost")) return true;
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(std::string(host), ec);
  return !ec && addr.is_loopback();
}

bool HostAllowed(std::string_view host_header, std::string_view listen_host) {
  if (!IsLoopbackHost(listen_host)) return true;
  std::string_view h = TrimView(host_header);
  // Strip the port: "[v6]:port", "name:port", or a bare IPv6 literal without brackets.
  if (!h.empty() && h.front() == '[') {
    auto close = h.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = h.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    h = h.substr(1, close - 1);
  } else if (h.find(':') == h.rfind(':') && h.find(':') != std::string_view::npos) {
    h = h.substr(0, h.find(':'));
  }
  if (h.empty()) return false;
  if (!h.empty() && h.back() == '.') h.remove_suffix(1);  // "localhost."
  if (AsciiIEquals(h, "localhost")) return true;
  std::string_view listen = listen_host;
  if (listen.size() >= 2 && listen.front() == '[' && listen.back() == ']')
    listen = listen.substr(1, listen.size() - 2);
  if (AsciiIEquals(h, listen)) return true;
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(std::string(h), ec);
  return !ec;
}

}  // namespace kv
