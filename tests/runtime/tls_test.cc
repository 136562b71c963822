// TLS on the Raft port (NodeOptions::peer_tls, docs/runtime.md "TLS"): in-process nodes
// over loopback with certificates from scripts/make-certs.sh (the openssl command), run
// into a temporary directory.
//
//   build/tests/runtime/runtime_tls_test            # or '[reload]'
//
// The probes below dial a node's Raft port as a TLS client of their own (asio::ssl) and
// tell "accepted" from "refused" without speaking the application protocol: an accepted
// connection stays open, waiting for our handshake frame (the node cuts it only after 5
// s), while a refused one fails in the TLS handshake or, since TLS 1.3 lets the client
// finish before the server has checked its certificate, with the alert on the first read.
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <thread>

#include "mem_kv.h"
#include "raft/host.h"
#include "raft/node.h"
#include "runtime_test_util.h"

namespace raft::test {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Concatenation by appending: GCC 12 at -O3 reports a false -Wrestrict inside
// `"literal" + std::string` (GCC bug 105329).
template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  (out.append(parts), ...);
  return out;
}

// Runs scripts/make-certs.sh into `dir`: a CA and certificates for n1..n4.
void MakeCerts(const fs::path& dir) {
  std::string cmd = MAKE_CERTS_SH;
  cmd.append(" -d '").append(dir.string()).append("' -n 'n1 n2 n3 n4' -c '' >/dev/null");
  REQUIRE(std::system(cmd.c_str()) == 0);
  REQUIRE(fs::exists(dir / "ca.crt"));
}

TlsOptions TlsOf(const fs::path& dir, const std::string& name) {
  TlsOptions t;
  t.cert_file = (dir / Cat(name, ".crt")).string();
  t.key_file = (dir / Cat(name, ".key")).string();
  t.trusted_ca_file = (dir / "ca.crt").string();
  return t;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

enum class Probe { kAccepted, kRefused };

// Dials 127.0.0.1:`port` over TLS, presenting `cert`/`key` (none when empty) and trusting
// `ca` for the server's certificate.
Probe ProbeTls(std::uint16_t port, const std::string& cert, const std::string& key,
               const std::string& ca) {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(ca);
  if (!cert.empty()) {
    ctx.use_certificate_chain_file(cert);
    ctx.use_private_key_file(key, asio::ssl::context::pem);
  }
  ctx.set_verify_mode(asio::ssl::verify_peer);
  asio::ssl::stream<asio::ip::tcp::socket> s(io, ctx);
  asio::error_code ec;
  s.next_layer().connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  REQUIRE_FALSE(ec);
  s.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return Probe::kRefused;
  bool done = false;
  char byte = 0;
  s.async_read_some(asio::buffer(&byte, 1), [&](asio::error_code, std::size_t) { done = true; });
  io.run_for(1500ms);
  return done ? Probe::kRefused : Probe::kAccepted;
}

Probe ProbeAs(std::uint16_t port, const fs::path& dir, const std::string& name,
              const fs::path& trust) {
  return ProbeTls(port, (dir / Cat(name, ".crt")).string(), (dir / Cat(name, ".key")).string(),
                  (trust / "ca.crt").string());
}

struct TlsNode {
  std::string name;
  std::string addr;
  std::uint16_t port = 0;
  std::unique_ptr<MemKv> sm = std::make_unique<MemKv>();
  std::unique_ptr<Node> node;
};

class TlsCluster {
 public:
  TlsCluster()
      : root_(fs::temp_directory_path() /
              Cat("raft-tls-test-", std::to_string(::getpid()), "-", std::to_string(counter_++))) {
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~TlsCluster() {
    for (auto& [n, t] : nodes_)
      if (t.node) t.node->Stop();
    nodes_.clear();
    fs::remove_all(root_);
  }
  const fs::path& root() const { return root_; }

  NodeOptions Options(const TlsNode& t, bool bootstrap, TlsOptions tls) const {
    NodeOptions o;
    o.self.name = t.name;
    o.self.id = NodeIdFromName(t.name);
    o.self.raft_addr = t.addr;
    o.data_dir = (root_ / t.name).string();
    o.bootstrap = bootstrap;
    o.tick_ms = 10;
    o.core.election_ticks = 10;
    o.snapshot_entries = 20;  // a late joiner gets a snapshot, streamed over TLS
    o.snapshot_trailing_entries = 5;
    o.snapshot_chunk_bytes = 1024;
    o.peer_tls = std::move(tls);
    return o;
  }

  TlsNode& Add(const std::string& name, bool bootstrap, TlsOptions tls) {
    TlsNode& t = nodes_[name];
    t.name = name;
    t.port = FreePort();
    t.addr = Cat("127.0.0.1:", std::to_string(t.port));
    auto n = Node::Start(Options(t, bootstrap, std::move(tls)), t.sm.get());
    if (!n.ok()) FAIL(Cat("Node::Start(", name, "): ", n.status().ToString()));
    t.node = std::move(n).value();
    return t;
  }
  TlsNode& at(const std::string& name) { return nodes_.at(name); }

  std::string Leader() {
    for (auto& [n, t] : nodes_)
      if (t.node && t.node->GetStatus().role == Role::kLeader) return n;
    return "";
  }
  std::string WaitLeader() {
    std::string l;
    REQUIRE(WaitFor([&] { return !(l = Leader()).empty(); }));
    return l;
  }
  // Adds `name` as a learner through the leader: ok once the change is applied (the
  // learner need not be reachable).
  void AddLearner(const std::string& name) {
    MemberInfo mi{NodeIdFromName(name), name, at(name).addr, ""};
    for (int attempt = 0; attempt < 50; ++attempt) {
      if (at(WaitLeader()).node->AddLearner(mi, 5s).get().ok()) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL(Cat("could not add ", name));
  }
  void Promote(const std::string& name) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      if (at(WaitLeader()).node->PromoteLearner(NodeIdFromName(name), 5s).get().ok()) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL(Cat("could not promote ", name));
  }
  bool Put(const std::string& k, const std::string& v) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string l = Leader();
      if (!l.empty() && at(l).node->Propose(Cat(k, "=", v), 5s).get().ok()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

 private:
  static inline int counter_ = 0;
  fs::path root_;
  std::map<std::string, TlsNode> nodes_;
};

}  // namespace

TEST_CASE("tls: three nodes elect and replicate over TLS; a snapshot streams over it",
          "[runtime][tls]") {
  TlsCluster c;
  const fs::path ca = c.root() / "ca";
  MakeCerts(ca);
  c.Add("n1", true, TlsOf(ca, "n1"));
  c.WaitLeader();
  for (int i = 0; i < 40; ++i) REQUIRE(c.Put(Cat("k", std::to_string(i)), std::string(200, 'v')));
  REQUIRE(WaitFor([&] { return c.at("n1").node->GetMetrics().snapshots_taken >= 1; }));
  for (const char* n : {"n2", "n3"}) {
    c.Add(n, false, TlsOf(ca, n));
    c.AddLearner(n);
    REQUIRE(WaitFor([&] { return c.at(n).sm->Get("k39") == std::string(200, 'v'); }));
    c.Promote(n);
  }
  REQUIRE(c.at("n1").node->GetMetrics().snapshots_sent >= 1);
  REQUIRE(c.Put("after", "join"));
  for (const char* n : {"n1", "n2", "n3"})
    REQUIRE(WaitFor([&] { return c.at(n).sm->Get("after") == "join"; }));

  // The leader stops: the other two elect over TLS and keep committing.
  std::string leader = c.WaitLeader();
  c.at(leader).node->Stop();
  c.at(leader).node.reset();
  REQUIRE(WaitFor([&] {
    std::string l = c.Leader();
    return !l.empty() && l != leader;
  }));
  REQUIRE(c.Put("after", "failover"));
}

TEST_CASE("tls: a peer with a certificate of another CA is refused, both ways", "[runtime][tls]") {
  TlsCluster c;
  const fs::path ca = c.root() / "ca";
  const fs::path other = c.root() / "other";
  MakeCerts(ca);
  MakeCerts(other);
  c.Add("n1", true, TlsOf(ca, "n1"));
  c.WaitLeader();
  REQUIRE(c.Put("a", "1"));
  const std::uint16_t port = c.at("n1").port;

  // Probes: our CA's certificate is accepted (the control), another CA's is refused, and
  // so is no certificate; a client that trusts only the other CA refuses the node.
  REQUIRE(ProbeAs(port, ca, "n4", ca) == Probe::kAccepted);
  REQUIRE(ProbeAs(port, other, "n4", ca) == Probe::kRefused);
  REQUIRE(ProbeTls(port, "", "", (ca / "ca.crt").string()) == Probe::kRefused);
  REQUIRE(ProbeAs(port, ca, "n4", other) == Probe::kRefused);

  // A member whose certificate comes from another CA never gets the log: the leader's
  // connections to it fail in the TLS handshake.
  c.Add("n2", false, TlsOf(other, "n2"));
  c.AddLearner("n2");
  REQUIRE(c.Put("b", "2"));
  std::this_thread::sleep_for(1s);
  REQUIRE(c.at("n2").sm->applied() == 0);
  REQUIRE(c.at("n2").sm->Get("a").empty());
  // The same node with our CA's certificate is taken in.
  c.at("n2").node->Stop();
  c.at("n2").node.reset();
  c.Add("n3", false, TlsOf(ca, "n3"));
  c.AddLearner("n3");
  REQUIRE(WaitFor([&] { return c.at("n3").sm->Get("b") == "2"; }));
}

TEST_CASE("tls: a plain TCP connection to a TLS port gets no Raft answer", "[runtime][tls]") {
  TlsCluster c;
  const fs::path ca = c.root() / "ca";
  MakeCerts(ca);
  c.Add("n1", true, TlsOf(ca, "n1"));
  c.WaitLeader();
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), c.at("n1").port});
  // A frame header and some payload, in clear text.
  const std::string junk("\x01\x00\x00\x00\x10raft-handshake-v1", 22);
  asio::write(s, asio::buffer(junk));
  std::string got;
  char buf[512];
  asio::error_code ec;
  for (;;) {
    std::size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    got.append(buf, n);
  }
  // The connection ends; whatever came back is a TLS record (an alert, type 21), never
  // a frame of ours.
  REQUIRE((ec == asio::error::eof || ec == asio::error::connection_reset));
  if (!got.empty()) REQUIRE(got[0] == '\x15');
  // And a TLS node refuses to dial a plain one: the plain node never gets the log.
  c.Add("n2", false, TlsOptions{});
  c.AddLearner("n2");
  std::this_thread::sleep_for(1s);
  REQUIRE(c.at("n2").sm->applied() == 0);
}

TEST_CASE("tls: ReloadTls swaps in new certificates; a bad file keeps the old ones",
          "[runtime][tls][reload]") {
  TlsCluster c;
  const fs::path ca_a = c.root() / "ca-a";
  const fs::path ca_b = c.root() / "ca-b";
  const fs::path live = c.root() / "live";  // the files the node is told to use
  MakeCerts(ca_a);
  MakeCerts(ca_b);
  fs::create_directories(live);
  auto install = [&](const fs::path& from) {
    for (const char* f : {"n1.crt", "n1.key", "ca.crt"})
      fs::copy_file(from / f, live / f, fs::copy_options::overwrite_existing);
  };
  install(ca_a);
  c.Add("n1", true, TlsOf(live, "n1"));
  c.WaitLeader();
  const std::uint16_t port = c.at("n1").port;
  REQUIRE(ProbeAs(port, ca_a, "n2", ca_a) == Probe::kAccepted);
  REQUIRE(ProbeAs(port, ca_b, "n2", ca_b) == Probe::kRefused);

  install(ca_b);
  // Not reloaded yet: still A.
  REQUIRE(ProbeAs(port, ca_a, "n2", ca_a) == Probe::kAccepted);
  REQUIRE(c.at("n1").node->ReloadTls().ok());
  REQUIRE(ProbeAs(port, ca_b, "n2", ca_b) == Probe::kAccepted);
  REQUIRE(ProbeAs(port, ca_a, "n2", ca_a) == Probe::kRefused);

  // A bad key: an error naming the file, and B stays in use.
  { std::ofstream(live / "n1.key") << "not a key\n"; }
  Status s = c.at("n1").node->ReloadTls();
  REQUIRE(s.code() == ErrorCode::kInvalidArgument);
  REQUIRE(s.message().find("n1.key") != std::string::npos);
  REQUIRE(ProbeAs(port, ca_b, "n2", ca_b) == Probe::kAccepted);
  // A key of another certificate: refused as not matching.
  fs::copy_file(ca_b / "n2.key", live / "n1.key", fs::copy_options::overwrite_existing);
  s = c.at("n1").node->ReloadTls();
  REQUIRE(s.code() == ErrorCode::kInvalidArgument);
  INFO(s.message());
  REQUIRE(s.message().find("does not match") != std::string::npos);

  // ReloadTls(tls) takes PEM text and replaces the files; a later ReloadTls() reads the
  // PEM again.
  TlsOptions pem;
  pem.cert_pem = ReadFile(ca_a / "n1.crt");
  pem.key_pem = ReadFile(ca_a / "n1.key");
  pem.trusted_ca_pem = ReadFile(ca_a / "ca.crt");
  REQUIRE(c.at("n1").node->ReloadTls(pem).ok());
  REQUIRE(ProbeAs(port, ca_a, "n2", ca_a) == Probe::kAccepted);
  REQUIRE(c.at("n1").node->ReloadTls().ok());
  REQUIRE(ProbeAs(port, ca_b, "n2", ca_b) == Probe::kRefused);
  // The node kept serving throughout.
  REQUIRE(c.Put("still", "leader"));
}

TEST_CASE("tls: bad TLS options are errors at Start, never a crash", "[runtime][tls]") {
  TlsCluster c;
  const fs::path ca = c.root() / "ca";
  MakeCerts(ca);
  auto start = [&](TlsOptions tls) {
    TlsNode t;
    t.name = "n1";
    t.addr = Cat("127.0.0.1:", std::to_string(FreePort()));
    MemKv sm;
    auto n = Node::Start(c.Options(t, true, std::move(tls)), &sm);
    return n.ok() ? Status::Ok() : n.status();
  };
  TlsOptions missing = TlsOf(ca, "n1");
  missing.trusted_ca_file = (ca / "nope.crt").string();
  Status s = start(missing);
  REQUIRE(s.code() == ErrorCode::kInvalidArgument);
  REQUIRE(s.message().find("nope.crt") != std::string::npos);

  TlsOptions partial;
  partial.cert_file = (ca / "n1.crt").string();
  s = start(partial);
  REQUIRE(s.code() == ErrorCode::kInvalidArgument);
  REQUIRE(s.message().find("key") != std::string::npos);

  TlsOptions garbage_pem;
  garbage_pem.cert_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  garbage_pem.key_file = (ca / "n1.key").string();
  garbage_pem.trusted_ca_file = (ca / "ca.crt").string();
  s = start(garbage_pem);
  REQUIRE(s.code() == ErrorCode::kInvalidArgument);
  REQUIRE(s.message().find("cert_pem") != std::string::npos);

  // A node without TLS cannot turn it on by reloading.
  c.Add("n2", true, TlsOptions{});
  REQUIRE(c.at("n2").node->ReloadTls().code() == ErrorCode::kInvalidArgument);
}

}  // namespace raft::test

namespace raft::test {
namespace {

// Hosts 1..3 (certificates n1..n3 of `ca`), each knowing every other, over TLS.
struct TlsHosts {
  explicit TlsHosts(const fs::path& root) : root(root) {
    for (NodeId p = 1; p <= 4; ++p) addrs[p] = Cat("127.0.0.1:", std::to_string(FreePort()));
  }
  ~TlsHosts() {
    for (auto& [p, h] : hosts)
      if (h) h->Stop();
  }
  Result<std::unique_ptr<Host>> Start(NodeId p, TlsOptions tls) {
    HostOptions o;
    o.self = p;
    o.listen_addr = addrs.at(p);
    o.peers = addrs;
    o.data_dir = (root / Cat("h", std::to_string(p))).string();
    o.tick_ms = 10;
    o.peer_tls = std::move(tls);
    return Host::Start(o);
  }
  // As HostTrio::Start (host_test.cc): a port taken before the host binds it is
  // replaced, and the running hosts learn the new one.
  void Add(NodeId p, const TlsOptions& tls) {
    for (int attempt = 0;; ++attempt) {
      auto h = Start(p, tls);
      if (h.ok()) {
        hosts[p] = std::move(h).value();
        return;
      }
      if (attempt >= 5 || h.status().message().find("cannot listen") == std::string::npos)
        FAIL(Cat("Host::Start: ", h.status().ToString()));
      addrs[p] = Cat("127.0.0.1:", std::to_string(FreePort()));
      for (auto& [q, other] : hosts)
        if (other && q != p) REQUIRE(other->SetPeer(p, addrs[p]).ok());
    }
  }
  NodeId Leader(GroupId g) {
    for (auto& [p, h] : hosts) {
      auto st = h->GroupStatus(g);
      if (st.ok() && st->role == Role::kLeader) return p;
    }
    return kNoNode;
  }
  bool Put(GroupId g, const std::string& kv) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      const NodeId l = Leader(g);
      if (l != kNoNode && hosts.at(l)->Propose(g, kv, 5s).get().ok()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  fs::path root;
  std::map<NodeId, std::string> addrs;
  std::map<NodeId, std::unique_ptr<Host>> hosts;
  std::map<NodeId, std::map<GroupId, MemKv>> sms;
};

}  // namespace

TEST_CASE("tls: hosts replicate their groups over TLS; another CA's host gets nothing",
          "[runtime][tls][host]") {
  TlsCluster c;  // for its directory
  const fs::path ca = c.root() / "ca";
  const fs::path other = c.root() / "other";
  MakeCerts(ca);
  MakeCerts(other);
  TlsHosts h(c.root());
  for (NodeId p = 1; p <= 3; ++p) h.Add(p, TlsOf(ca, Cat("n", std::to_string(p))));
  for (GroupId g = 1; g <= 3; ++g)
    for (NodeId p = 1; p <= 3; ++p)
      REQUIRE(h.hosts.at(p)->CreateGroup(g, {1, 2, 3}, &h.sms[p][g]).ok());
  for (GroupId g = 1; g <= 3; ++g) REQUIRE(h.Put(g, Cat("k=g", std::to_string(g))));
  for (GroupId g = 1; g <= 3; ++g)
    for (NodeId p = 1; p <= 3; ++p)
      REQUIRE(WaitFor([&] { return h.sms[p][g].Get("k") == Cat("g", std::to_string(g)); }));
  // The Raft port refuses a client of another CA, as a node's does.
  const std::uint16_t port1 =
      static_cast<std::uint16_t>(std::stoi(h.addrs.at(1).substr(h.addrs.at(1).rfind(':') + 1)));
  REQUIRE(ProbeAs(port1, ca, "n4", ca) == Probe::kAccepted);
  REQUIRE(ProbeAs(port1, other, "n4", ca) == Probe::kRefused);

  // Process 4 with another CA's certificate joins group 1 and is added as a learner: the
  // TLS handshake fails both ways, so it never gets the log.
  h.Add(4, TlsOf(other, "n4"));
  REQUIRE(h.hosts.at(4)->CreateGroup(1, {}, &h.sms[4][1]).ok());
  bool added = false;
  for (int attempt = 0; attempt < 50 && !added; ++attempt) {
    const NodeId l = h.Leader(1);
    if (l == kNoNode) {
      std::this_thread::sleep_for(20ms);
      continue;
    }
    std::promise<Result<std::string>> done;
    h.hosts.at(l)->AddLearner(1, 4, 5s, [&done](Result<std::string> r) { done.set_value(r); });
    added = done.get_future().get().ok();
  }
  REQUIRE(added);
  REQUIRE(h.Put(1, "after=learner"));
  std::this_thread::sleep_for(1s);
  CHECK(h.sms[4][1].applied() == 0);
  // Reloading: a key that does not match is refused (the certificates in use stay); our
  // CA's files are taken, and then the log reaches process 4.
  TlsOptions bad = TlsOf(ca, "n4");
  bad.key_file = (ca / "n1.key").string();
  CHECK(h.hosts.at(4)->ReloadTls(bad).code() == ErrorCode::kInvalidArgument);
  REQUIRE(h.hosts.at(4)->ReloadTls(TlsOf(ca, "n4")).ok());
  REQUIRE(WaitFor([&] { return h.sms[4][1].Get("after") == "learner"; }, 20s));
}

TEST_CASE("tls: a host's bad TLS options are errors at Start; no reload without TLS",
          "[runtime][tls][host]") {
  TlsCluster c;
  const fs::path ca = c.root() / "ca";
  MakeCerts(ca);
  TlsHosts h(c.root());
  TlsOptions partial;
  partial.cert_file = (ca / "n1.crt").string();
  auto r = h.Start(1, partial);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == ErrorCode::kInvalidArgument);
  TlsOptions missing = TlsOf(ca, "n1");
  missing.key_file = (ca / "nope.key").string();
  r = h.Start(1, missing);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("nope.key") != std::string::npos);
  h.Add(1, TlsOptions{});
  CHECK(h.hosts.at(1)->ReloadTls().code() == ErrorCode::kInvalidArgument);
}

}  // namespace raft::test
