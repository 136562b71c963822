// kvserver pieces that need no process: flags, key decoding, log formatting.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "flags.h"
#include "http_util.h"
#include "kv_server.h"
#include "logger.h"
#include "quota.h"
#include "utf8.h"

namespace kv {

TEST_CASE("flags accept the Go syntax and the GNU syntax", "[kvserver][flags]") {
  auto f = ParseServerFlags({"-id", "node1", "-laddr", "127.0.0.1:3001", "--raddr=127.0.0.1:4001",
                             "-join", "127.0.0.1:3000", "--log-json", "-tick-ms=20"});
  REQUIRE(f.ok());
  REQUIRE(f->id == "node1");
  REQUIRE(f->raddr == "127.0.0.1:4001");
  REQUIRE(f->join == "127.0.0.1:3000");
  REQUIRE(f->log_format == "json");
  REQUIRE(f->tick_ms == 20);
  REQUIRE(f->data == "./data/node1");
}

TEST_CASE("bad flags are refused with a message naming the flag", "[kvserver][flags]") {
  REQUIRE(ParseServerFlags({"-id", "a", "-bogus", "1"}).status().message() ==
          "unknown flag -bogus");
  REQUIRE(ParseServerFlags({"-id", "a", "-tick-ms", "fast"}).status().message().find("-tick-ms") !=
          std::string::npos);
  REQUIRE(ParseServerFlags({"-id"}).status().message() == "flag -id needs a value");
  REQUIRE(ParseServerFlags({"-laddr", "x:1"}).status().message() == "flag -id is required");
  REQUIRE_FALSE(ParseServerFlags({"-id", "a", "-laddr", "nohost"}).ok());
  // Names that travel in JSON must be UTF-8 (they made the join thread throw).
  REQUIRE(ParseServerFlags({"-id", "a\xff"}).status().message() == "-id must be valid UTF-8");
  REQUIRE(ParseServerFlags({"-id", "a", "-raddr", "h\xc3:1"}).status().message() ==
          "-raddr must be valid UTF-8");
  REQUIRE(ParseServerFlags({"--help"})->help);
  REQUIRE(ServerFlagsUsage().find("-snapshot-entries") != std::string::npos);
}

TEST_CASE("keys are strictly percent-decoded from the target", "[kvserver][http]") {
  auto key = [](std::string_view target) -> std::optional<std::string> {
    auto t = ParseTarget(target);
    if (!t) return std::nullopt;
    return KeyFromPath(t->path);
  };
  REQUIRE(key("/kv/a%2Fb?x=1") == "a/b");
  REQUIRE(key("/kv/a/b") == "a/b");
  REQUIRE(key("/kv/%00%ff") == std::string("\0\xff", 2));
  REQUIRE_FALSE(key("/kv/"));
  REQUIRE_FALSE(key("/kv/%zz"));
  REQUIRE_FALSE(key("/kv/abc%4"));
  REQUIRE(PercentDecode(PercentEncode(std::string("\x01 /?%", 5))) == std::string("\x01 /?%", 5));
  REQUIRE(Base64("foobar") == "Zm9vYmFy");
  REQUIRE(Base64("fo") == "Zm8=");
  // Base64Decode reads back what Base64 writes (every length mod 3, every byte value) and
  // refuses anything else.
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  for (std::size_t n : {0, 1, 2, 3, 4, 5, 255, 256}) {
    INFO(n);
    CHECK(Base64Decode(Base64(all_bytes.substr(0, n))) == all_bytes.substr(0, n));
  }
  CHECK(Base64Decode("Zm9vYmFy") == "foobar");
  for (const char* bad : {"Zm8", "Zm8=Zm8=", "Z===", "Zm=8", "Zm9v!mFy", "Zm9vYmF-"}) {
    INFO(bad);
    CHECK_FALSE(Base64Decode(bad));
  }
  REQUIRE(ConstantTimeEquals("tok", "tok"));
  REQUIRE_FALSE(ConstantTimeEquals("tok", "to"));
}

TEST_CASE("query parameters are decoded strictly; '+' stays '+'", "[kvserver][http]") {
  auto t = ParseTarget("/kv?prefix=a%20b&start_after=x+y&limit=5&limit=6&flag&=v");
  REQUIRE(t);
  REQUIRE(t->path == "/kv");
  REQUIRE(t->Param("prefix") == "a b");
  REQUIRE(t->Param("start_after") == "x+y");
  REQUIRE(t->Param("limit") == "5");  // the first of a repeated name
  REQUIRE(t->Has("flag"));
  REQUIRE(t->Param("flag").empty());
  REQUIRE_FALSE(t->Has("missing"));
  REQUIRE_FALSE(ParseTarget("/kv?prefix=%zz"));
  REQUIRE_FALSE(ParseTarget("/kv?%=1"));
  REQUIRE(ParseTarget("/status")->params.empty());
}

TEST_CASE("ParseU64: decimal digits only, within 64 bits", "[kvserver][http]") {
  CHECK(ParseU64("0") == std::optional<std::uint64_t>(0));
  CHECK(ParseU64("42") == std::optional<std::uint64_t>(42));
  CHECK(ParseU64("18446744073709551615") == std::optional<std::uint64_t>(~std::uint64_t{0}));
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1x", "0x10", "18446744073709551616"})
    CHECK_FALSE(ParseU64(bad).has_value());
}

TEST_CASE("ValidUtf8 accepts exactly what JSON passes through unchanged", "[kvserver][http]") {
  for (std::string_view ok : {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                              "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf"}) {
    INFO(ok);
    CHECK(ValidUtf8(ok));
    CHECK(JsonString(ok).find("\xef\xbf\xbd") == std::string::npos);
  }
  for (std::string_view bad : {"\xff", "\x80", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                               "\xf4\x90\x80\x80", "\xf0\x9f\x98", "a\xe2\x82"}) {
    INFO(bad);
    CHECK_FALSE(ValidUtf8(bad));
    CHECK(JsonString(bad).find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD
  }
}

TEST_CASE("log lines are hclog, logfmt or JSON with fields", "[kvserver][log]") {
  StructuredLogger text(raft::LogLevel::kInfo, LogFormat::kLogfmt);
  auto line =
      text.Format(raft::LogLevel::kWarn, "raft", "leader changed", {{"term", "3"}, {"why", "a b"}});
  REQUIRE(line.find("level=warn component=raft msg=\"leader changed\" term=3 why=\"a b\"") !=
          std::string::npos);
  // hclog: "<ts> [WARN]  raft: leader changed: term=3 why=\"a b\"", the level padded to 7.
  StructuredLogger hclog(raft::LogLevel::kInfo, LogFormat::kHclog);
  auto h = hclog.Format(raft::LogLevel::kWarn, "raft", "leader changed",
                        {{"term", "3"}, {"why", "a b"}});
  INFO(h);
  REQUIRE(h.size() > 25);
  CHECK(h[4] == '-');
  CHECK(h.substr(24) == " [WARN]  raft: leader changed: term=3 why=\"a b\"");
  CHECK(hclog.Format(raft::LogLevel::kError, "kvserver", "x", {}).substr(24) ==
        " [ERROR] kvserver: x");
  CHECK(ParseLogFormat("hclog") == LogFormat::kHclog);
  CHECK(ParseLogFormat("logfmt") == LogFormat::kLogfmt);
  CHECK(ParseLogFormat("json") == LogFormat::kJson);
  StructuredLogger json(raft::LogLevel::kInfo, LogFormat::kJson);
  auto j = json.Format(raft::LogLevel::kInfo, "kvserver", "x", {{"k", "v"}});
  REQUIRE(j.find("\"k\":\"v\"") != std::string::npos);
  REQUIRE(j.find("\"level\":\"info\"") != std::string::npos);
  REQUIRE_FALSE(text.Enabled(raft::LogLevel::kDebug));
}

// Security review F-9: a secret file that is empty (a failed secret mount) must not mean
// "no authentication"; the old shared-token flags are refused with their replacements.
TEST_CASE("empty secret and auth files refuse to start; -cluster-token is gone",
          "[kvserver][flags]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   (std::string("kv-token-test-") + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string empty = (dir / "empty").string();
  std::ofstream(empty) << "  \n";
  for (const char* flag : {"-peer-secret-file", "-join-token-file", "-auth-file"}) {
    auto f = ParseServerFlags({"-id", "t1", "-laddr", "127.0.0.1:1", "-raddr", "127.0.0.1:2",
                               "-data", (dir / "data").string(), flag, empty});
    INFO(flag << ": " << f.status().ToString());
    REQUIRE(f.ok());
    StructuredLogger logger(raft::LogLevel::kError, LogFormat::kLogfmt);
    auto server = KvServer::Start(*f, &logger);
    REQUIRE_FALSE(server.ok());
    INFO(server.status().ToString());
    CHECK((server.status().message().find("is empty") != std::string::npos ||
           server.status().message().find("holds no credential") != std::string::npos));
  }
  for (const char* flag : {"-cluster-token", "--cluster-token-file"}) {
    auto f = ParseServerFlags({"-id", "t1", flag, "x"});
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().message().find("was removed") != std::string::npos);
    CHECK(f.status().message().find("-peer-secret-file") != std::string::npos);
    CHECK(f.status().message().find("-auth-file") != std::string::npos);
  }
  CHECK(ParseServerFlags({"-id", "t1", "-metrics-auth"}).status().message() ==
        "-metrics-auth needs -auth-file");
  std::filesystem::remove_all(dir);
}

TEST_CASE("the quota admits writes within the limit and holds the alarm until below 95%",
          "[kvserver][quota]") {
  Quota q(1000);
  CHECK(q.AdmitWrite(0, 1000));  // exactly at the limit: admitted
  CHECK(q.AdmitWrite(900, 100));
  CHECK_FALSE(q.alarm());
  CHECK_FALSE(q.AdmitWrite(901, 100));  // one byte over
  CHECK(q.alarm());
  CHECK(q.refused() == 1);
  // While raised, even a write that would fit is refused (no flapping at the limit).
  CHECK_FALSE(q.AdmitWrite(960, 1));
  q.Observe(951);
  CHECK(q.alarm());
  q.Observe(949);  // below 95%: cleared
  CHECK_FALSE(q.alarm());
  CHECK(q.AdmitWrite(949, 1));
  q.Observe(1000);  // at the limit without a write: raised by the observation
  CHECK(q.alarm());
  CHECK_FALSE(q.AdmitWrite(0, 1 << 20));  // more than the whole limit: refused once cleared
  CHECK(q.refused() == 3);
}

TEST_CASE("quota 0 admits everything", "[kvserver][quota]") {
  Quota q(0);
  CHECK(q.AdmitWrite(~0ull, ~0ull));
  q.Observe(~0ull);
  CHECK_FALSE(q.alarm());
  auto f = ParseServerFlags({"-id", "a", "-quota-bytes", "0"});
  REQUIRE(f.ok());
  CHECK(f->quota_bytes == 0);
  CHECK(ParseServerFlags({"-id", "a"})->quota_bytes == (8ull << 30));
  CHECK_FALSE(ParseServerFlags({"-id", "a", "-quota-bytes", "-1"}).ok());
}

TEST_CASE("-max-snapshot-bytes: 64 GiB by default, 0 for no limit", "[kvserver][flags]") {
  CHECK(ParseServerFlags({"-id", "a"})->max_snapshot_bytes == (64ull << 30));
  auto f = ParseServerFlags({"-id", "a", "-max-snapshot-bytes", "0"});
  REQUIRE(f.ok());
  CHECK(f->max_snapshot_bytes == 0);
  CHECK_FALSE(ParseServerFlags({"-id", "a", "-max-snapshot-bytes", "lots"}).ok());
}

}  // namespace kv
