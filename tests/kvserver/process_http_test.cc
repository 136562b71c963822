// kvserver's HTTP front door against real processes (issue 12, docs/http-api.md): HTTP/1.1
// conformance (pipelining, Expect, chunked bodies, Connection: close, HTTP/1.0, keep-alive
// and its limits) and an adversarial suite. Every adversarial case checks a clear answer
// (the status code the spec names), bounded memory (the node's peak VmRSS growth while
// the attack runs, below a stated bound) and that a normal client is still served
// afterwards (/health answers quickly, a PUT and a GET work). One node is enough: the
// front door is the same on every node.
//
// Tags: [http] conformance, [adversarial] attacks, [slow] cases that wait for server
// timeouts or open thousands of connections, [kvctl] kvctl's retry rule.
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <thread>

#include "process_harness.h"

namespace kvtest {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * 1024;

Millis Since(Clock::time_point t0) { return std::chrono::duration_cast<Millis>(Clock::now() - t0); }

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A value whose bytes differ along its length, so that a truncated, reordered or
// repeated answer cannot compare equal.
std::string PatternValue(std::size_t bytes, char seed) {
  std::string v(bytes, '\0');
  for (std::size_t i = 0; i < bytes; ++i) {
    v[i] = static_cast<char>('a' + (i / 7 + static_cast<std::size_t>(seed)) % 26);
  }
  return v;
}

// Samples a node's VmRSS every 10 ms on its own thread (no Catch2 there) from
// construction until Stop(); CheckGrowth compares the peak with the RSS at construction.
class RssSampler {
 public:
  explicit RssSampler(const NodeProcess& node)
      : node_(node), before_(node.RssBytes()), peak_(before_) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        std::size_t rss = node_.RssBytes();
        if (rss > peak_.load()) peak_.store(rss);
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  ~RssSampler() { Stop(); }
  RssSampler(const RssSampler&) = delete;
  RssSampler& operator=(const RssSampler&) = delete;

  void Stop() {
    if (!thread_.joinable()) return;
    stop_.store(true);
    thread_.join();
    std::size_t rss = node_.RssBytes();
    if (rss > peak_.load()) peak_.store(rss);
  }

  // Stops sampling; checks peak - before < bound_bytes.
  void CheckGrowth(std::size_t bound_bytes, const std::string& what) {
    Stop();
    REQUIRE(before_ > 0);
    const double growth_mib =
        (static_cast<double>(peak_.load()) - static_cast<double>(before_)) / kMiB;
    std::printf("[memory] %s: RSS %.1f MiB, peak %.1f MiB (growth %.1f MiB, bound %zu MiB)\n",
                what.c_str(), static_cast<double>(before_) / kMiB,
                static_cast<double>(peak_.load()) / kMiB, growth_mib, bound_bytes / kMiB);
    INFO(what << ": peak RSS growth " << growth_mib << " MiB, bound " << bound_bytes / kMiB
              << " MiB");
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    // Sanitizer runtimes keep freed memory resident (quarantine, shadow): RSS says nothing.
    WARN("sanitizer build: RSS bound not checked");
#else
    CHECK(peak_.load() < before_ + bound_bytes);
#endif
  }

 private:
  const NodeProcess& node_;
  const std::size_t before_;
  std::atomic<std::size_t> peak_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// One bootstrapped node with `args` (spec flags), warmed up so that the first
// allocations of RocksDB and the server are in every memory baseline (values of 1000
// bytes: some cases run with -max-value-bytes 1024).
struct HttpNode {
  ProcessCluster cluster;
  explicit HttpNode(std::vector<std::string> args = {})
      : cluster(ClusterOptions{.extra_args = std::move(args)}) {
    cluster.Start(1);
    KvClient c = client();
    for (int i = 0; i < 20; ++i) PutOk(c, fmt::format("warm/{}", i), PatternValue(1000, 'w'));
    for (int i = 0; i < 20; ++i) REQUIRE(c.Get(fmt::format("warm/{}", i)).status == 200);
    REQUIRE(c.List("warm/").status == 200);
  }
  NodeProcess& node() { return cluster.node(0); }
  std::uint16_t port() { return node().http_port(); }
  KvClient client(Millis timeout = 10s) { return node().Client(timeout); }

  // The node is alive, answers /health within a second, and a PUT and a GET work.
  void RequireServing(const std::string& after) {
    INFO("after: " << after);
    bool alive = node().Alive();
    INFO("exit code " << node().last_exit().value_or(-1) << "; log tail:\n" << node().LogTail(10));
    REQUIRE(alive);
    auto t0 = Clock::now();
    HttpReply h = client(2s).Health();
    auto took = Since(t0);
    INFO("GET /health: " << h.Describe() << " in " << took.count() << " ms");
    REQUIRE(h.status == 200);
    CHECK(took < 1000ms);
    static int n = 0;
    std::string key = fmt::format("alive/{}", n++);
    PutOk(client(), key, after);
    RequireValue(client(), key, after);
  }
};

// Sends `request` on a fresh connection and reads one response.
RawResponse Exchange(std::uint16_t port, const std::string& request, Millis limit = 5s) {
  RawConnection conn(port);
  conn.Send(request);
  return conn.ReadResponse(limit);
}

// The answer carries `Connection: close` and the server then closes the connection.
void RequireClosed(RawConnection& conn, const RawResponse& r) {
  CHECK(Lower(r.Header("connection")) == "close");
  CHECK(conn.ClosedByPeer(5s));
}

// Streams `head` and then `filler` repeated (up to `max_bytes`) without waiting for the
// peer, stopping as soon as an answer arrives or the peer closes. Returns the bytes of
// filler sent; *closed says whether the peer closed.
std::size_t StreamUntilAnswer(RawConnection& conn, const std::string& head,
                              const std::string& filler, std::size_t max_bytes, bool* closed,
                              Millis limit = 30s) {
  *closed = !conn.Send(head);
  std::size_t sent = 0;
  std::size_t pos = 0;
  auto deadline = Clock::now() + limit;
  while (!*closed && sent < max_bytes && Clock::now() < deadline) {
    long n = conn.SendSome(std::string_view(filler).substr(pos));
    if (n < 0) {
      *closed = true;
      break;
    }
    sent += static_cast<std::size_t>(n);
    pos = (pos + static_cast<std::size_t>(n)) % filler.size();
    if (!conn.Poll()) *closed = true;
    if (conn.HasResponse()) break;
    if (n == 0) {  // the socket buffers are full: the peer is not reading
      pollfd p{conn.fd(), POLLOUT | POLLIN, 0};
      ::poll(&p, 1, 20);
    }
  }
  return sent;
}

std::string Put(const std::string& target, const std::string& body,
                const std::string& extra_headers = {}) {
  return fmt::format("PUT {} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Content-Length: {}\r\n\r\n{}", target,
                     extra_headers, body.size(), body);
}

std::string Get(const std::string& target, const std::string& extra_headers = {}) {
  return fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n", target, extra_headers);
}

// Raises this process's open-file limit to its hard limit; returns the new soft limit.
rlim_t RaiseFileLimit() {
  rlimit lim{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
  return lim.rlim_cur;
}

// ---------------------------------------------------------------------------------------
// Conformance

TEST_CASE("pipelined requests are answered in request order", "[http]") {
  HttpNode n;
  RawConnection conn(n.port());
  constexpr int kRequests = 100;
  std::string batch;
  for (int i = 0; i < kRequests; ++i) {
    batch += Put(fmt::format("/kv/pipe/{:03}", i), fmt::format("value-{:03}", i));
  }
  REQUIRE(conn.Send(batch));  // one write
  std::set<std::uint64_t> indexes;
  for (int i = 0; i < kRequests; ++i) {
    RawResponse r = conn.ReadResponse(10s);
    INFO("answer " << i << " of " << kRequests << " pipelined PUTs: " << r.Describe());
    REQUIRE(r.status == 200);
    indexes.insert(JsonU64(nlohmann::json::parse(r.body, nullptr, false), "index"));
  }
  CHECK(indexes.size() == kRequests);  // 100 distinct writes

  // GETs of distinct keys (every third one missing): the bodies prove the order.
  batch.clear();
  for (int i = 0; i < kRequests; ++i) {
    batch +=
        Get(i % 3 == 0 ? fmt::format("/kv/missing/{:03}", i) : fmt::format("/kv/pipe/{:03}", i));
  }
  REQUIRE(conn.Send(batch));
  for (int i = 0; i < kRequests; ++i) {
    RawResponse r = conn.ReadResponse(10s);
    INFO("answer " << i << " of " << kRequests << " pipelined GETs: " << r.Describe());
    if (i % 3 == 0) {
      REQUIRE(r.status == 404);
    } else {
      REQUIRE(r.status == 200);
      REQUIRE(r.body == fmt::format("value-{:03}", i));
    }
  }
  // Nothing more was answered, and the connection is still usable.
  CHECK(conn.pending().empty());
  REQUIRE(conn.Send(Get("/kv/pipe/042")));
  RawResponse r = conn.ReadResponse(5s);
  REQUIRE(r.status == 200);
  REQUIRE(r.body == "value-042");
}

TEST_CASE("Expect: 100-continue: 100, then the answer; 413 instead of 100 when too large",
          "[http]") {
  HttpNode n;
  {
    RawConnection conn(n.port());
    REQUIRE(
        conn.Send("PUT /kv/expect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
                  "Expect: 100-continue\r\n\r\n"));
    RawResponse r = conn.ReadResponse(5s);
    INFO("before the body: " << r.Describe());
    REQUIRE(r.status == 100);
    REQUIRE(conn.Send("hello"));
    r = conn.ReadResponse(5s);
    INFO("after the body: " << r.Describe());
    REQUIRE(r.status == 200);
    // Keep-alive afterwards.
    REQUIRE(conn.Send(Get("/kv/expect")));
    r = conn.ReadResponse(5s);
    REQUIRE(r.status == 200);
    REQUIRE(r.body == "hello");
  }
  {
    // Content-Length over -max-value-bytes (1 MiB): 413 at the head, no 100.
    RawConnection conn(n.port());
    REQUIRE(conn.Send(
        fmt::format("PUT /kv/expect-big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n"
                    "Expect: 100-continue\r\n\r\n",
                    2 * kMiB)));
    RawResponse r = conn.ReadResponse(5s);
    INFO(r.Describe());
    REQUIRE(r.status == 413);
    REQUIRE(!nlohmann::json::parse(r.body, nullptr, false).is_discarded());
    RequireClosed(conn, r);
  }
  REQUIRE(n.client().Get("expect-big").status == 404);
  // httplib's client (no Expect) still works.
  RequireValue(n.client(), "expect", "hello");
}

TEST_CASE("chunked request bodies are stored exactly, within the value limit", "[http]") {
  HttpNode n({"-max-value-bytes", "1024"});
  KvClient c = n.client();
  {
    RawResponse r =
        Exchange(n.port(),
                 "PUT /kv/chunked HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    INFO(r.Describe());
    REQUIRE(r.status == 200);
    RequireValue(c, "chunked", "hello world");
  }
  {
    // Binary bytes (CRLF and NUL inside chunks), sent in pieces with pauses.
    const std::string value = std::string("a\r\n0\r\n\r\n\0b", 11) + PatternValue(300, 'c');
    RawConnection conn(n.port());
    REQUIRE(conn.Send(
        "PUT /kv/chunked-bin HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
    for (std::size_t at = 0; at < value.size(); at += 100) {
      std::string piece = value.substr(at, 100);
      std::string chunk = fmt::format("{:x}\r\n", piece.size());
      chunk += piece;
      chunk += "\r\n";
      REQUIRE(conn.Send(chunk.substr(0, 3)));
      std::this_thread::sleep_for(20ms);
      REQUIRE(conn.Send(chunk.substr(3)));
    }
    REQUIRE(conn.Send("0\r\n\r\n"));
    RawResponse r = conn.ReadResponse(5s);
    INFO(r.Describe());
    REQUIRE(r.status == 200);
    RequireValue(c, "chunked-bin", value);
  }
  {
    RawResponse r =
        Exchange(n.port(),
                 "PUT /kv/chunked-empty HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: "
                 "chunked\r\n\r\n0\r\n\r\n");
    INFO(r.Describe());
    REQUIRE(r.status == 200);
    RequireValue(c, "chunked-empty", "");
  }
  // Exactly at the limit in four chunks: stored; one byte over: 413 + close.
  for (std::size_t size : {std::size_t{1024}, std::size_t{1025}}) {
    const std::string value = PatternValue(size, 'l');
    std::string request =
        "PUT /kv/chunked-limit HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (std::size_t at = 0; at < size; at += 256) {
      std::string piece = value.substr(at, 256);
      request += fmt::format("{:x}\r\n", piece.size());
      request += piece;
      request += "\r\n";
    }
    request += "0\r\n\r\n";
    RawConnection conn(n.port());
    conn.Send(request);
    RawResponse r = conn.ReadResponse(5s);
    INFO(size << " bytes chunked: " << r.Describe());
    if (size == 1024) {
      REQUIRE(r.status == 200);
      RequireValue(c, "chunked-limit", value);
    } else {
      REQUIRE(r.status == 413);
      RequireClosed(conn, r);
      RequireValue(c, "chunked-limit", PatternValue(1024, 'l'));  // unchanged
    }
  }
}

TEST_CASE("Connection: close and HTTP/1.0", "[http]") {
  HttpNode n;
  PutOk(n.client(), "k", "v");
  SECTION("HTTP/1.1 with Connection: close: the answer says close, then EOF") {
    RawConnection conn(n.port());
    REQUIRE(conn.Send(Get("/kv/k", "Connection: close\r\n")));
    RawResponse r = conn.ReadResponse(5s);
    INFO(r.Describe());
    REQUIRE(r.status == 200);
    REQUIRE(r.body == "v");
    RequireClosed(conn, r);
  }
  SECTION("HTTP/1.0 closes after the answer") {
    RawConnection conn(n.port());
    REQUIRE(conn.Send("GET /kv/k HTTP/1.0\r\n\r\n"));
    RawResponse r = conn.ReadResponse(5s);
    INFO(r.Describe());
    REQUIRE(r.status == 200);
    REQUIRE(r.body == "v");
    CHECK(conn.ClosedByPeer(5s));
  }
  SECTION("HTTP/1.0 with Connection: keep-alive stays open") {
    RawConnection conn(n.port());
    REQUIRE(conn.Send(
        "PUT /kv/k10 HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nv1.0"));
    RawResponse r = conn.ReadResponse(5s);
    INFO(r.Describe());
    REQUIRE(r.status == 200);
    CHECK(Lower(r.Header("connection")) == "keep-alive");
    REQUIRE(!conn.ClosedByPeer(300ms));
    REQUIRE(conn.Send("GET /kv/k10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    r = conn.ReadResponse(5s);
    INFO(r.Describe());
    REQUIRE(r.status == 200);
    REQUIRE(r.body == "v1.0");
  }
}

// A watch's stream has no end a client could wait for: a request pipelined behind it was
// run (a PUT applied) and never answered. The watch is now its connection's last request,
// whether it streams or is refused: nothing behind it is read, and the answer says close.
TEST_CASE("a request pipelined behind GET /watch is never run; the watch's answer says close",
          "[http][watch]") {
  HttpNode n;
  KvClient c = n.client();
  for (const bool streams : {true, false}) {
    CAPTURE(streams);
    const std::string key = streams ? "behind/stream" : "behind/refused";
    RawConnection conn(n.port());
    REQUIRE(conn.Send(Get(streams ? "/watch?prefix=behind/" : "/watch?from_index=x") +
                      Put("/kv/" + key, "ran")));
    RawResponse r = conn.ReadResponse(streams ? 1s : 5s);  // a stream: its head, then nothing
    INFO(r.Describe());
    REQUIRE(r.status == (streams ? 200 : 400));
    CHECK(Lower(r.Header("connection")) == "close");
    if (!streams) CHECK(conn.ClosedByPeer(5s));
    std::this_thread::sleep_for(500ms);  // a PUT read behind it is applied well within this
    CHECK(c.Get(key).status == 404);
  }
}

TEST_CASE("keep-alive: a connection is reused; an idle one is closed at the idle timeout",
          "[http][slow]") {
  HttpNode n({"-http-idle-timeout-ms", "1000"});
  RawConnection conn(n.port());
  for (int i = 0; i < 50; ++i) {
    std::string key = fmt::format("/kv/reuse/{}", (i / 2) % 5);  // PUT, then GET it
    REQUIRE(conn.Send(i % 2 == 0 ? Put(key, std::to_string(i)) : Get(key)));
    RawResponse r = conn.ReadResponse(5s);
    INFO("request " << i << ": " << r.Describe());
    REQUIRE(r.status == 200);
    if (i % 2 == 1) REQUIRE(r.body == std::to_string(i - 1));
  }
  // Requests 400 ms apart keep it open past the idle timeout.
  auto t0 = Clock::now();
  while (Since(t0) < 1600ms) {
    std::this_thread::sleep_for(400ms);
    REQUIRE(conn.Send(Get("/health")));
    RawResponse r = conn.ReadResponse(5s);
    INFO("after " << Since(t0).count() << " ms: " << r.Describe());
    REQUIRE(r.status == 200);
  }
  // Then idle: closed silently after about a second.
  t0 = Clock::now();
  std::string got = conn.ReadUntilClose(5s);
  auto took = Since(t0);
  INFO("idle connection closed after " << took.count() << " ms; got " << Printable(got));
  CHECK(got.empty());
  CHECK(took >= 700ms);
  CHECK(took < 4000ms);
  n.RequireServing("idle timeout");
}

// ---------------------------------------------------------------------------------------
// Adversarial

TEST_CASE("adversarial: a chunked body past the value limit is refused as it arrives",
          "[http][adversarial]") {
  HttpNode n;  // -max-value-bytes 1 MiB
  RssSampler rss(n.node());
  RawConnection conn(n.port());
  std::string chunk = fmt::format("{:x}\r\n", 64 * kKiB);
  chunk += std::string(64 * kKiB, 'b');
  chunk += "\r\n";
  bool closed = false;
  std::size_t sent = StreamUntilAnswer(
      conn, "PUT /kv/bomb HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n", chunk,
      64 * kMiB, &closed);
  RawResponse r = conn.ReadResponse(5s);
  INFO("sent " << sent / kKiB << " KiB of a 64 MiB chunked body; closed " << closed << "; "
               << r.Describe());
  std::printf("[adversarial] chunked 64 MiB body: refused after %zu KiB sent\n", sent / kKiB);
  CHECK(r.status == 413);
  CHECK(sent < 16 * kMiB);  // the value limit plus socket buffers, far from 64 MiB
  CHECK(conn.ClosedByPeer(5s));
  rss.CheckGrowth(16 * kMiB, "64 MiB chunked body");
  REQUIRE(n.client().Get("bomb").status == 404);
  n.RequireServing("chunked body past the limit");
}

TEST_CASE("adversarial: a PUT with neither Content-Length nor Transfer-Encoding has no body",
          "[http][adversarial]") {
  HttpNode n;
  KvClient c = n.client();
  PutOk(c, "nolen", "before");
  RawConnection conn(n.port());
  // The bytes after the head are the next request (RFC 9112 6.3: no length, no body),
  // here a malformed one.
  REQUIRE(conn.Send("PUT /kv/nolen HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nnot-a-request\r\n\r\n"));
  RawResponse r = conn.ReadResponse(5s);
  INFO("PUT without a length: " << r.Describe());
  REQUIRE((r.status == 200 || r.status == 411));
  if (r.status == 200) {
    RequireValue(c, "nolen", "");  // an empty value, never the following bytes
  } else {
    RequireValue(c, "nolen", "before");
  }
  RawResponse next = conn.ReadResponse(5s);
  INFO("the following bytes: " << next.Describe());
  CHECK((next.status == 400 || (next.status == 0 && next.raw.empty())));
  CHECK(conn.ClosedByPeer(5s));
  n.RequireServing("PUT without a length");
}

TEST_CASE("adversarial: compressed bodies are refused with 415, never decompressed",
          "[http][adversarial]") {
  HttpNode n;
  KvClient c = n.client();
  // A real gzip bomb when gzip is installed: 256 MiB of zeros in about 256 KiB.
  std::string bomb;
  if (FILE* p = ::popen("head -c 268435456 /dev/zero | gzip -1 -c 2>/dev/null", "r")) {
    char buf[65536];
    std::size_t got = 0;
    while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) bomb.append(buf, got);
    ::pclose(p);
  }
  if (bomb.size() < 2 || bomb.size() > kMiB) bomb = "\x1f\x8b\x08\x00" + std::string(1000, 'z');
  RssSampler rss(n.node());
  for (const char* encoding : {"gzip", "deflate", "br", "gzip, identity"}) {
    RawConnection conn(n.port());
    conn.Send(Put("/kv/zipped", bomb, fmt::format("Content-Encoding: {}\r\n", encoding)));
    RawResponse r = conn.ReadResponse(5s);
    INFO("Content-Encoding: " << encoding << " (" << bomb.size() << " bytes): " << r.Describe());
    CHECK(r.status == 415);
    CHECK(nlohmann::json::parse(r.body, nullptr, false).contains("error"));
  }
  rss.CheckGrowth(16 * kMiB, "gzip bodies");
  REQUIRE(c.Get("zipped").status == 404);
  // identity is no encoding at all.
  RawResponse r = Exchange(n.port(), Put("/kv/plain", "raw", "Content-Encoding: identity\r\n"));
  INFO(r.Describe());
  CHECK(r.status == 200);
  n.RequireServing("gzip bodies");
}

TEST_CASE("adversarial: Range is ignored: a full 200 answer", "[http][adversarial]") {
  HttpNode n;
  const std::string value = PatternValue(kMiB, 'r');
  PutOk(n.client(), "ranged", value);
  std::string ranges = "bytes=0-";
  for (int i = 0; i < 1500; ++i) ranges += ",0-";
  RssSampler rss(n.node());
  for (const std::string& range : {ranges, std::string("bytes=0-9"), std::string("bytes=-1")}) {
    RawConnection conn(n.port());
    conn.Send(Get("/kv/ranged", "Range: " + range + "\r\n"));
    RawResponse r = conn.ReadResponse(10s);
    INFO("Range: " << range.substr(0, 40) << " (" << range.size() << " bytes): status " << r.status
                   << ", " << r.body.size() << " bytes");
    REQUIRE(r.status == 200);
    CHECK(r.Header("content-range").empty());
    REQUIRE(r.body.size() == kMiB);
    REQUIRE(r.body == value);
  }
  rss.CheckGrowth(16 * kMiB, "Range GETs of a 1 MiB value");
  n.RequireServing("Range");
}

TEST_CASE("adversarial: form-looking bodies are stored as raw values", "[http][adversarial]") {
  HttpNode n;
  KvClient c = n.client();
  PutOk(c, "bait", "original");
  HttpReply r = c.Request("PUT", "/kv/bait", "prev_value=x", "application/x-www-form-urlencoded");
  INFO(r.Describe());
  REQUIRE(r.status == 200);  // not a compare-and-set (that would be 412)
  RequireValue(c, "bait", "prev_value=x");

  const std::string big = PatternValue(100 * kKiB, 'f');
  r = c.Request("PUT", "/kv/form-big", big, "application/x-www-form-urlencoded");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  RequireValue(c, "form-big", big);

  const std::string multipart =
      "--b\r\nContent-Disposition: form-data; name=\"prev_value\"\r\n\r\nx\r\n--b--\r\n";
  r = c.Request("PUT", "/kv/multi", multipart, "multipart/form-data; boundary=b");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  RequireValue(c, "multi", multipart);

  // prev_value still works from the query string.
  r = c.Request("PUT", "/kv/bait?prev_value=wrong", "y", "application/x-www-form-urlencoded");
  INFO(r.Describe());
  REQUIRE(r.status == 412);
  RequireValue(c, "bait", "prev_value=x");
  n.RequireServing("form bodies");
}

TEST_CASE("adversarial: oversized and malformed request heads", "[http][adversarial]") {
  HttpNode n;
  KvClient c = n.client();
  PutOk(c, "k", "v");
  RssSampler rss(n.node());

  SECTION("a header over -http-max-header-bytes: 431 + close; under it: 200") {
    RawConnection big(n.port());
    big.Send(Get("/kv/k", "X-Big: " + std::string(32 * kKiB, 'h') + "\r\n"));
    RawResponse r = big.ReadResponse(5s);
    INFO("32 KiB header: " << r.Describe());
    CHECK(r.status == 431);
    RequireClosed(big, r);
    r = Exchange(n.port(), Get("/kv/k", "X-Big: " + std::string(12 * kKiB, 'h') + "\r\n"));
    INFO("12 KiB header: " << r.Describe());
    CHECK(r.status == 200);
  }
  SECTION("many header lines: 431 past the limit; 200 small ones are fine") {
    std::string many;
    for (int i = 0; i < 3000; ++i) many += fmt::format("X-H-{}: v\r\n", i);
    RawConnection conn(n.port());
    conn.Send(Get("/kv/k", many));
    RawResponse r = conn.ReadResponse(5s);
    INFO("3000 header lines: " << r.Describe());
    CHECK(r.status == 431);
    CHECK(conn.ClosedByPeer(5s));
    std::string some;
    for (int i = 0; i < 200; ++i) some += fmt::format("X-H-{}: v\r\n", i);
    r = Exchange(n.port(), Get("/kv/k", some));
    INFO("200 header lines: " << r.Describe());
    CHECK(r.status == 200);
  }
  SECTION("a header line that never ends: 431 or close, early") {
    RawConnection conn(n.port());
    bool closed = false;
    std::size_t sent = StreamUntilAnswer(
        conn, "GET /kv/k HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ", std::string(64 * kKiB, 'e'),
        64 * kMiB, &closed);
    RawResponse r = conn.ReadResponse(2s);
    INFO("sent " << sent / kKiB << " KiB of one header line; closed " << closed << "; "
                 << r.Describe());
    CHECK((r.status == 431 || (r.status == 0 && closed)));
    CHECK(sent < 16 * kMiB);
    CHECK(conn.ClosedByPeer(5s));
  }
  SECTION("Transfer-Encoding with Content-Length: 400 + close") {
    RawConnection conn(n.port());
    conn.Send(
        "PUT /kv/smuggle HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    RawResponse r = conn.ReadResponse(5s);
    INFO(r.Describe());
    CHECK(r.status == 400);
    RequireClosed(conn, r);
    REQUIRE(c.Get("smuggle").status == 404);
  }
  SECTION("Transfer-Encoding other than chunked: 501") {
    for (const char* te : {"gzip, chunked", "identity", "chunked, gzip", "x-custom"}) {
      RawConnection conn(n.port());
      conn.Send(
          fmt::format("PUT /kv/te HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: {}\r\n\r\n"
                      "5\r\nhello\r\n0\r\n\r\n",
                      te));
      RawResponse r = conn.ReadResponse(5s);
      INFO("Transfer-Encoding: " << te << ": " << r.Describe());
      CHECK(r.status == 501);
    }
    REQUIRE(c.Get("te").status == 404);
  }
  SECTION("malformed request lines and headers: 400 + close") {
    for (const std::string& bad : {
             std::string("\x00\x01\x02garbage\xff\r\n\r\n", 15),
             std::string("GET\r\n\r\n"),
             std::string("GET /kv/k\r\n\r\n"),
             std::string("GET /kv/k HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n"),
             std::string("GET /kv/k HTTX/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
             std::string("GET /kv/k HTTP/1.1\r\nNo colon here\r\n\r\n"),
             std::string("GET /kv/k HTTP/1.1\r\nBad Name: x\r\n\r\n"),
             std::string("PUT /kv/bad HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n"),
             std::string("PUT /kv/bad HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n"
                         "Content-Length: 2\r\n\r\nab"),
             std::string(
                 "PUT /kv/bad HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "zz\r\nxx\r\n0\r\n\r\n"),
         }) {
      RawConnection conn(n.port());
      conn.Send(bad);
      RawResponse r = conn.ReadResponse(5s);
      INFO("sent " << Printable(bad) << ": " << r.Describe());
      CHECK(r.status == 400);
      CHECK(conn.ClosedByPeer(5s));
    }
    REQUIRE(c.Get("bad").status == 404);
  }
  rss.CheckGrowth(16 * kMiB, "oversized and malformed heads");
  RequireValue(c, "k", "v");
  n.RequireServing("oversized and malformed heads");
}

TEST_CASE("adversarial: slow clients are cut off at the head and body deadlines",
          "[http][adversarial][slow]") {
  HttpNode n({"-http-header-timeout-ms", "1000", "-http-body-timeout-ms", "1000",
              "-http-idle-timeout-ms", "5000"});
  RssSampler rss(n.node());

  SECTION("slowloris: heads trickled a byte at a time are closed with 408; /health is served") {
    constexpr int kSlow = 200;
    std::vector<std::unique_ptr<RawConnection>> slow;
    for (int i = 0; i < kSlow; ++i) {
      slow.push_back(std::make_unique<RawConnection>(n.port()));
      slow.back()->Send("GET /kv/k HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    }
    auto t0 = Clock::now();
    std::vector<Millis> closed_at(kSlow, Millis(-1));
    std::vector<int> status(kSlow, 0);
    int open = kSlow;
    Millis worst_health{0};
    int health_failures = 0;
    while (open > 0 && Since(t0) < 5000ms) {
      for (int i = 0; i < kSlow; ++i) {
        if (closed_at[i].count() >= 0) continue;
        long sent = slow[i]->SendSome("a");
        bool alive = sent >= 0 && slow[i]->Poll();
        if (slow[i]->HasResponse() && status[i] == 0) status[i] = slow[i]->ReadResponse(0ms).status;
        if (!alive) {
          closed_at[i] = Since(t0);
          --open;
        }
      }
      auto h0 = Clock::now();
      HttpReply h = KvClient(n.node().http_addr(), 2s).Health();
      worst_health = std::max(worst_health, Since(h0));
      if (h.status != 200) ++health_failures;
      std::this_thread::sleep_for(150ms);
    }
    INFO(open << " of " << kSlow << " slow connections still open after " << Since(t0).count()
              << " ms; slowest /health " << worst_health.count() << " ms");
    CHECK(health_failures == 0);
    CHECK(worst_health < 1000ms);
    REQUIRE(open == 0);
    Millis first = *std::min_element(closed_at.begin(), closed_at.end());
    Millis last = *std::max_element(closed_at.begin(), closed_at.end());
    INFO("closed between " << first.count() << " and " << last.count() << " ms");
    CHECK(first >= 700ms);  // not before the header deadline
    CHECK(last <= 3500ms);  // soon after it
    int answered_408 = static_cast<int>(std::count(status.begin(), status.end(), 408));
    INFO(answered_408 << " of " << kSlow << " got 408 before the close");
    CHECK(answered_408 > kSlow / 2);  // the others may lose it to the reset
    for (int s : status) CHECK((s == 0 || s == 408));
  }
  SECTION("a body that stalls is closed with 408 at the body deadline; nothing is stored") {
    RawConnection conn(n.port());
    conn.Send(
        "PUT /kv/stalled HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789");
    auto t0 = Clock::now();
    RawResponse r = conn.ReadResponse(5s);
    auto took = Since(t0);
    INFO(r.Describe() << " after " << took.count() << " ms");
    CHECK(r.status == 408);
    CHECK(took >= 700ms);
    CHECK(took < 3500ms);
    CHECK(conn.ClosedByPeer(3s));
    // Trickled: still cut at the deadline.
    RawConnection trickle(n.port());
    trickle.Send("PUT /kv/stalled HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n");
    t0 = Clock::now();
    while (Since(t0) < 4000ms && trickle.SendSome("x") >= 0 && trickle.Poll() &&
           !trickle.HasResponse()) {
      std::this_thread::sleep_for(100ms);
    }
    took = Since(t0);
    r = trickle.ReadResponse(1s);
    INFO("trickled body: " << r.Describe() << " after " << took.count() << " ms");
    CHECK(r.status == 408);
    CHECK(took < 3500ms);
    REQUIRE(n.client().Get("stalled").status == 404);
  }
  SECTION("on a keep-alive connection the head deadline starts at its first byte") {
    RawConnection conn(n.port());
    REQUIRE(conn.Send(Get("/health")));
    REQUIRE(conn.ReadResponse(5s).status == 200);
    std::this_thread::sleep_for(1500ms);  // idle, longer than the head deadline: still open
    REQUIRE(conn.Send("G"));
    auto t0 = Clock::now();
    RawResponse r = conn.ReadResponse(5s);
    auto took = Since(t0);
    INFO(r.Describe() << " after " << took.count() << " ms");
    CHECK(r.status == 408);
    CHECK(took >= 700ms);
    CHECK(took < 3500ms);
  }
  rss.CheckGrowth(16 * kMiB, "slow clients");
  n.RequireServing("slow clients");
}

TEST_CASE("adversarial: a connection flood evicts idle connections; normal clients are served",
          "[http][adversarial][slow]") {
  const rlim_t files = RaiseFileLimit();
  INFO("RLIMIT_NOFILE " << files);
  REQUIRE(files >= 2200);
  constexpr int kMaxConns = 500;
  constexpr int kFlood = 2000;
  HttpNode n({"-http-max-conns", std::to_string(kMaxConns)});
  RssSampler rss(n.node());

  SECTION("2,000 idle connections") {
    std::vector<std::unique_ptr<RawConnection>> flood;
    int refused = 0;
    auto t0 = Clock::now();
    for (int i = 0; i < kFlood; ++i) {
      auto conn = RawConnection::TryConnect(n.port(), 2s);
      if (conn) {
        flood.push_back(std::move(conn));
      } else {
        ++refused;
      }
    }
    std::printf("[adversarial] %d connections opened in %lld ms (%d failed)\n", kFlood,
                static_cast<long long>(Since(t0).count()), refused);
    CHECK(refused < kFlood / 10);
    n.RequireServing("2,000 idle connections");
    // At most -http-max-conns stay open: the others were evicted.
    std::size_t open = flood.size();
    bool capped = WaitUntil(5s, [&] {
      open = 0;
      for (auto& conn : flood) open += conn->Poll() ? 1 : 0;
      return open <= kMaxConns;
    });
    INFO(open << " of " << flood.size() << " flood connections still open");
    CHECK(capped);
    rss.CheckGrowth(32 * kMiB, "2,000 idle connections");
  }
  SECTION("-http-max-conns busy connections: a new one gets 503 + close") {
    // Each with a request in progress: a PUT whose body is still arriving (a connection
    // with only part of a head counts as idle: the server may evict it).
    std::vector<std::unique_ptr<RawConnection>> busy;
    for (int i = 0; i < kMaxConns; ++i) {
      auto conn = RawConnection::TryConnect(n.port(), 2s);
      REQUIRE(conn);
      conn->Send("PUT /kv/busy HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123");
      busy.push_back(std::move(conn));
    }
    std::this_thread::sleep_for(300ms);
    auto extra = RawConnection::TryConnect(n.port(), 2s);
    REQUIRE(extra);
    extra->Send(Get("/health"));
    RawResponse r = extra->ReadResponse(5s);
    INFO("connection " << kMaxConns + 1 << ": " << r.Describe());
    CHECK(r.status == 503);
    if (r.status == 503) RequireClosed(*extra, r);
    busy.clear();
    rss.CheckGrowth(32 * kMiB, "busy connections at the cap");
    std::this_thread::sleep_for(200ms);
    n.RequireServing("busy connections at the cap");
  }
}

TEST_CASE("adversarial: a client that pipelines 1,000 requests and never reads",
          "[http][adversarial]") {
  HttpNode n;  // -http-pipeline-depth 16
  const std::string value = PatternValue(256 * kKiB, 'p');
  PutOk(n.client(), "piped", value);
  RssSampler rss(n.node());
  auto conn = RawConnection::TryConnect(n.port(), 2s, /*rcvbuf_bytes=*/16 * 1024);
  REQUIRE(conn);
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += Get("/kv/piped");
  // Send what the server takes (it stops reading at the pipeline depth).
  std::size_t sent = 0;
  auto t0 = Clock::now();
  while (sent < batch.size() && Since(t0) < 2000ms) {
    long got = conn->SendSome(std::string_view(batch).substr(sent));
    if (got < 0) break;
    sent += static_cast<std::size_t>(got);
    if (got == 0) std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(1000ms);  // 1,000 answers of 256 KiB would be 250 MiB
  n.RequireServing("a pipelining client that never reads");
  rss.CheckGrowth(32 * kMiB, "1,000 pipelined GETs of 256 KiB, never read");
  // The answers still come, in order, once it reads.
  for (int i = 0; i < 20; ++i) {
    RawResponse r = conn->ReadResponse(10s);
    INFO("answer " << i << ": status " << r.status << ", " << r.body.size() << " bytes");
    REQUIRE(r.status == 200);
    REQUIRE(r.body == value);
  }
}

TEST_CASE("adversarial: 8 concurrent listings of large values stay within the byte budget",
          "[http][adversarial][slow]") {
  HttpNode n;  // -max-value-bytes 1 MiB, -max-list-bytes 1 MiB
  constexpr int kValues = 40;
  constexpr int kListers = 8;
  std::vector<std::string> keys;
  for (int i = 0; i < kValues; ++i) {
    keys.push_back(fmt::format("big/{:02}", i));
    PutOk(n.client(), keys.back(), PatternValue(kMiB, static_cast<char>(i)));
  }
  struct Seen {
    std::vector<std::string> keys;
    std::size_t pages = 0;
    std::size_t max_page_bytes = 0;
    std::size_t bad_values = 0;
    std::string error;
  };
  std::vector<Seen> seen(kListers);
  RssSampler rss(n.node());
  std::vector<std::thread> listers;
  for (int t = 0; t < kListers; ++t) {
    listers.emplace_back([&, t] {
      KvClient c(n.node().http_addr(), 30s);
      std::optional<std::string> after;
      for (int page = 0; page < 200; ++page) {
        HttpReply r = c.List("big/", 1000, after);
        if (r.status != 200) {
          seen[t].error = r.Describe();
          return;
        }
        auto doc = r.Json();
        if (!doc.is_object() || !doc["items"].is_array() || !doc.contains("next")) {
          seen[t].error = "not a listing: " + r.Describe();
          return;
        }
        ++seen[t].pages;
        std::size_t bytes = 0;
        for (const auto& item : doc["items"]) {
          std::string k = item.value("key", std::string());
          std::string v = item.value("value", std::string());
          bytes += k.size() + v.size();
          int index = std::atoi(k.c_str() + 4);
          if (v != PatternValue(kMiB, static_cast<char>(index))) ++seen[t].bad_values;
          seen[t].keys.push_back(k);
        }
        seen[t].max_page_bytes = std::max(seen[t].max_page_bytes, bytes);
        if (doc["next"].is_null()) return;
        after = doc["next"].get<std::string>();
      }
      seen[t].error = "no end after 200 pages";
    });
  }
  for (auto& th : listers) th.join();
  rss.CheckGrowth(64 * kMiB, "8 concurrent listings of 40 x 1 MiB");
  for (int t = 0; t < kListers; ++t) {
    INFO("lister " << t << ": " << seen[t].error << "; " << seen[t].pages << " pages, largest "
                   << seen[t].max_page_bytes << " bytes");
    REQUIRE(seen[t].error.empty());
    CHECK(seen[t].keys == keys);  // every key exactly once, in order
    CHECK(seen[t].bad_values == 0);
    CHECK(seen[t].pages > 1);  // the byte budget cut pages (limit=1000 allowed all 40)
    CHECK(seen[t].max_page_bytes <= 2 * kMiB + kKiB);
  }
  n.RequireServing("concurrent listings");
}

TEST_CASE("adversarial: Origin (browsers) gets 403; control-plane POSTs need JSON (415)",
          "[http][adversarial]") {
  HttpNode n;
  KvClient c = n.client();
  PutOk(c, "k", "v");
  const std::multimap<std::string, std::string> origin = {{"Origin", "http://evil.example"}};
  HttpReply r = c.Request("GET", "/kv/k", "", "", origin);
  INFO(r.Describe());
  CHECK(r.status == 403);
  CHECK(r.Json().contains("error"));
  r = c.Request("PUT", "/kv/from-browser", "x", "text/plain", origin);
  INFO(r.Describe());
  CHECK(r.status == 403);
  REQUIRE(c.Get("from-browser").status == 404);
  r = c.Request("POST", "/leave", "{\"id\": \"node0\"}", "application/json", origin);
  INFO(r.Describe());
  CHECK(r.status == 403);

  const std::string join =
      R"({"id": "n9", "raft_addr": "127.0.0.1:1", "http_addr": "127.0.0.1:2"})";
  for (const auto& [target, body] :
       std::vector<std::pair<std::string, std::string>>{{"/join", join},
                                                        {"/leave", R"({"id": "n9"})"},
                                                        {"/transfer-leader", R"({"id": "n9"})"}}) {
    for (const char* type : {"text/plain", "application/x-www-form-urlencoded", ""}) {
      r = c.Request("POST", target, body, type);
      INFO("POST " << target << " Content-Type '" << type << "': " << r.Describe());
      CHECK(r.status == 415);
      CHECK(r.Json().contains("error"));
    }
  }
  // Nothing joined.
  auto members = Members(n.node().StatusJson());
  CHECK(members.size() == 1);
  n.RequireServing("Origin and content types");
}

TEST_CASE("adversarial: SIGTERM while slow clients hold connections: 503, clean exit",
          "[http][adversarial]") {
  HttpNode n;
  PutOk(n.client(), "durable", "yes");
  RawConnection slow_head(n.port());
  slow_head.Send("GET /kv/k HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
  RawConnection slow_body(n.port());
  slow_body.Send(
      "PUT /kv/partial HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789");
  RawConnection keep_alive(n.port());
  REQUIRE(keep_alive.Send(Get("/health")));
  REQUIRE(keep_alive.ReadResponse(5s).status == 200);

  auto t0 = Clock::now();
  n.node().Signal(SIGTERM);
  std::this_thread::sleep_for(100ms);
  // A request after SIGTERM: 503 + close, or the connection is already closed.
  if (keep_alive.Send(Get("/kv/durable"))) {
    RawResponse r = keep_alive.ReadResponse(5s);
    INFO("request on a keep-alive connection after SIGTERM: " << r.Describe());
    CHECK((r.status == 503 || (r.status == 0 && r.raw.empty())));
    if (r.status == 503) CHECK(Lower(r.Header("connection")) == "close");
  }
  if (auto fresh = RawConnection::TryConnect(n.port(), 1s)) {
    fresh->Send(Get("/kv/durable"));
    RawResponse r = fresh->ReadResponse(5s);
    INFO("new connection after SIGTERM: " << r.Describe());
    CHECK((r.status == 503 || (r.status == 0 && r.raw.empty())));
  }
  // The slow clients neither send nor close: shutdown must not wait for them.
  std::optional<int> code = n.node().WaitExit(10s);
  auto took = Since(t0);
  INFO("exit " << code.value_or(-1) << " after " << took.count() << " ms; log tail:\n"
               << n.node().LogTail(20));
  if (!code) n.node().Kill();
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  // The drain waits only for requests already handed to Raft: a head or body still
  // arriving is answered 503 at once.
  CHECK(took < 4000ms);
  RawResponse body_answer = slow_body.ReadResponse(2s);
  INFO("the client whose body was still arriving: " << body_answer.Describe());
  CHECK(body_answer.status == 503);
  std::printf("[adversarial] SIGTERM with slow clients: exit %d after %lld ms\n", *code,
              static_cast<long long>(took.count()));
  // Restarts with its data.
  n.node().Start();
  n.node().WaitServing();
  RequireValue(n.client(), "durable", "yes");
  REQUIRE(n.client().Get("partial").status == 404);
}

// ---------------------------------------------------------------------------------------
// kvctl: a write is never re-sent to another node once it may have been sent.

std::string KvctlBinary() {
  if (const char* env = std::getenv("KVCTL_BIN"); env != nullptr && *env != '\0') return env;
  return KVCTL_BIN;
}

using KvctlRun = CommandRun;  // output: stdout and stderr

KvctlRun RunKvctl(const std::string& args) {
  std::string cmd = KvctlBinary();
  cmd += " -timeout-ms 3000 ";
  cmd += args;
  cmd += " 2>&1";
  return RunCommand(cmd);
}

// A fake node on a loopback port: it accepts connections, reads each request head (and
// the Content-Length body), then either answers `answer` or, when it is empty, closes
// without answering. Counts the requests it got. Its own thread; no Catch2 there.
class FakeNode {
 public:
  explicit FakeNode(std::string answer) : answer_(std::move(answer)), port_(PickFreePort()) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port_);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeNode() {
    stop_.store(true);
    thread_.join();
    ::close(fd_);
  }
  FakeNode(const FakeNode&) = delete;
  FakeNode& operator=(const FakeNode&) = delete;

  std::string addr() const { return fmt::format("127.0.0.1:{}", port_); }
  int requests() const { return requests_.load(); }

 private:
  void Serve() {
    while (!stop_.load()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string in;
      char buf[4096];
      auto deadline = Clock::now() + 2s;
      while (Clock::now() < deadline) {
        auto end = in.find("\r\n\r\n");
        if (end != std::string::npos) {
          std::string head = Lower(in.substr(0, end));
          auto cl = head.find("content-length:");
          std::size_t body =
              cl == std::string::npos ? 0 : std::strtoul(head.c_str() + cl + 15, nullptr, 10);
          if (in.size() >= end + 4 + body) break;
        }
        pollfd cp{c, POLLIN, 0};
        if (::poll(&cp, 1, 50) <= 0) continue;
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
      }
      if (in.rfind("GET /status", 0) != 0) ++requests_;
      if (!answer_.empty()) ::send(c, answer_.data(), answer_.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  std::string answer_;
  std::uint16_t port_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST_CASE("kvctl: a write whose answer was lost is not re-sent (outcome unknown)", "[kvctl]") {
  HttpNode n;
  KvClient c = n.client();
  const std::string real = n.node().http_addr();

  SECTION("the request was sent and no answer came back: outcome unknown, exit 1") {
    FakeNode lost("");
    for (const std::string& cmd : {std::string("put k1 v1"), std::string("del k1"),
                                   std::string("cas k1 v0 v1"), std::string("create k1 v1")}) {
      int before = lost.requests();
      KvctlRun run = RunKvctl(fmt::format("-addr {},{} {}", lost.addr(), real, cmd));
      INFO("kvctl " << cmd << ": exit " << run.exit_code << ": " << run.output);
      CHECK(run.exit_code != 0);
      CHECK(run.output.find("outcome unknown") != std::string::npos);
      CHECK(lost.requests() == before + 1);  // sent once, to the first node only
      REQUIRE(c.Get("k1").status == 404);    // never re-sent to the real node
    }
    // Reads may move on.
    PutOk(c, "r1", "read-me");
    KvctlRun run = RunKvctl(fmt::format("-addr {},{} get r1", lost.addr(), real));
    INFO("kvctl get: exit " << run.exit_code << ": " << run.output);
    CHECK(run.exit_code == 0);
    CHECK(run.output == "read-me\n");
  }
  SECTION("nothing was sent (connection refused) or 503: the next node takes the write") {
    const std::string refused = fmt::format("127.0.0.1:{}", PickFreePort());
    KvctlRun run = RunKvctl(fmt::format("-addr {},{} put k2 v2", refused, real));
    INFO("kvctl put via a refusing node: exit " << run.exit_code << ": " << run.output);
    CHECK(run.exit_code == 0);
    RequireValue(c, "k2", "v2");

    const std::string body = R"({"error": "no leader"})";
    FakeNode busy(
        fmt::format("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    "Retry-After: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    body.size(), body));
    run = RunKvctl(fmt::format("-addr {},{} put k3 v3", busy.addr(), real));
    INFO("kvctl put via a node answering 503: exit " << run.exit_code << ": " << run.output);
    CHECK(run.exit_code == 0);
    CHECK(busy.requests() == 1);
    RequireValue(c, "k3", "v3");
  }
}

}  // namespace
}  // namespace kvtest
