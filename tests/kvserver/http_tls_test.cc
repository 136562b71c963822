// HTTPS pieces that need no process: the flags' rules, -join/-addr parsing, the TLS
// contexts and their reload, and an in-process HttpServer over TLS handing the client
// certificate's CN to its handler (certificates from scripts/make-certs.sh).
#include "http_tls.h"

#include <httplib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "flags.h"
#include "http_client.h"
#include "http_server.h"

namespace kv {
namespace {

std::string Message(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"-id", "n1"};
  all.insert(all.end(), args.begin(), args.end());
  auto f = ParseServerFlags(all);
  return f.ok() ? std::string() : f.status().message();
}

TEST_CASE("HTTPS flags go together and -join follows this node's scheme", "[kvserver][flags]") {
  CHECK(Message({"-cert-file", "a.crt"}).find("-key-file") != std::string::npos);
  CHECK(Message({"-client-cert-auth"}).find("need HTTPS") != std::string::npos);
  CHECK(Message({"-trusted-ca-file", "ca.crt"}).find("need HTTPS") != std::string::npos);
  CHECK(Message({"-cert-file", "a", "-key-file", "b", "-client-cert-auth"})
            .find("-trusted-ca-file") != std::string::npos);
  CHECK(Message({"-join", "https://127.0.0.1:3000"}).find("-cert-file") != std::string::npos);
  CHECK(Message({"-cert-file", "a", "-key-file", "b", "-join", "http://127.0.0.1:3000"})
            .find("https://") != std::string::npos);
  CHECK(Message({"-join", "https://127.0.0.1:3000/x"}).find("-join must be") != std::string::npos);
  CHECK(Message({"-cert-file", "a", "-key-file", "b", "-join", "https://127.0.0.1:3000"}).empty());
  CHECK(Message({"-cert-file", "a", "-key-file", "b", "-join", "127.0.0.1:3000"}).empty());
  CHECK(Message({"-join", "http://127.0.0.1:3000"}).empty());
  auto f = ParseServerFlags({"-id", "n1", "-cert-file", "a", "-key-file", "b", "-trusted-ca-file",
                             "c", "--client-cert-auth"});
  REQUIRE(f.ok());
  CHECK(f->https());
  CHECK(f->client_cert_auth);
}

TEST_CASE("the Raft port's -peer-* TLS flags: all three or none", "[kvserver][flags]") {
  const std::string go_together = "go together";
  CHECK(Message({"-peer-cert-file", "a"}).find(go_together) != std::string::npos);
  CHECK(Message({"-peer-cert-file", "a", "-peer-key-file", "b"}).find(go_together) !=
        std::string::npos);
  CHECK(Message({"-peer-trusted-ca-file", "c"}).find("-peer-cert-file") != std::string::npos);
  CHECK(Message({"-peer-key-file", "b", "-peer-trusted-ca-file", "c"}).find(go_together) !=
        std::string::npos);
  // Independent of HTTPS: either port may use TLS without the other.
  auto f = ParseServerFlags(
      {"-id", "n1", "-peer-cert-file", "a", "-peer-key-file", "b", "-peer-trusted-ca-file", "c"});
  REQUIRE(f.ok());
  CHECK(f->peer_tls());
  CHECK_FALSE(f->https());
  CHECK(f->peer_trusted_ca_file == "c");
  CHECK_FALSE(ParseServerFlags({"-id", "n1"})->peer_tls());
}

TEST_CASE("HTTP addresses: scheme, default scheme, malformed", "[kvserver][http]") {
  auto a = ParseHttpAddr("https://h:1", false, "-addr");
  REQUIRE(a.ok());
  CHECK(a->https);
  CHECK(a->host == "h");
  CHECK(a->port == 1);
  CHECK(a->ToString() == "https://h:1");
  CHECK(ParseHttpAddr("h:2", true, "-addr")->https);
  CHECK_FALSE(ParseHttpAddr("http://h:2/", true, "-addr")->https);
  CHECK_FALSE(ParseHttpAddr("ftp://h:2", false, "-addr").ok());
  CHECK(ParseHttpAddr("h", false, "-addr").status().message().find("-addr must be") !=
        std::string::npos);
}

TEST_CASE("TLS contexts: clear errors, and a failed reload keeps the current one",
          "[kvserver][tls]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   std::string("kv-tls-test-").append(std::to_string(::getpid()));
  std::string cmd = "'";
  cmd.append(MAKE_CERTS_SH)
      .append("' -d '")
      .append(dir.string())
      .append("' -n node0 -c '' >/dev/null");
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto path = [&](const char* f) { return (dir / f).string(); };

  auto missing = MakeHttpTlsContext({path("node0.crt"), path("nope.key"), "", false});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("-key-file") != std::string::npos);
  CHECK(missing.status().message().find("nope.key") != std::string::npos);
  // A key that is not the certificate's.
  auto mismatch = MakeHttpTlsContext({path("node0.crt"), path("ca.key"), "", false});
  REQUIRE_FALSE(mismatch.ok());
  INFO(mismatch.status().message());
  CHECK(mismatch.status().message().find("mismatch") != std::string::npos);
  CHECK_FALSE(MakeHttpTlsContext({path("node0.crt"), path("node0.key"), "", true}).ok());

  auto contexts =
      HttpTlsContexts::Load({path("node0.crt"), path("node0.key"), path("ca.crt"), true});
  REQUIRE(contexts.ok());
  auto before = (*contexts)->Current();
  auto before_client = (*contexts)->CurrentClient();
  REQUIRE(before != nullptr);
  REQUIRE(before_client != nullptr);
  REQUIRE((*contexts)->Reload().ok());
  CHECK((*contexts)->Current() != before);  // a new context for new connections
  auto good = (*contexts)->Current();
  std::ofstream(dir / "node0.key") << "garbage\n";
  raft::Status bad = (*contexts)->Reload();
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.message().find("node0.key") != std::string::npos);
  CHECK((*contexts)->Current() == good);  // still the last good one

  CHECK_FALSE(VerifiedPeerCommonName(nullptr).has_value());
  std::filesystem::remove_all(dir);
}

// Answers every request with the CN the session saw ("-" when none).
class EchoCn : public HttpHandler {
 public:
  void Handle(HttpRequest, const RequestInfo& info, Responder respond) override {
    HttpResponse res{http::status::ok, 11};
    res.body() = info.client_cn.value_or("-");
    respond(std::move(res));
  }
  void CountRefused(int) override {}
};

// GET / over HTTPS with `client` ("" for none) of `dir`; the body, or "error: ..." when
// no answer came.
std::string FetchCn(std::uint16_t port, const std::filesystem::path& dir,
                    const std::string& client) {
  HttpClientTls tls{(dir / "ca.crt").string(), "", ""};
  if (!client.empty()) {
    tls.cert_file = (dir / (client + ".crt")).string();
    tls.key_file = (dir / (client + ".key")).string();
  }
  auto cli = MakeHttpClient({true, "127.0.0.1", port}, tls);
  REQUIRE(cli.ok());
  (*cli)->set_connection_timeout(std::chrono::seconds(3));
  (*cli)->set_read_timeout(std::chrono::seconds(3));
  auto r = (*cli)->Get("/");
  if (!r) return std::string("error: ").append(httplib::to_string(r.error()));
  return r->body;
}

TEST_CASE("a TLS session hands the verified client certificate's CN to the handler",
          "[kvserver][tls]") {
  const auto root = std::filesystem::temp_directory_path() /
                    std::string("kv-tls-cn-").append(std::to_string(::getpid()));
  const auto dir = root / "ca";
  const auto other = root / "other";
  for (const auto& d : {dir, other}) {
    std::string cmd = "'";
    cmd.append(MAKE_CERTS_SH)
        .append("' -d '")
        .append(d.string())
        .append("' -n node0 -c 'admin' >/dev/null");
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  const bool client_cert_auth = GENERATE(true, false);
  auto contexts = HttpTlsContexts::Load({(dir / "node0.crt").string(), (dir / "node0.key").string(),
                                         (dir / "ca.crt").string(), client_cert_auth});
  REQUIRE(contexts.ok());
  EchoCn handler;
  HttpServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.tls = contexts->get();
  auto server = HttpServer::Listen(o, &handler);
  REQUIRE(server.ok());
  std::thread io([&] { (*server)->Run(); });
  const std::uint16_t port = (*server)->port();
  if (client_cert_auth) {
    CHECK(FetchCn(port, dir, "admin") == "admin");
    CHECK(FetchCn(port, dir, "").rfind("error", 0) == 0);
    // A certificate from another CA is refused even though the client trusts the server.
    HttpClientTls foreign{(dir / "ca.crt").string(), (other / "admin.crt").string(),
                          (other / "admin.key").string()};
    auto cli = MakeHttpClient({true, "127.0.0.1", port}, foreign);
    REQUIRE(cli.ok());
    CHECK_FALSE((*cli)->Get("/"));
    // With TLS 1.3 the client's side of the handshake ends before the server has checked the
    // client's certificate, so the client can see its failure before the server counts it.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while ((*server)->stats().tls_handshake_failures < 2 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK((*server)->stats().tls_handshake_failures >= 2);
  } else {
    // No certificate is asked for, so none is reported, even when the client has one.
    CHECK(FetchCn(port, dir, "admin") == "-");
    CHECK(FetchCn(port, dir, "") == "-");
  }
  (*server)->Stop();
  io.join();
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace kv
