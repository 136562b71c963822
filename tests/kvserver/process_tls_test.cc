// TLS on both of kvserver's ports against real processes (issue 14, docs/operations.md
// "TLS on the Raft port"): a 3-node cluster with HTTPS (client certificates required) and
// TLS between the nodes (-peer-cert-file, -peer-key-file, -peer-trusted-ca-file) joins,
// replicates, survives kill -9 of its leader and takes it back with its data; plain
// connections to either port get nothing; a node whose Raft certificate comes from
// another CA cannot join; SIGHUP reloads the Raft port's certificates too. Certificates
// come from scripts/make-certs.sh, run into the test's directory.
//
//   build/tests/kvserver/process_tls_test
#include <fmt/format.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "process_harness.h"

namespace kvtest {
namespace {

namespace fs = std::filesystem;

// Runs scripts/make-certs.sh into `dir` (node0..node3, client admin).
void MakeCerts(const fs::path& dir) {
  std::string cmd = fmt::format("{} -d '{}' -n 'node0 node1 node2 node3' -c 'admin' >/dev/null",
                                MAKE_CERTS_SH, dir.string());
  REQUIRE(std::system(cmd.c_str()) == 0);
  REQUIRE(fs::exists(dir / "ca.crt"));
}

std::string Path(const fs::path& dir, const std::string& name) { return (dir / name).string(); }

// HTTPS with client certificates from `http`, TLS on the Raft port from `peer`.
std::vector<std::string> TlsArgs(const fs::path& http, const fs::path& peer,
                                 const std::string& name) {
  return {"-cert-file",
          Path(http, name + ".crt"),
          "-key-file",
          Path(http, name + ".key"),
          "-trusted-ca-file",
          Path(http, "ca.crt"),
          "-client-cert-auth",
          "-peer-cert-file",
          Path(peer, name + ".crt"),
          "-peer-key-file",
          Path(peer, name + ".key"),
          "-peer-trusted-ca-file",
          Path(peer, "ca.crt")};
}

// Dials `port` in clear text, sends a Raft frame header's first bytes, and reads until
// the peer closes (or 5 s pass). What came back.
std::string PlainProbe(std::uint16_t port, std::string_view bytes) {
  RawConnection c(port);
  REQUIRE(c.Send(bytes));
  REQUIRE(c.ClosedByPeer(5s));
  return c.pending();
}

TEST_CASE("a 3-node cluster with TLS on both ports: join, replicate, failover, refusals", "[tls]") {
  ProcessCluster cluster;
  const fs::path certs = cluster.root() / "certs";
  const fs::path other = cluster.root() / "other-ca";
  MakeCerts(certs);
  MakeCerts(other);
  const ClientTls admin{Path(certs, "ca.crt"), Path(certs, "admin.crt"), Path(certs, "admin.key")};
  for (int i = 0; i < 3; ++i) {
    NodeProcess& n = cluster.AddNode(TlsArgs(certs, certs, fmt::format("node{}", i)));
    n.mutable_spec().client_tls = admin;
  }
  cluster.node(0).Start();
  cluster.node(0).WaitServing();
  cluster.WaitLeader();
  for (std::size_t i = 1; i < 3; ++i) {
    cluster.node(i).Start(fmt::format("https://{}", cluster.node(0).http_addr()));
    cluster.node(i).WaitServing();
    cluster.WaitVoters(i + 1);
  }
  std::size_t leader = cluster.WaitLeader();
  PutOk(cluster.node(leader).Client(), "k1", "v1");
  for (std::size_t i = 0; i < 3; ++i) {
    cluster.WaitCaughtUp(i);
    RequireValue(cluster.node(i).Client(), "k1", "v1", /*stale=*/true);
  }
  for (std::size_t i = 0; i < 3; ++i)
    REQUIRE(cluster.node(i).Log().find("TLS handshake failed") == std::string::npos);

  std::size_t follower = cluster.Follower(leader);
  {  // plain connections: the Raft port closes without a frame of ours (at most a TLS
     // alert record, type 21); the HTTPS port answers a clear-text 400 at most
    const std::string frame_start("RAFT\x01\x01\x00\x00\x40\x00\x00\x00", 12);
    std::string raft = PlainProbe(cluster.node(follower).raft_port(), frame_start);
    INFO(Printable(raft));
    if (!raft.empty()) REQUIRE(raft[0] == '\x15');
    REQUIRE(raft.find("RAFT") == std::string::npos);
    REQUIRE(WaitUntil(5s, [&] {
      return cluster.node(follower).Log().find("TLS handshake failed") != std::string::npos;
    }));
    std::string http =
        PlainProbe(cluster.node(follower).http_port(), "GET /kv/k1 HTTP/1.1\r\nHost: x\r\n\r\n");
    INFO(Printable(http));
    REQUIRE(http.find("v1") == std::string::npos);
    REQUIRE(http.find("200") == std::string::npos);
  }

  {  // the leader dies: the others elect over TLS and commit; it comes back with its data
    cluster.node(leader).Kill();
    std::size_t next = cluster.WaitLeader(20s);
    REQUIRE(next != leader);
    std::size_t other_follower = 3 - leader - next;
    PutOk(cluster.node(other_follower).Client(), "k2", "v2", 20s);
    cluster.node(leader).Start();
    cluster.node(leader).WaitServing();
    cluster.WaitCaughtUp(leader);
    RequireValue(cluster.node(leader).Client(), "k1", "v1", /*stale=*/true);
    RequireValue(cluster.node(leader).Client(), "k2", "v2", /*stale=*/true);
  }

  {  // node3: HTTPS certificate of our CA (so /join is answered), Raft certificate of
     // another CA: the members refuse its TLS and it never gets the log
    NodeProcess& n3 = cluster.AddNode(TlsArgs(certs, other, "node3"));
    n3.mutable_spec().client_tls = admin;
    std::size_t l = cluster.WaitLeader();
    n3.Start(fmt::format("https://{}", cluster.node(l).http_addr()));
    REQUIRE(WaitUntil(10s, [&] {
      return cluster.node(l).Log().find("certificate verify failed") != std::string::npos;
    }));
    if (n3.Alive()) {
      auto st = n3.StatusJson();
      REQUIRE(JsonU64(st, "applied_index") == 0);
    }
    // The cluster is unharmed: three voters, still committing.
    PutOk(cluster.node(cluster.WaitLeader()).Client(), "k3", "v3", 20s);
    n3.ForceStop();
  }

  {  // SIGHUP reloads the Raft port's certificates as well (logged by the raft component)
    cluster.node(follower).Signal(SIGHUP);
    REQUIRE(WaitUntil(5s, [&] {
      return cluster.node(follower).Log().find("peer TLS certificates reloaded") !=
             std::string::npos;
    }));
    REQUIRE(cluster.node(follower).Alive());
  }
}

TEST_CASE("flags: the -peer-* files are checked at startup", "[tls]") {
  ProcessCluster cluster;
  const fs::path certs = cluster.root() / "certs";
  MakeCerts(certs);
  {  // only some of the three: a startup error naming the flags
    NodeProcess& n = cluster.AddNode({"-peer-cert-file", Path(certs, "node0.crt")});
    n.Start();
    auto code = n.WaitExit(10s);
    REQUIRE(code.has_value());
    REQUIRE(*code != 0);
    REQUIRE(n.Log().find("-peer-trusted-ca-file") != std::string::npos);
  }
  {  // a missing file: a startup error naming it
    NodeProcess& n = cluster.AddNode({"-peer-cert-file", Path(certs, "node1.crt"), "-peer-key-file",
                                      Path(certs, "node1.key"), "-peer-trusted-ca-file",
                                      Path(certs, "missing-ca.crt")});
    n.Start();
    auto code = n.WaitExit(10s);
    REQUIRE(code.has_value());
    REQUIRE(*code != 0);
    REQUIRE(n.Log().find("missing-ca.crt") != std::string::npos);
  }
}

}  // namespace
}  // namespace kvtest
