// Operators' habits against real processes (issue 15, "Deployment and habits";
// docs/operations.md "Deployment"): -version on kvserver and kvctl, the kv_build_info
// metric.
//
//   build/tests/kvserver/process_ops_test            # or '[version]'
#include <fmt/format.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <sstream>

#include "process_harness.h"

namespace kvtest {
namespace {

struct Run {
  int exit_code = -1;
  std::string output;  // stdout only
};

// Runs a shell command line; stdout is captured, stderr goes to the test's stderr.
Run RunCommand(const std::string& cmd) {
  Run run;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) run.output.append(buf, got);
  int status = ::pclose(p);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string KvctlBinary() {
  if (const char* env = std::getenv("KVCTL_BIN"); env != nullptr && *env != '\0') return env;
  return KVCTL_BIN;
}

// -version's three lines: "<program> <version>", "commit <c>", "build_type <t>".
struct Version {
  std::string version, commit, build_type;
};

Version ParseVersion(const std::string& program, const std::string& text) {
  static const std::regex re(
      R"(^(\S+) ([0-9]+\.[0-9]+\.[0-9]+)\ncommit ([0-9a-f]{12}(-dirty)?|unknown)\nbuild_type (\S+)\n$)");
  std::smatch m;
  INFO("-version output:\n" << text);
  REQUIRE(std::regex_match(text, m, re));
  REQUIRE(m[1].str() == program);
  return {m[2].str(), m[3].str(), m[5].str()};
}

TEST_CASE("-version on kvserver and kvctl; kv_build_info says the same", "[version]") {
  Run server = RunCommand(KvserverBinary() + " -version");
  REQUIRE(server.exit_code == 0);
  Version sv = ParseVersion("kvserver", server.output);
  Run server2 = RunCommand(KvserverBinary() + " --version");
  REQUIRE(server2.exit_code == 0);
  REQUIRE(server2.output == server.output);
  Run ctl = RunCommand(KvctlBinary() + " -version");
  REQUIRE(ctl.exit_code == 0);
  Version cv = ParseVersion("kvctl", ctl.output);
  CHECK(cv.version == sv.version);
  CHECK(cv.commit == sv.commit);
  CHECK(cv.build_type == sv.build_type);

  ProcessCluster cluster;
  cluster.Start(1);
  HttpReply metrics = cluster.node(0).Client().Metrics();
  REQUIRE(metrics.Ok());
  std::string want =
      fmt::format("kv_build_info{{version=\"{}\",commit=\"{}\",build_type=\"{}\"}} 1\n", sv.version,
                  sv.commit, sv.build_type);
  INFO("/metrics:\n" << metrics.body);
  CHECK(metrics.body.find(want) != std::string::npos);
  CHECK(metrics.body.find("# TYPE kv_build_info gauge\n") != std::string::npos);
}

}  // namespace
}  // namespace kvtest
