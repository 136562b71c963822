// Authentication and authorization on the HTTP port (kvserver/src/auth.h): the -auth-file
// format, the role table for every route, the decision for a request, Host checks.
#include "auth.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

namespace kv {
namespace {

const std::string kReadTok = "read-token-0123456789";
const std::string kWriteTok = "write-token-0123456789";
const std::string kAdminTok = "admin-token-0123456789";

AuthTable Table() {
  auto t = AuthTable::Parse(std::string("# roles\n\n") + kReadTok + std::string(" read\n") +
                                kWriteTok + "  readwrite\n\t" + kAdminTok +
                                "\tadmin  \ncn:ops team admin\ncn:reader read\n",
                            "auth");
  INFO(t.status().ToString());
  REQUIRE(t.ok());
  return std::move(t).value();
}

std::string ParseError(const std::string& text) {
  auto t = AuthTable::Parse(text, "auth");
  REQUIRE_FALSE(t.ok());
  return t.status().message();
}

std::string Bearer(const std::string& t) { return std::string("Bearer ").append(t); }

}  // namespace

TEST_CASE("auth file: tokens and certificate names map to roles", "[kvserver][auth]") {
  AuthTable t = Table();
  CHECK(t.tokens() == 3);
  CHECK(t.common_names() == 2);
  CHECK(t.TokenRole(kReadTok) == Role::kRead);
  CHECK(t.TokenRole(kWriteTok) == Role::kReadWrite);
  CHECK(t.TokenRole(kAdminTok) == Role::kAdmin);
  CHECK(t.TokenRole(kAdminTok + "x") == Role::kNone);
  CHECK(t.TokenRole(kAdminTok.substr(1)) == Role::kNone);
  CHECK(t.TokenRole("") == Role::kNone);
  CHECK(t.CommonNameRole("ops team") == Role::kAdmin);  // a name with a space
  CHECK(t.CommonNameRole("reader") == Role::kRead);
  CHECK(t.CommonNameRole("Reader") == Role::kNone);
  // A token's text is no common name and the other way round.
  CHECK(t.CommonNameRole(kAdminTok) == Role::kNone);
  CHECK(t.TokenRole("cn:reader") == Role::kNone);
}

TEST_CASE("auth file: a bad line, a duplicate or no credential is an error naming the line",
          "[kvserver][auth]") {
  CHECK(ParseError("") ==
        "auth holds no credential; refusing to start without authentication "
        "(remove -auth-file to run without it)");
  CHECK(ParseError("# only a comment\n\n").find("holds no credential") != std::string::npos);
  CHECK(ParseError(kReadTok + std::string(" read\n") + kAdminTok + " root\n") ==
        "auth:2: unknown role 'root' (read, readwrite or admin)");
  CHECK(ParseError(kReadTok + "\n").find("auth:1: expected 'TOKEN ROLE'") == 0);
  CHECK(ParseError("short read\n").find("auth:1: a token must be 16 to 512") == 0);
  CHECK(ParseError(std::string(513, 'a') + " read\n").find("auth:1: a token must be") == 0);
  CHECK(ParseError("tok@n-0123456789abc read\n").find("auth:1: a token may hold only") == 0);
  CHECK(ParseError("two words-0123456789 read\n").find("auth:1: a token may hold only") == 0);
  CHECK(ParseError(std::string("\n") + kReadTok + std::string(" read\n") + kReadTok + " admin\n") ==
        "auth:3: this token is listed twice");
  CHECK(ParseError("cn:a read\ncn:a admin\n") == "auth:2: common name 'a' is listed twice");
  CHECK(ParseError("cn: read\n").find("auth:1: 'cn:' needs a certificate common name") == 0);
  // The token never appears in a message.
  CHECK(ParseError(kReadTok + " superuser\n").find(kReadTok) == std::string::npos);
  // b64token: trailing '=' is allowed, '=' inside is not.
  CHECK(AuthTable::Parse("abcdefghijklmnop== read", "a").ok());
  CHECK_FALSE(AuthTable::Parse("abcdefgh=ijklmnop read", "a").ok());
}

TEST_CASE("auth file: loading warns when group or others may read it", "[kvserver][auth]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   (std::string("kv-auth-test-") + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "auth").string();
  std::ofstream(path) << kAdminTok << " admin\n";
  ::chmod(path.c_str(), 0644);
  std::string warning;
  REQUIRE(AuthTable::Load(path, &warning).ok());
  CHECK(warning.find("chmod 600") != std::string::npos);
  ::chmod(path.c_str(), 0600);
  warning.clear();
  REQUIRE(AuthTable::Load(path, &warning).ok());
  CHECK(warning.empty());
  CHECK(AuthTable::Load((dir / "missing").string()).status().message().find("cannot read") == 0);

  std::ofstream(path) << " \n\t\n";
  auto empty = ReadSecretFile(path, "-peer-secret-file");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.status().message().find(std::string("-peer-secret-file ") + path + " is empty") == 0);
  std::ofstream(path) << "  s3cret\n";
  CHECK(ReadSecretFile(path, "-join-token-file").value() == "s3cret");
  std::filesystem::remove_all(dir);
}

TEST_CASE("role table: the role every route and method needs", "[kvserver][auth]") {
  struct Row {
    std::string_view path, method;
    bool exempt;
    Role need;
  };
  const Row rows[] = {
      {"/health", "GET", true, Role::kNone},
      {"/livez", "GET", true, Role::kNone},
      {"/readyz", "GET", true, Role::kNone},
      {"/metrics", "GET", true, Role::kNone},
      {"/kv/a", "GET", false, Role::kRead},
      {"/kv/a", "HEAD", false, Role::kRead},
      {"/kv/a%2Fb", "PUT", false, Role::kReadWrite},
      {"/kv/a", "DELETE", false, Role::kReadWrite},
      {"/kv/a", "POST", false, Role::kReadWrite},  // then 405
      {"/kv", "GET", false, Role::kRead},
      {"/kv", "PUT", false, Role::kReadWrite},  // then 405
      {"/status", "GET", false, Role::kRead},
      {"/watch", "GET", false, Role::kRead},
      {"/status", "POST", false, Role::kAdmin},
      {"/join", "POST", false, Role::kAdmin},
      {"/leave", "POST", false, Role::kAdmin},
      {"/transfer-leader", "POST", false, Role::kAdmin},
      {"/snapshot", "GET", false, Role::kAdmin},
      {"/join", "GET", false, Role::kAdmin},
      {"/no-such-route", "GET", false, Role::kAdmin},
      {"/kvx", "GET", false, Role::kAdmin},
      {"/", "GET", false, Role::kAdmin},
  };
  for (const Row& r : rows) {
    INFO(r.method << " " << r.path);
    RouteAccess a = AccessFor(r.path, r.method, /*metrics_auth=*/false);
    CHECK(a.exempt == r.exempt);
    if (!r.exempt) CHECK(a.need == r.need);
  }
  RouteAccess m = AccessFor("/metrics", "GET", /*metrics_auth=*/true);
  CHECK_FALSE(m.exempt);
  CHECK(m.need == Role::kRead);
  CHECK(AccessFor("/health", "GET", true).exempt);
}

TEST_CASE("authorize: 401 without a usable credential, 403 below the role", "[kvserver][auth]") {
  AuthTable t = Table();
  const RouteAccess read{false, Role::kRead}, write{false, Role::kReadWrite},
      admin{false, Role::kAdmin}, exempt{true, Role::kNone};
  const std::string rt = Bearer(kReadTok), wt = Bearer(kWriteTok), at = Bearer(kAdminTok);
  auto code = [&](const RouteAccess& a, std::optional<std::string> authz,
                  std::optional<std::string> cn = std::nullopt) {
    std::optional<std::string_view> av, cv;
    if (authz) av = *authz;
    if (cn) cv = *cn;
    return Authorize(t, a, av, cv).status;
  };
  CHECK(code(exempt, std::nullopt) == 200);
  CHECK(code(exempt, "Bearer nonsense-token-xxxxxx") == 200);
  for (const RouteAccess* a : {&read, &write, &admin}) {
    CHECK(code(*a, std::nullopt) == 401);
    CHECK(code(*a, "Bearer wrong-token-0123456789") == 401);
    CHECK(code(*a, std::string("Basic ") + kAdminTok) == 401);
    CHECK(code(*a, "Bearer") == 401);
    CHECK(code(*a, std::string("Bearer ") + kAdminTok + " extra") == 401);
    CHECK(code(*a, std::nullopt, std::string("stranger")) == 401);
    CHECK(code(*a, at) == 200);
    CHECK(code(*a, std::string("bearer  ") + kAdminTok) == 200);  // scheme in any case, extra space
    CHECK(code(*a, std::nullopt, std::string("ops team")) == 200);
  }
  CHECK(code(read, rt) == 200);
  CHECK(code(write, rt) == 403);
  CHECK(code(admin, rt) == 403);
  CHECK(code(write, wt) == 200);
  CHECK(code(admin, wt) == 403);
  CHECK(code(read, std::nullopt, std::string("reader")) == 200);
  CHECK(code(write, std::nullopt, std::string("reader")) == 403);
  // A present Authorization header decides alone, even beside an admin certificate.
  CHECK(code(read, "Bearer wrong-token-0123456789", std::string("ops team")) == 401);
  CHECK(code(admin, rt, std::string("ops team")) == 403);
  AuthDecision d = Authorize(t, admin, std::string_view(wt), std::nullopt);
  CHECK(d.message == "role readwrite may not do this; it needs admin");
  CHECK(d.role == Role::kReadWrite);
}

TEST_CASE("Host header: loopback servers accept only IP literals and their own names",
          "[kvserver][auth]") {
  for (std::string_view listen : {"127.0.0.1", "localhost", "::1", "[::1]"}) {
    INFO("listening on " << listen);
    CHECK(HostAllowed("127.0.0.1:3000", listen));
    CHECK(HostAllowed("127.0.0.1", listen));
    CHECK(HostAllowed("localhost:3000", listen));
    CHECK(HostAllowed("LOCALHOST.:1", listen));
    CHECK(HostAllowed("[::1]:3000", listen));
    CHECK(HostAllowed("10.1.2.3:80", listen));
    CHECK_FALSE(HostAllowed("evil.example:3000", listen));
    CHECK_FALSE(HostAllowed("127.0.0.1.evil.example", listen));
    CHECK_FALSE(HostAllowed("", listen));
    CHECK_FALSE(HostAllowed("[::1", listen));
    CHECK_FALSE(HostAllowed("[::1]x", listen));
  }
  CHECK(HostAllowed("kv.example:3000", "0.0.0.0"));
  CHECK(HostAllowed("anything", "10.0.0.5"));
  CHECK(IsLoopbackHost("127.0.0.2"));
  CHECK(IsLoopbackHost("[::1]"));
  CHECK_FALSE(IsLoopbackHost("0.0.0.0"));
  CHECK_FALSE(IsLoopbackHost("kv.example"));
}

}  // namespace kv
