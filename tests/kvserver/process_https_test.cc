// HTTPS on kvserver's HTTP port against real processes (issue 14, docs/operations.md
// "HTTPS"): a 3-node cluster that serves HTTPS with client certificates required, joins
// over https://, forwards writes from a follower to the leader over HTTPS, refuses plain
// HTTP, clients without a certificate or with one from another CA, and closes a
// connection that never handshakes; kvctl with -cacert/-cert/-key; certificate reload on
// SIGHUP. Certificates come from scripts/make-certs.sh, run into the test's directory.
//
//   build/tests/kvserver/process_https_test            # or '[sighup]'
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "process_harness.h"

namespace kvtest {
namespace {

namespace fs = std::filesystem;

// Runs scripts/make-certs.sh into `dir` (node0..node2, clients admin and writer).
void MakeCerts(const fs::path& dir) {
  std::string cmd = fmt::format("{} -d '{}' -n 'node0 node1 node2' -c 'admin writer' >/dev/null",
                                MAKE_CERTS_SH, dir.string());
  REQUIRE(std::system(cmd.c_str()) == 0);
  REQUIRE(fs::exists(dir / "ca.crt"));
}

std::string Path(const fs::path& dir, const std::string& name) { return (dir / name).string(); }

// The flags of a node serving HTTPS with `dir`'s certificate `name`.
std::vector<std::string> HttpsArgs(const fs::path& dir, const std::string& name,
                                   bool client_cert_auth) {
  std::vector<std::string> args = {"-cert-file",       Path(dir, name + ".crt"),
                                   "-key-file",        Path(dir, name + ".key"),
                                   "-trusted-ca-file", Path(dir, "ca.crt")};
  if (client_cert_auth) args.push_back("-client-cert-auth");
  return args;
}

ClientTls ClientOf(const fs::path& dir, const std::string& client) {
  return {Path(dir, "ca.crt"), Path(dir, client + ".crt"), Path(dir, client + ".key")};
}

using KvctlRun = CommandRun;  // output: stdout and stderr

KvctlRun RunKvctl(const std::string& args) {
  std::string cmd = KVCTL_BIN;
  cmd.append(" -timeout-ms 5000 ").append(args).append(" 2>&1");
  return RunCommand(cmd);
}

TEST_CASE("a 3-node HTTPS cluster with client certificates: join, forwarding, refusals",
          "[https]") {
  ProcessCluster cluster;
  const fs::path certs = cluster.root() / "certs";
  const fs::path other = cluster.root() / "other-ca";
  MakeCerts(certs);
  MakeCerts(other);
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> args = HttpsArgs(certs, fmt::format("node{}", i), true);
    args.insert(args.end(), {"-http-header-timeout-ms", "1000"});
    NodeProcess& n = cluster.AddNode(args);
    n.mutable_spec().client_tls = ClientOf(certs, "admin");
  }
  // node0 bootstraps; node1 joins with an https:// URL, node2 with a bare host:port (this
  // node's own scheme).
  cluster.node(0).Start();
  cluster.node(0).WaitServing();
  cluster.WaitLeader();
  cluster.node(1).Start(fmt::format("https://{}", cluster.node(0).http_addr()));
  cluster.node(1).WaitServing();
  cluster.WaitVoters(2);
  cluster.node(2).Start(cluster.node(0).http_addr());
  cluster.node(2).WaitServing();
  cluster.WaitVoters(3);

  std::size_t leader = cluster.WaitLeader();
  std::size_t follower = cluster.Follower(leader);
  KvClient via_follower = cluster.node(follower).Client();
  // A write through a follower is forwarded to the leader over HTTPS (with the
  // follower's certificate: the leader requires one).
  PutOk(via_follower, "k1", "v1");
  RequireValue(via_follower, "k1", "v1");
  RequireValue(cluster.node(leader).Client(), "k1", "v1");

  const std::uint16_t port = cluster.node(follower).http_port();
  const std::string addr = cluster.node(follower).http_addr();
  // Each block below runs on this cluster, in order (not Catch2 SECTIONs, which would
  // start a cluster per section).
  {  // plain HTTP to the HTTPS port: a clear 400 in clear text, then a close
    RawConnection c(port);
    REQUIRE(c.Send("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    std::string got = c.ReadUntilClose(5s);
    INFO(Printable(got));
    REQUIRE(got.find("400") != std::string::npos);
    REQUIRE(got.find("HTTPS") != std::string::npos);
    HttpReply r = KvClient(addr, 3s).Get("k1");
    REQUIRE_FALSE(r.Ok());
  }
  {  // clients without a certificate, or with one of another CA, are refused
    HttpReply none = KvClient(addr, 3s, ClientTls{Path(certs, "ca.crt"), "", ""}).Get("k1");
    INFO(none.Describe());
    REQUIRE(none.status == 0);
    HttpReply foreign = KvClient(addr, 3s,
                                 ClientTls{Path(certs, "ca.crt"), Path(other, "admin.crt"),
                                           Path(other, "admin.key")})
                            .Get("k1");
    INFO(foreign.Describe());
    REQUIRE(foreign.status == 0);
    // And a client that does not trust the cluster's CA refuses the server.
    HttpReply distrust = KvClient(addr, 3s, ClientOf(other, "admin")).Get("k1");
    REQUIRE(distrust.status == 0);
    auto metrics = cluster.node(follower).Client().Metrics();
    REQUIRE(metrics.Ok());
    REQUIRE(MetricSample(metrics.body, "kv_http_tls_handshake_failures_total") >= 3);
  }
  {  // a connection that never starts the handshake is closed at the head deadline
    RawConnection c(port);
    REQUIRE(c.ClosedByPeer(5s));
  }
  {  // kvctl with -cacert, -cert and -key
    const std::string tls = fmt::format("-cacert {} -cert {} -key {}", Path(certs, "ca.crt"),
                                        Path(certs, "writer.crt"), Path(certs, "writer.key"));
    KvctlRun put = RunKvctl(fmt::format("-addr https://{} {} put k2 v2", addr, tls));
    INFO(put.output);
    REQUIRE(put.exit_code == 0);
    // A bare address with -cacert is HTTPS too.
    KvctlRun get = RunKvctl(fmt::format("-addr {} {} get k2", addr, tls));
    INFO(get.output);
    REQUIRE(get.exit_code == 0);
    REQUIRE(get.output == "v2\n");
    KvctlRun no_cert =
        RunKvctl(fmt::format("-addr https://{} -cacert {} get k2", addr, Path(certs, "ca.crt")));
    REQUIRE(no_cert.exit_code != 0);
    KvctlRun bad_file = RunKvctl(
        fmt::format("-addr https://{} -cacert {} -cert /nonexistent.crt -key /nonexistent.key "
                    "get k2",
                    addr, Path(certs, "ca.crt")));
    INFO(bad_file.output);
    REQUIRE(bad_file.exit_code == 2);
    REQUIRE(bad_file.output.find("/nonexistent.crt") != std::string::npos);
  }
  {  // the leader dies: the others elect, forward over HTTPS to the new one; it comes back
    cluster.node(leader).Kill();
    std::size_t next = cluster.WaitLeader(20s);
    REQUIRE(next != leader);
    std::size_t other_follower = 3 - leader - next;
    PutOk(cluster.node(other_follower).Client(), "k3", "v3", 20s);
    cluster.node(leader).Start();
    cluster.node(leader).WaitServing();
    cluster.WaitCaughtUp(leader);
    RequireValue(cluster.node(leader).Client(), "k3", "v3", /*stale=*/true);
  }
}

TEST_CASE("flags: HTTPS without the certificate files is a startup error, not plain HTTP",
          "[https]") {
  ProcessCluster cluster;
  const fs::path certs = cluster.root() / "certs";
  MakeCerts(certs);
  NodeProcess& n = cluster.AddNode(
      {"-cert-file", Path(certs, "node0.crt"), "-key-file", Path(certs, "missing.key")});
  n.Start();
  auto code = n.WaitExit(10s);
  REQUIRE(code.has_value());
  REQUIRE(*code != 0);
  REQUIRE(n.Log().find("missing.key") != std::string::npos);
}

TEST_CASE("SIGHUP reloads the HTTPS certificate; a bad file keeps the old one", "[https][sighup]") {
  ProcessCluster cluster;
  const fs::path ca_a = cluster.root() / "ca-a";
  const fs::path ca_b = cluster.root() / "ca-b";
  const fs::path live = cluster.root() / "live";  // the files the node is told to use
  MakeCerts(ca_a);
  MakeCerts(ca_b);
  fs::create_directories(live);
  auto install = [&](const fs::path& from) {
    for (const char* f : {"node0.crt", "node0.key"})
      fs::copy_file(from / f, live / f, fs::copy_options::overwrite_existing);
  };
  install(ca_a);
  NodeProcess& n = cluster.AddNode(
      {"-cert-file", Path(live, "node0.crt"), "-key-file", Path(live, "node0.key")});
  n.mutable_spec().client_tls = ClientTls{Path(ca_a, "ca.crt"), "", ""};
  n.Start();
  n.WaitServing();
  const std::string addr = n.http_addr();
  KvClient trusts_a(addr, 3s, ClientTls{Path(ca_a, "ca.crt"), "", ""});
  KvClient trusts_b(addr, 3s, ClientTls{Path(ca_b, "ca.crt"), "", ""});
  REQUIRE(trusts_a.Status().Ok());
  REQUIRE(trusts_b.Status().status == 0);

  install(ca_b);
  // Not yet reloaded: the node still serves A's certificate.
  REQUIRE(trusts_a.Status().Ok());
  n.Signal(SIGHUP);
  REQUIRE(WaitUntil(5s, [&] { return trusts_b.Status().Ok(); }));
  REQUIRE(trusts_a.Status().status == 0);
  REQUIRE(n.Alive());

  // A bad key file: the reload fails, is logged, and B's certificate stays in use.
  { std::ofstream(live / "node0.key") << "not a key\n"; }
  n.Signal(SIGHUP);
  REQUIRE(WaitUntil(
      5s, [&] { return n.Log().find("certificate reload failed") != std::string::npos; }));
  REQUIRE(trusts_b.Status().Ok());
  REQUIRE(n.Alive());
}

}  // namespace
}  // namespace kvtest
