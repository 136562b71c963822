// Authentication and authorization on kvserver's HTTP port against real processes (issue
// 14, docs/operations.md "Authentication"): a 3-node cluster with -auth-file,
// -peer-secret-file and -join-token-file, whose nodes joined with the join token. Every
// route is tried with no token (401), a wrong one (401), the read, readwrite and admin
// tokens (403 below the route's role), and the exempt routes without one; a write through a
// follower is forwarded with the client's token; a join with a read token or none is
// refused; browser requests (Origin), foreign Host names and non-JSON control bodies are
// refused; -metrics-auth; kvctl with -token-file and KVCTL_TOKEN, and its refused -token;
// the removed -cluster-token flag; the startup warnings beyond loopback.
//
//   build/tests/kvserver/process_auth_test
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "process_harness.h"

namespace kvtest {
namespace {

namespace fs = std::filesystem;

const std::string kRead = "read-token-4f1c2a9e0b7d";
const std::string kWrite = "write-token-9a8b7c6d5e4f";
const std::string kAdmin = "admin-token-1a2b3c4d5e6f";
const std::string kJoin = "join-token-0f9e8d7c6b5a";

std::string WriteSecret(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  return path.string();
}

std::string Json(const nlohmann::json& j) { return j.dump(); }

using KvctlRun = CommandRun;  // output: stdout and stderr

KvctlRun RunKvctl(const std::string& env, const std::string& args) {
  std::string cmd = env;
  cmd.append(" ").append(KVCTL_BIN).append(" -timeout-ms 5000 ").append(args).append(" 2>&1");
  return RunCommand(cmd);
}

// One request and the status it must get, with each token.
struct RouteCase {
  std::string method, target, body, content_type;
  int none, read, write, admin;  // expected statuses (0: anything but 401 and 403)
};

}  // namespace

TEST_CASE("auth: every route with no, read, readwrite and admin tokens; joins; CSRF", "[auth]") {
  ProcessCluster probe;  // only for its directory, to hold the secrets before the cluster
  const fs::path dir = probe.root();
  const std::string auth_file =
      WriteSecret(dir / "auth", fmt::format("# test roles\n{} read\n{} readwrite\n{} admin\n{} "
                                            "admin\n",
                                            kRead, kWrite, kAdmin, kJoin));
  const std::string peer_file = WriteSecret(dir / "peer", "peer-secret-shared\n");
  const std::string join_file = WriteSecret(dir / "join", kJoin + "\n");
  const std::string read_file = WriteSecret(dir / "read", kRead + "\n");

  ProcessCluster cluster({.extra_args = {"-auth-file", auth_file, "-peer-secret-file", peer_file,
                                         "-join-token-file", join_file}});
  cluster.set_token(kAdmin);
  cluster.Start(3);  // node1 and node2 joined through node0 with the join token
  std::size_t leader = cluster.WaitLeader();
  std::size_t follower = cluster.Follower(leader);
  const std::string faddr = cluster.node(follower).http_addr();
  KvClient none(faddr), read(faddr, 10s, std::nullopt, kRead),
      write(faddr, 10s, std::nullopt, kWrite), admin(faddr, 10s, std::nullopt, kAdmin),
      wrong(faddr, 10s, std::nullopt, kAdmin + "x");
  PutOk(admin, "k", "v0");

  const std::string leave_nobody = Json({{"id", "nobody"}});
  const std::string join_bad =
      Json({{"id", "bad id"}, {"raft_addr", "127.0.0.1:1"}, {"http_addr", "127.0.0.1:2"}});
  const std::vector<RouteCase> cases = {
      {"GET", "/kv/k", "", "", 401, 200, 200, 200},
      {"GET", "/kv/k?consistency=stale", "", "", 401, 200, 200, 200},
      {"GET", "/kv?prefix=", "", "", 401, 200, 200, 200},
      {"GET", "/status", "", "", 401, 200, 200, 200},
      {"PUT", "/kv/k", "v1", "application/octet-stream", 401, 403, 200, 200},
      {"PUT", "/kv/k?prev_value=v1", "v2", "application/octet-stream", 401, 403, 0, 0},
      {"PUT", "/kv/new?prev_exist=false", "x", "application/octet-stream", 401, 403, 0, 0},
      {"DELETE", "/kv/gone", "", "", 401, 403, 200, 200},
      {"POST", "/kv/k", "", "", 401, 403, 405, 405},
      {"POST", "/leave", leave_nobody, "application/json", 401, 403, 403, 404},
      {"POST", "/transfer-leader", leave_nobody, "application/json", 401, 403, 403, 0},
      {"POST", "/join", join_bad, "application/json", 401, 403, 403, 400},
      {"GET", "/no-such-route", "", "", 401, 403, 403, 404},
      // Exempt: no credential needed (/livez and /readyz may not exist yet: 404).
      {"GET", "/health", "", "", 200, 200, 200, 200},
      {"GET", "/metrics", "", "", 200, 200, 200, 200},
      {"GET", "/livez", "", "", 0, 0, 0, 0},
      {"GET", "/readyz", "", "", 0, 0, 0, 0},
  };
  for (const RouteCase& c : cases) {
    const std::pair<const KvClient*, int> clients[] = {
        {&none, c.none}, {&read, c.read}, {&write, c.write}, {&admin, c.admin}};
    const char* names[] = {"no token", "read", "readwrite", "admin"};
    for (std::size_t i = 0; i < 4; ++i) {
      HttpReply r = clients[i].first->Request(c.method, c.target, c.body, c.content_type);
      INFO(c.method << " " << c.target << " with " << names[i] << ": " << r.Describe());
      if (clients[i].second == 0) {
        CHECK(r.status != 0);
        CHECK(r.status != 401);
        CHECK(r.status != 403);
      } else {
        CHECK(r.status == clients[i].second);
      }
      if (r.status == 401) CHECK(r.www_authenticate == R"(Bearer realm="kvserver")");
    }
    if (c.none == 401) {
      HttpReply r = wrong.Request(c.method, c.target, c.body, c.content_type);
      INFO(c.method << " " << c.target << " with a wrong token: " << r.Describe());
      CHECK(r.status == 401);
      CHECK(r.www_authenticate == R"(Bearer realm="kvserver", error="invalid_token")");
    }
  }
  // The writes above went through a follower: forwarded to the leader with the token.
  RequireValue(cluster.node(leader).Client(), "k", "v2");
  // The leader authorizes a forwarded request again: a forged forward without a token
  // straight to the leader is refused.
  HttpReply forged =
      KvClient(cluster.node(leader).http_addr())
          .Request("PUT", "/kv/k", "evil", "application/octet-stream", {{"X-Kv-Forwarded", "1"}});
  INFO("forged forward: " << forged.Describe());
  CHECK(forged.status == 401);

  // /join checks (join_check.h): a name that is a member at other addresses.
  HttpReply dup = admin.Join(cluster.node(leader).id(), "127.0.0.1:1", "127.0.0.1:2");
  INFO("duplicate join: " << dup.Describe());
  CHECK(dup.status == 409);

  // CSRF and DNS rebinding (F-10), with an admin token: refused before any route runs.
  HttpReply r = admin.Request("POST", "/leave", leave_nobody, "application/json",
                              {{"Origin", "http://evil.example"}});
  INFO("Origin: " << r.Describe());
  CHECK(r.status == 403);
  r = admin.Request("GET", "/status", "", "", {{"Origin", "null"}});
  CHECK(r.status == 403);
  r = admin.Request("POST", "/leave", leave_nobody, "text/plain");
  INFO("text/plain: " << r.Describe());
  CHECK(r.status == 415);
  r = admin.Request("POST", "/leave", leave_nobody, "");
  CHECK(r.status == 415);
  r = admin.Request("GET", "/kv/k", "", "", {{"Host", "rebound.evil.example:3000"}});
  INFO("foreign Host: " << r.Describe());
  CHECK(r.status == 403);
  r = admin.Request("GET", "/kv/k", "", "", {{"Host", "localhost:1"}});
  CHECK(r.status == 200);

  // Joins: a node presenting a read token, and one presenting none, are not admitted.
  NodeProcess& reader = cluster.AddNode({"-join-token-file", read_file});
  reader.Start(cluster.node(leader).http_addr());
  NodeProcess& anon = cluster.AddNode();
  anon.mutable_spec().extra_args = {"-auth-file", auth_file, "-peer-secret-file", peer_file};
  anon.Start(cluster.node(leader).http_addr());
  for (NodeProcess* n : {&reader, &anon}) {  // a refused join shuts the node down
    auto code = n->WaitExit(20s);
    INFO(n->id() << " log:\n" << n->LogTail(15));
    REQUIRE(code.has_value());
  }
  CHECK(std::regex_search(reader.Log(), std::regex("join refused \\(403\\)")));
  CHECK(std::regex_search(anon.Log(), std::regex("join refused \\(401\\)")));
  CHECK(Members(cluster.node(leader).StatusJson()).size() == 3);

  // kvctl: -token-file or KVCTL_TOKEN; never -token; without a token, 401.
  const std::string addr_arg = fmt::format("-addr {}", faddr);
  KvctlRun k = RunKvctl("", fmt::format("{} -token-file {} put kc v", addr_arg, join_file));
  INFO(k.output);
  CHECK(k.exit_code == 0);
  k = RunKvctl(std::string("KVCTL_TOKEN=") + kRead, addr_arg + " get kc");
  INFO(k.output);
  CHECK(k.exit_code == 0);
  CHECK(k.output == "v\n");
  k = RunKvctl(std::string("KVCTL_TOKEN=") + kRead, addr_arg + " del kc");
  CHECK(k.exit_code == 1);
  CHECK(k.output.find("403") != std::string::npos);
  k = RunKvctl("", addr_arg + " get kc");
  CHECK(k.exit_code == 1);
  CHECK(k.output.find("401") != std::string::npos);
  k = RunKvctl("", addr_arg + " -token " + kAdmin + " get kc");
  CHECK(k.exit_code == 2);
  CHECK(k.output.find("-token-file") != std::string::npos);

  // -metrics-auth: /metrics needs the read role; /health stays open.
  NodeProcess& f = cluster.node(follower);
  REQUIRE(f.Terminate() == 0);
  f.Start(std::nullopt, {"-metrics-auth"});
  f.WaitServing();
  CHECK(none.Metrics().status == 401);
  CHECK(read.Metrics().status == 200);
  CHECK(none.Health().status != 401);

  // Beyond loopback without TLS, authentication or a peer secret: one warning each at start
  // (a one-node cluster of its own: no -join).
  NodeProcess& open = cluster.AddNode();
  open.mutable_spec().extra_args.clear();
  open.mutable_spec().token.clear();
  open.Start(std::nullopt, {"-laddr", fmt::format("0.0.0.0:{}", open.http_port()), "-raddr",
                            fmt::format("0.0.0.0:{}", open.raft_port())});
  open.WaitServing();
  for (const char* warning :
       {"beyond loopback without TLS", "beyond loopback without authentication",
        "beyond loopback without a peer secret"}) {
    INFO(warning << "\n" << open.LogTail(20));
    CHECK(open.Log().find(warning) != std::string::npos);
  }
  // On loopback, none of them.
  CHECK(cluster.node(leader).Log().find("beyond loopback") == std::string::npos);

  // The shared -cluster-token is gone: a clear startup error naming the replacements.
  NodeProcess& old = cluster.AddNode({"-cluster-token", "s3cret"});
  old.Start();
  auto code = old.WaitExit(10s);
  INFO(old.LogTail(10));
  REQUIRE(code.has_value());
  CHECK(*code == 2);
  CHECK(old.Log().find("-peer-secret-file") != std::string::npos);
}

}  // namespace kvtest
