// Flags added for operators (issue 15): -version, several -join addresses.
#include <catch2/catch.hpp>

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

}  // namespace
}  // namespace kv
