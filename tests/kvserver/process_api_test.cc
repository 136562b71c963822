// kvserver's HTTP API semantics (docs/http-api.md) and its robustness against malformed
// input on both ports, against real processes. Semantics are checked on a one-node
// cluster (forwarding is covered by process_cluster_test.cc); the Raft-port test uses three.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <future>
#include <map>
#include <random>
#include <thread>

#include "base/crc32c.h"
#include "process_harness.h"
#include "raft/coding.h"

namespace kvtest {
namespace {

using raft::base::Crc32c;

constexpr int kMaxValueBytes = 1024;

// One bootstrapped node with a small value limit.
struct SingleNode {
  ProcessCluster cluster{{.extra_args = {"-max-value-bytes", std::to_string(kMaxValueBytes)}}};
  SingleNode() { cluster.Start(1); }
  NodeProcess& node() { return cluster.node(0); }
  KvClient client() { return cluster.node(0).Client(); }

  // The node is alive and still serves reads and writes.
  void RequireServing(const std::string& after) {
    INFO("after: " << after);
    bool alive = node().Alive();
    INFO("exit code " << node().last_exit().value_or(-1) << "; log tail:\n" << node().LogTail(10));
    REQUIRE(alive);
    HttpReply h = client().Health();
    INFO("GET /health: " << h.Describe());
    REQUIRE(h.status == 200);
    static int n = 0;
    std::string key = fmt::format("alive/{}", n++);
    PutOk(client(), key, after);
    RequireValue(client(), key, after);
  }
};

TEST_CASE("compare-and-set: 412 with the current value; prev_exist=false", "[api]") {
  SingleNode s;
  KvClient c = s.client();

  HttpReply r = c.Put("k", "v1");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  std::uint64_t index1 = JsonU64(r.Json(), "index");
  CHECK(index1 > 0);  // the write's log index (docs/http-api.md)

  r = c.Cas("k", "wrong", "v2");
  INFO(r.Describe());
  REQUIRE(r.status == 412);
  auto doc = r.Json();
  REQUIRE(doc.is_object());
  REQUIRE(doc.value("error", std::string()) == "compare failed");
  REQUIRE(doc.value("current", std::string()) == "v1");
  RequireValue(c, "k", "v1");

  r = c.Cas("k", "v1", "v2");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  CHECK(JsonU64(r.Json(), "index") > index1);
  REQUIRE(r.Json().value("prev_value", std::string()) == "v1");
  RequireValue(c, "k", "v2");

  // The expected value is compared byte for byte (percent-encoded in the query).
  const std::string odd = std::string("a b&c=d+e%\0f", 12);
  PutOk(c, "odd", odd);
  r = c.Cas("odd", odd, "swapped");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  RequireValue(c, "odd", "swapped");

  // CAS on an absent key fails with current = null and does not create it.
  r = c.Cas("absent", "x", "y");
  INFO(r.Describe());
  REQUIRE(r.status == 412);
  REQUIRE(r.Json().contains("current"));
  REQUIRE(r.Json()["current"].is_null());
  REQUIRE(c.Get("absent").status == 404);

  // prev_exist=false: create only if absent.
  r = c.PutIfAbsent("fresh", "first");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  r = c.PutIfAbsent("fresh", "second");
  INFO(r.Describe());
  REQUIRE(r.status == 412);
  RequireValue(c, "fresh", "first");
  r = c.PutIfAbsent("k", "clobber");
  INFO(r.Describe());
  REQUIRE(r.status == 412);
  RequireValue(c, "k", "v2");
  // After a delete the key is absent again.
  REQUIRE(c.Del("fresh").status == 200);
  r = c.PutIfAbsent("fresh", "third");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  RequireValue(c, "fresh", "third");

  // An empty expected value is not "absent": it matches only an empty value.
  PutOk(c, "empty", "");
  RequireValue(c, "empty", "");
  r = c.Cas("empty", "", "filled");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  r = c.Cas("never-set", "", "x");
  INFO(r.Describe());
  REQUIRE(r.status == 412);
}

TEST_CASE("DELETE removes a key and reports whether it existed", "[api]") {
  SingleNode s;
  KvClient c = s.client();
  PutOk(c, "d", "1");
  HttpReply r = c.Del("d");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  auto doc = r.Json();
  REQUIRE(doc.value("deleted", false) == true);
  CHECK(JsonU64(doc, "index") > 0);

  r = c.Get("d");
  INFO(r.Describe());
  REQUIRE(r.status == 404);
  REQUIRE(r.Json().value("error", std::string()) == "key not found");
  REQUIRE(c.Get("d", /*stale=*/true).status == 404);

  r = c.Del("d");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  REQUIRE(r.Json().value("deleted", true) == false);

  // Deleted keys vanish from listings.
  PutOk(c, "d", "again");
  PutOk(c, "d2", "x");
  REQUIRE(c.Del("d").status == 200);
  r = c.List("d");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  REQUIRE(r.Json()["items"].size() == 1);
  REQUIRE(r.Json()["items"][0].value("key", std::string()) == "d2");
}

// All keys of a listing, following `next` pages of `limit`.
std::vector<std::pair<std::string, std::string>> ListAll(const KvClient& c,
                                                         const std::string& prefix, int limit,
                                                         std::vector<std::size_t>* pages,
                                                         std::string_view extra = {}) {
  std::vector<std::pair<std::string, std::string>> out;
  std::optional<std::string> after;
  bool base64 = extra.find("base64") != std::string_view::npos;
  for (int page = 0; page < 100; ++page) {
    HttpReply r = c.List(prefix, limit, after, extra);
    INFO("GET /kv?prefix=" << prefix << " page " << page << ": " << r.Describe());
    REQUIRE(r.status == 200);
    auto doc = r.Json();
    REQUIRE(doc.is_object());
    REQUIRE(doc["items"].is_array());
    if (pages) pages->push_back(doc["items"].size());
    for (const auto& item : doc["items"]) {
      std::string k = item.value("key", std::string());
      std::string v = item.value("value", std::string());
      if (base64) {
        k = Base64Decode(k);
        v = Base64Decode(v);
      }
      out.emplace_back(k, v);
    }
    REQUIRE(doc.contains("next"));
    if (doc["next"].is_null()) return out;
    std::string next = doc["next"].get<std::string>();
    REQUIRE(!doc["items"].empty());
    REQUIRE(next == doc["items"].back().value("key", std::string()));
    after = base64 ? Base64Decode(next) : next;
  }
  FAIL("listing did not end after 100 pages");
  return out;
}

TEST_CASE("prefix listing: byte order, pagination, limits", "[api][list]") {
  SingleNode s;
  KvClient c = s.client();
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 25; ++i) {
    std::string key = fmt::format("list/{:02}", i);
    expected[key] = fmt::format("value-{}", i);
  }
  // Keys around the prefix that must not appear.
  for (const char* k : {"list", "lisa/x", "lisu", "list0", "m"}) PutOk(c, k, "outside");
  // Written out of order.
  for (auto it = expected.rbegin(); it != expected.rend(); ++it) PutOk(c, it->first, it->second);

  std::vector<std::size_t> pages;
  auto all = ListAll(c, "list/", 10, &pages);
  REQUIRE(pages == std::vector<std::size_t>{10, 10, 5});
  REQUIRE(all ==
          std::vector<std::pair<std::string, std::string>>(expected.begin(), expected.end()));

  // Byte order, not locale order; binary keys listed exactly with encoding=base64.
  std::vector<std::string> ord = {"ord/0",
                                  "ord/B",
                                  "ord/a",
                                  "ord/b",
                                  "ord/\x7f",
                                  "ord/\xc3\xa9",
                                  std::string("ord/\xff\x00", 6)};
  for (auto it = ord.rbegin(); it != ord.rend(); ++it) PutOk(c, *it, "o");
  auto listed = ListAll(c, "ord/", 3, nullptr, "encoding=base64");
  std::vector<std::string> keys;
  for (const auto& [k, v] : listed) keys.push_back(k);
  {
    std::vector<std::string> shown;
    for (const auto& k : keys) shown.push_back(Printable(k));
    INFO("listed: " << fmt::format("{}", fmt::join(shown, ", ")));
    REQUIRE(keys == ord);
  }
  // Text mode cannot name "ord/\xff\0" (security review F-18): the page ends before it
  // (its `next` is exact), and a page that would start with it is refused, never a
  // U+FFFD cursor that resumes elsewhere.
  {
    HttpReply r = c.List("ord/", 10);
    INFO(r.Describe());
    REQUIRE(r.status == 200);
    auto doc = r.Json();
    REQUIRE(doc["items"].size() == 6);
    REQUIRE(doc["items"][5]["key"] == "ord/\xc3\xa9");
    REQUIRE(doc["next"] == "ord/\xc3\xa9");
    r = c.List("ord/", 10, std::string("ord/\xc3\xa9"));
    INFO(r.Describe());
    REQUIRE(r.status == 400);
    REQUIRE(r.body.find("encoding=base64") != std::string::npos);
  }

  // Default limit 100; the maximum of 1000 is accepted.
  for (int i = 0; i < 105; ++i) PutOk(c, fmt::format("many/{:03}", i), "m");
  {
    HttpReply r = c.List("many/");
    INFO(r.Describe().substr(0, 300));
    REQUIRE(r.status == 200);
    REQUIRE(r.Json()["items"].size() == 100);
    REQUIRE(r.Json()["next"] == "many/099");
    r = c.List("many/", 1000);
    REQUIRE(r.status == 200);
    REQUIRE(r.Json()["items"].size() == 105);
    REQUIRE(r.Json()["next"].is_null());
  }

  // Stale listing works too; an empty prefix lists everything.
  HttpReply r = c.List("list/", 5, std::nullopt, "consistency=stale");
  REQUIRE(r.status == 200);
  REQUIRE(r.Json()["items"].size() == 5);
  r = c.List("", 2);
  REQUIRE(r.status == 200);
  REQUIRE(r.Json()["items"].size() == 2);

  // Malformed parameters: 400.
  for (const char* target : {"/kv?prefix=list/&limit=abc", "/kv?prefix=list/&limit=-1",
                             "/kv?prefix=list/&limit=1x", "/kv?prefix=%zz"}) {
    r = c.Request("GET", target);
    INFO("GET " << target << ": " << r.Describe());
    CHECK(r.status == 400);
  }
}

TEST_CASE("keys with '/' and percent-encoded bytes", "[api][keys]") {
  SingleNode s;
  KvClient c = s.client();

  // A literal '/' in the path and %2F are the same key.
  HttpReply r = c.Request("PUT", "/kv/a/b/c", "slashes");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  RequireValue(c, "a/b/c", "slashes");  // sent as a%2Fb%2Fc
  r = c.Request("GET", "/kv/a/b/c");
  REQUIRE(r.status == 200);
  REQUIRE(r.body == "slashes");
  REQUIRE(c.Get("a/b").status == 404);

  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  std::vector<std::string> keys = {
      "sp ace",       "pct%25",      "q?x&y=z#h", "plus+sign", std::string("nul\0in", 6),
      "\xff\xfe\x80", "caf\xc3\xa9", "\r\n",      "..",        "-._~",
      "trailing/",    "/leading",    "a//b",      "%",
  };
  std::vector<std::string> stored;  // keys whose PUT succeeded (failures are reported)
  for (const auto& k : keys) {
    HttpReply put = c.Put(k, "v:" + k);
    INFO("PUT key " << Printable(k) << ": " << put.Describe());
    CHECK(put.status == 200);
    if (put.status != 200) continue;
    stored.push_back(k);
    HttpReply get = c.Get(k);
    INFO("GET key " << Printable(k) << ": " << get.Describe());
    CHECK(get.status == 200);
    CHECK(get.body == "v:" + k);
  }
  // Values are raw bytes.
  PutOk(c, "binary", all_bytes);
  RequireValue(c, "binary", all_bytes);
  r = c.Get("binary");
  CHECK(r.content_type.find("application/octet-stream") != std::string::npos);

  // The listing returns the decoded keys exactly.
  auto listed = ListAll(c, "", 1000, nullptr, "encoding=base64");
  std::map<std::string, std::string> got(listed.begin(), listed.end());
  for (const auto& k : stored) {
    INFO("key " << Printable(k));
    REQUIRE(got.count(k) == 1);
    REQUIRE(got[k] == "v:" + k);
  }
  REQUIRE(got["binary"] == all_bytes);

  // Empty key: 400. Key over -max-key-bytes (default 1024): 413; at the limit: fine.
  for (const char* method : {"PUT", "GET", "DELETE"}) {
    r = c.Request(method, "/kv/", "x");
    INFO(method << " /kv/: " << r.Describe());
    CHECK(r.status == 400);
  }
  PutOk(c, std::string(1024, 'k'), "max");
  r = c.Put(std::string(1025, 'k'), "over");
  INFO(r.Describe());
  REQUIRE(r.status == 413);

  // A raw '#' is part of the key (security review F-20: httplib cut the key there).
  r = c.Request("PUT", "/kv/frag#ment", "hash");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  RequireValue(c, "frag#ment", "hash");
  REQUIRE(c.Get("frag").status == 404);
}

TEST_CASE("a wrong method on a known route is 405, an unknown route 404", "[api]") {
  SingleNode s;
  KvClient c = s.client();
  const std::vector<std::pair<std::string, std::string>> wrong = {
      {"POST", "/kv/k"},      {"PATCH", "/kv/k"},         {"PUT", "/kv"},     {"POST", "/status"},
      {"DELETE", "/metrics"}, {"PUT", "/health"},         {"POST", "/livez"}, {"GET", "/join"},
      {"GET", "/leave"},      {"GET", "/transfer-leader"}};
  for (const auto& [method, target] : wrong) {
    HttpReply r = c.Request(method, target, "{}", "application/json");
    INFO(method << " " << target << ": " << r.Describe());
    CHECK(r.status == 405);
  }
  HttpReply r = c.Request("GET", "/nope");
  INFO(r.Describe());
  CHECK(r.status == 404);
}

TEST_CASE("malformed HTTP requests get 4xx and the node keeps serving", "[api][robustness]") {
  SingleNode s;
  KvClient c = s.client();
  PutOk(c, "k", "v");

  SECTION("garbage on the HTTP port") {
    for (std::string garbage :
         {std::string("\x00\x01\x02garbage\xff\r\n\r\n", 15), std::string("GET\r\n\r\n"),
          std::string("HELLO /kv/k HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
          // Invalid framing must not be executed as a write (RFC 9112 6.3: 400).
          std::string(
              "PUT /kv/bad-length HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n"),
          std::string("PUT /kv/bad-length HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n"
                      "Content-Length: 2\r\n\r\nab"),
          std::string(
              "PUT /kv/bad-chunks HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              "zz\r\nxx\r\n0\r\n\r\n")}) {
      RawConnection conn(s.node().http_port());
      conn.Send(garbage);
      std::string response = conn.ReadHttpResponse(3s);
      INFO("sent " << Printable(garbage) << "; got " << Printable(response.substr(0, 200)));
      int status = RawStatus(response);
      CHECK(status >= 400);
      CHECK(status < 500);
      // Malformed framing (everything but the unknown method): 400 + close.
      if (garbage.rfind("HELLO", 0) != 0) {
        CHECK(status == 400);
        CHECK(conn.ClosedByPeer(5s));
      }
      s.RequireServing("garbage " + Printable(garbage.substr(0, 10)));
    }
    RequireValue(c, "k", "v");
    for (const char* key : {"bad-length", "bad-chunks"}) {
      HttpReply r = c.Get(key);
      INFO("GET " << key << " after malformed PUTs: " << r.Describe());
      CHECK(r.status == 404);
    }
  }

  SECTION("bad percent-encoding in keys: 400") {
    for (const char* target : {"/kv/%zz", "/kv/%4", "/kv/%", "/kv/ab%g1"}) {
      for (const char* method : {"GET", "PUT", "DELETE"}) {
        HttpReply r = c.Request(method, target, "x");
        INFO(method << " " << target << ": " << r.Describe());
        CHECK(r.status == 400);
      }
    }
    REQUIRE(c.Get("%").status == 404);  // nothing was written under a half-decoded key
    s.RequireServing("bad percent-encoding");
  }

  SECTION("oversized values and bodies: 413") {
    PutOk(c, "at-limit", std::string(kMaxValueBytes, 'v'));
    HttpReply r = c.Put("over-limit", std::string(kMaxValueBytes + 1, 'v'));
    INFO(r.Describe());
    REQUIRE(r.status == 413);
    REQUIRE(c.Get("over-limit").status == 404);
    // A huge declared body is refused at the head: 413 + close; never buffered, never
    // written.
    {
      RawConnection conn(s.node().http_port());
      conn.Send("PUT /kv/huge HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1073741824\r\n\r\n");
      conn.Send(std::string(64 * 1024, 'x'));
      std::string response = conn.ReadHttpResponse(2s);
      INFO("1 GiB Content-Length: " << Printable(response.substr(0, 200)));
      CHECK(RawStatus(response) == 413);
      CHECK(conn.ClosedByPeer(5s));
    }
    REQUIRE(c.Get("huge").status == 404);
    // An oversized CAS value too.
    r = c.Cas("k", "v", std::string(kMaxValueBytes + 1, 'v'));
    INFO(r.Describe());
    CHECK(r.status == 413);
    RequireValue(c, "k", "v");
    s.RequireServing("oversized bodies");
  }

  SECTION("unknown routes and methods") {
    for (auto [method, target] : std::vector<std::pair<const char*, const char*>>{
             {"GET", "/nope"}, {"GET", "/"}, {"GET", "/kvx/a"}, {"DELETE", "/nope"}}) {
      HttpReply r = c.Request(method, target);
      INFO(method << " " << target << ": " << r.Describe());
      CHECK(r.status == 404);
    }
    for (auto [method, target] : std::vector<std::pair<const char*, const char*>>{
             {"POST", "/kv/a"}, {"PATCH", "/kv/a"}, {"DELETE", "/status"}, {"POST", "/status"}}) {
      HttpReply r = c.Request(method, target);
      INFO(method << " " << target << ": " << r.Describe());
      CHECK(r.status >= 400);
      CHECK(r.status < 500);
    }
    s.RequireServing("unknown routes");
  }

  SECTION("malformed control-plane bodies: 400") {
    for (auto [target, body] :
         std::vector<std::pair<const char*, const char*>>{{"/join", "not json"},
                                                          {"/join", "{\"id\": 5}"},
                                                          {"/join", "{\"id\": \"n9\"}"},
                                                          {"/join", "[]"},
                                                          {"/leave", "{}"},
                                                          {"/leave", "{\"id\": "},
                                                          {"/transfer-leader", "{\"id\": [1]}"}}) {
      HttpReply r = c.Request("POST", target, body, "application/json");
      INFO("POST " << target << " " << body << ": " << r.Describe());
      CHECK(r.status == 400);
      CHECK(!r.Json().is_discarded());
    }
    s.RequireServing("malformed control-plane bodies");
  }

  SECTION("oversized headers") {
    RawConnection conn(s.node().http_port());
    conn.Send("GET /kv/k HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(256 * 1024, 'h') +
              "\r\n\r\n");
    std::string response = conn.ReadHttpResponse(5s);
    INFO("256 KiB header: " << Printable(response.substr(0, 200)));
    int status = RawStatus(response);
    // 431 (-http-max-header-bytes), or the connection closed without an answer (the
    // server may reset it while the rest of the header is still arriving).
    CHECK((status == 0 || status == 431));
    s.RequireServing("oversized header");
  }
  // Errors are JSON.
  HttpReply r = c.Get("missing");
  REQUIRE(r.status == 404);
  REQUIRE(r.Json().contains("error"));
}

TEST_CASE("slow clients do not exhaust the HTTP server", "[slowloris][api][robustness]") {
  SingleNode s;
  // Slowloris: more connections than any reasonable worker pool, each sending a request
  // head one byte every 300 ms, so no per-read timeout ever fires. Deterministic even when
  // connecting is slow (a full accept backlog delays SYNs by seconds).
  constexpr int kStalled = 100;
  std::vector<std::unique_ptr<RawConnection>> stalled;
  auto last_trickle = std::chrono::steady_clock::now();
  auto trickle = [&](bool force) {
    if (!force && std::chrono::steady_clock::now() - last_trickle < 300ms) return;
    for (auto& conn : stalled) conn->Send("a");
    last_trickle = std::chrono::steady_clock::now();
  };
  for (int i = 0; i < kStalled; ++i) {
    stalled.push_back(std::make_unique<RawConnection>(s.node().http_port()));
    stalled.back()->Send("GET /kv/k HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    trickle(false);
  }
  trickle(true);
  auto t0 = std::chrono::steady_clock::now();
  auto health =
      std::async(std::launch::async, [&] { return KvClient(s.node().http_addr(), 3s).Health(); });
  while (health.wait_for(100ms) != std::future_status::ready) trickle(false);
  HttpReply r = health.get();
  auto took = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - t0);
  INFO("GET /health with " << kStalled << " slowloris connections open: " << r.Describe()
                           << " after " << took.count() << " ms");
  REQUIRE(r.status == 200);
  stalled.clear();
  s.RequireServing("slow clients");
}

// A 20-byte frame header (docs/wire-protocol.md section 3) with a valid header CRC.
std::string FrameHeader(std::uint8_t type, std::uint32_t payload_len, std::uint32_t payload_crc,
                        std::uint8_t version = 1) {
  std::string h = "RAFT";
  h.push_back(static_cast<char>(version));
  h.push_back(static_cast<char>(type));
  h.append(2, '\0');  // flags
  raft::ByteWriter w(&h);
  w.U32(payload_len);
  w.U32(payload_crc);
  w.U32(Crc32c(h));
  return h;
}

TEST_CASE("garbage bytes on the Raft port are refused and the node keeps serving",
          "[cluster][robustness]") {
  REQUIRE(Crc32c("123456789") == 0xE3069283u);
  ProcessCluster cluster;
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  std::size_t follower = cluster.Follower(leader);

  std::mt19937 rng(42);
  std::string random_bytes(256 * 1024, '\0');
  for (auto& ch : random_bytes) ch = static_cast<char>(rng());
  std::string garbage_payload = "definitely not a handshake";
  const std::vector<std::pair<std::string, std::string>> inputs = {
      {"an HTTP request", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
      {"256 KiB of random bytes", random_bytes},
      {"magic, then a bad header CRC", "RAFT" + std::string(16, '\x01')},
      {"a frame claiming a 4 GiB payload", FrameHeader(1, 0xFFFFFFFFu, 0)},
      {"a frame of unknown type 99", FrameHeader(99, 0, 0)},
      {"a frame of version 7", FrameHeader(1, 0, 0, 7)},
      {"a handshake with a garbage payload",
       FrameHeader(1, static_cast<std::uint32_t>(garbage_payload.size()), Crc32c(garbage_payload)) +
           garbage_payload},
      {"a Raft message before any handshake",
       FrameHeader(4, static_cast<std::uint32_t>(garbage_payload.size()), Crc32c(garbage_payload)) +
           garbage_payload},
      {"a handshake with a wrong payload CRC",
       FrameHeader(1, static_cast<std::uint32_t>(garbage_payload.size()), 12345) + garbage_payload},
  };
  int k = 0;
  for (std::size_t target : {leader, follower}) {
    for (const auto& [what, bytes] : inputs) {
      RawConnection conn(cluster.node(target).raft_port());
      conn.Send(bytes);  // may fail half-way once the node closes: that is the point
      INFO("sent " << what << " to the Raft port of " << cluster.node(target).id());
      CHECK(conn.ClosedByPeer(5s));
      REQUIRE(cluster.node(target).Alive());
      PutOk(cluster.node(follower).Client(), fmt::format("after-garbage/{}", k++), what);
    }
  }
  // A connection that never sends anything must not block the real peers either.
  RawConnection idle(cluster.node(follower).raft_port());

  // The cluster is intact: same three voters, a leader, writes visible everywhere.
  cluster.WaitVoters(3);
  PutOk(cluster.node(leader).Client(), "final", "ok");
  for (std::size_t i = 0; i < 3; ++i) {
    REQUIRE(cluster.node(i).Alive());
    RequireValue(cluster.node(i).Client(), "final", "ok");
    RequireValue(cluster.node(i).Client(), "after-garbage/0", inputs[0].first);
  }
}

}  // namespace
}  // namespace kvtest
