// Flags added for operators (issue 15): -version, several -join addresses, -config and
// KVSERVER_* variables, -advertise-laddr/-advertise-raddr.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "build_info.h"
#include "flags.h"

namespace kv {
namespace {

TEST_CASE("-version needs no other flag", "[kvserver][flags]") {
  for (const char* spelling : {"-version", "--version"}) {
    auto f = ParseServerFlags({spelling});
    REQUIRE(f.ok());
    CHECK(f->version);
  }
  CHECK_FALSE(ParseServerFlags({"-id", "a"})->version);
  std::string text = VersionText("kvserver");
  CHECK(text.rfind("kvserver " + std::string(GetBuildInfo().version) + "\ncommit ", 0) == 0);
  CHECK(text.find("\nbuild_type " + std::string(GetBuildInfo().build_type) + "\n") !=
        std::string::npos);
}

TEST_CASE("-shards: 1 (one group) by default, 2..95 for ranges mode", "[kvserver][flags]") {
  CHECK(ParseServerFlags({"-id", "a"})->shards == 1);
  CHECK(ParseServerFlags({"-id", "a", "-shards", "8"})->shards == 8);
  CHECK(ParseServerFlags({"-id", "a", "-shards", "95"})->shards == 95);
  for (const char* bad : {"0", "96", "-1", "x", ""})
    CHECK_FALSE(ParseServerFlags({"-id", "a", "-shards", bad}).ok());
}

TEST_CASE("-join takes a comma-separated list, checked item by item", "[kvserver][flags]") {
  CHECK(SplitJoinSeeds("").empty());
  CHECK(SplitJoinSeeds("a:1") == std::vector<std::string>{"a:1"});
  CHECK(SplitJoinSeeds("a:1, b:2 ,c:3") == std::vector<std::string>{"a:1", "b:2", "c:3"});
  CHECK(SplitJoinSeeds("a:1,,b:2") == std::vector<std::string>{"a:1", "", "b:2"});

  auto f = ParseServerFlags({"-id", "n", "-join", "127.0.0.1:3000,http://10.0.0.2:3000"});
  REQUIRE(f.ok());
  CHECK(f->join == "127.0.0.1:3000,http://10.0.0.2:3000");
  auto empty = ParseServerFlags({"-id", "n", "-join", "127.0.0.1:3000,"});
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.status().message().find("empty address") != std::string::npos);
  auto bad = ParseServerFlags({"-id", "n", "-join", "127.0.0.1:3000,nohost"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("-join") != std::string::npos);
  // Every address in this node's scheme.
  auto mixed = ParseServerFlags({"-id", "n", "-join", "127.0.0.1:3000,https://10.0.0.2:3000"});
  REQUIRE_FALSE(mixed.ok());
  CHECK(mixed.status().message().find("https://") != std::string::npos);
}

// A config file in a fresh temporary directory, removed with the object.
struct ConfigFile {
  explicit ConfigFile(const std::string& text) {
    dir = std::filesystem::temp_directory_path() /
          ("kv-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(dir);
    path = (dir / "kvserver.conf").string();
    std::ofstream(path) << text;
  }
  ~ConfigFile() { std::filesystem::remove_all(dir); }
  static inline int counter = 0;
  std::filesystem::path dir;
  std::string path;
};

TEST_CASE("-config file, then KVSERVER_* variables, then the command line", "[kvserver][flags]") {
  ConfigFile conf(
      "# a comment\n"
      "\n"
      "id = from-file\n"
      "laddr = \"127.0.0.1:3100\"   # quoted, with a comment after it\n"
      "tick_ms = 30\n"
      "request-timeout-ms = 1111\n"
      "log-format = logfmt\n"
      "client-cert-auth = false\n");
  auto only_file = ParseServerFlags({"-config", conf.path});
  REQUIRE(only_file.ok());
  CHECK(only_file->id == "from-file");
  CHECK(only_file->laddr == "127.0.0.1:3100");
  CHECK(only_file->tick_ms == 30);  // '_' stands for '-'
  CHECK(only_file->request_timeout_ms == 1111);
  CHECK(only_file->log_format == "logfmt");
  CHECK(only_file->config_file == conf.path);
  CHECK(only_file->warnings.empty());

  // The environment beats the file; argv beats both. KVSERVER_CONFIG names the file.
  Environment env = {{"KVSERVER_CONFIG", conf.path},
                     {"KVSERVER_TICK_MS", "40"},
                     {"KVSERVER_REQUEST_TIMEOUT_MS", "2222"},
                     {"KVSERVER_LOG_FORMAT", "json"},
                     {"KVSERVER_BIN", "/somewhere"}};
  auto layered = ParseServerFlags({"--request-timeout-ms=3333"}, env);
  REQUIRE(layered.ok());
  CHECK(layered->id == "from-file");
  CHECK(layered->tick_ms == 40);
  CHECK(layered->log_format == "json");
  CHECK(layered->request_timeout_ms == 3333);
  REQUIRE(layered->warnings.size() == 1);  // KVSERVER_BIN is no flag
  CHECK(layered->warnings[0].find("KVSERVER_BIN") != std::string::npos);
  // -config on the command line wins over KVSERVER_CONFIG.
  ConfigFile other("id = other\n");
  auto chosen = ParseServerFlags({"-config", other.path}, {{"KVSERVER_CONFIG", conf.path}});
  REQUIRE(chosen.ok());
  CHECK(chosen->id == "other");
  CHECK(chosen->tick_ms == ServerFlags().tick_ms);

  // A bad value names its origin.
  auto bad_env = ParseServerFlags({"-id", "n"}, {{"KVSERVER_TICK_MS", "fast"}});
  REQUIRE_FALSE(bad_env.ok());
  CHECK(bad_env.status().message() ==
        "bad value 'fast' for flag -tick-ms (environment variable KVSERVER_TICK_MS)");
  ConfigFile bad_value("id = n\ntick-ms = -3\n");
  auto bv = ParseServerFlags({"-config", bad_value.path});
  REQUIRE_FALSE(bv.ok());
  CHECK(bv.status().message() ==
        "bad value '-3' for flag -tick-ms (config file " + bad_value.path + ":2)");
}

TEST_CASE("-config: malformed files are refused naming the line", "[kvserver][flags]") {
  struct Case {
    const char* text;
    const char* error;
  };
  for (const Case& c : {Case{"id = n\nbogus = 1\n", ":2: unknown flag 'bogus'"},
                        Case{"id = n\njust words\n", ":2: expected 'flag = value'"},
                        Case{"id = n\nid = m\n", ":2: 'id' is already set on line 1"},
                        Case{"id = \"n\n", ":1: unterminated quoted value"},
                        Case{"id = \"n\" x\n", ":1: unexpected text after the quoted value"},
                        Case{"config = /etc/x\n", ":1: a config file cannot name another"}}) {
    ConfigFile conf(c.text);
    auto f = ParseServerFlags({"-config", conf.path});
    INFO(c.text);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().message() == "config file " + conf.path + c.error);
  }
  auto missing = ParseServerFlags({"-config", "/nonexistent/kvserver.conf"});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("config file /nonexistent/kvserver.conf: ") == 0);
}

TEST_CASE("-advertise-laddr/-advertise-raddr: what the cluster is given", "[kvserver][flags]") {
  auto plain =
      ParseServerFlags({"-id", "n", "-laddr", "127.0.0.1:3000", "-raddr", "127.0.0.1:4000"});
  REQUIRE(plain.ok());
  CHECK(plain->http_advertise() == "127.0.0.1:3000");
  CHECK(plain->raft_advertise() == "127.0.0.1:4000");
  CHECK(plain->warnings.empty());

  auto wild = ParseServerFlags({"-id", "n", "-laddr", "0.0.0.0:3000", "-raddr", "0.0.0.0:4000"});
  REQUIRE(wild.ok());  // a lone node may listen on 0.0.0.0
  REQUIRE(wild->warnings.size() == 2);
  CHECK(wild->warnings[0].find("set -advertise-laddr") != std::string::npos);
  CHECK(wild->warnings[1].find("set -advertise-raddr") != std::string::npos);

  auto adv = ParseServerFlags({"-id", "n", "-laddr", "0.0.0.0:3000", "-raddr", "0.0.0.0:4000",
                               "-advertise-laddr", "10.0.0.5:3000", "-advertise-raddr",
                               "kv1.example:4000"});
  REQUIRE(adv.ok());
  CHECK(adv->warnings.empty());
  CHECK(adv->http_advertise() == "10.0.0.5:3000");
  CHECK(adv->raft_advertise() == "kv1.example:4000");
  CHECK(adv->laddr == "0.0.0.0:3000");

  for (const char* bad : {"0.0.0.0:3000", "[::]:3000", "nohost", "h:0"}) {
    auto f = ParseServerFlags({"-id", "n", "-advertise-laddr", bad});
    INFO(bad);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().message().rfind("-advertise-laddr must be", 0) == 0);
  }
}

}  // namespace
}  // namespace kv
