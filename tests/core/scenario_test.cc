// Scenario scripts for the consensus core: runs every tests/core/testdata/*.txt through
// ScenarioDriver (scenario_driver.h documents the language) and compares the output of
// each command with the expected output checked into the same file.
//
// File format (as etcd-io/raft's datadriven tests):
//   # comment lines and blank lines are kept as they are
//   command args...
//   ----
//   expected output, up to the next blank line
//
// Run:      ninja -C build scenario_test && build/tests/core/scenario_test
//           one file:  build/tests/core/scenario_test -c prevote.txt
//           or:        RAFT_SCENARIO=prevote build/tests/core/scenario_test
// Rewrite:  RAFT_REWRITE=1 build/tests/core/scenario_test
//           regenerates every expected output in place (the Catch2 main takes no custom
//           flags, so the switch is an environment variable). Review the diff by hand: the
//           expected output must be what Raft requires, not whatever the code prints.
#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "scenario_driver.h"

#ifndef RAFT_SCENARIO_TESTDATA_DIR
#error "RAFT_SCENARIO_TESTDATA_DIR must name tests/core/testdata"
#endif

namespace raft::scenario {
namespace {

// Where we are, for the abort handler: a core invariant failure aborts the process, and
// the scenario line that triggered it is the most useful thing to print.
char g_where[512];

extern "C" void OnAbort(int) {
  std::fputs("\nscenario_test: aborted while running ", stderr);
  std::fputs(g_where, stderr);
  std::fputs("\n", stderr);
  std::signal(SIGABRT, SIG_DFL);
  std::raise(SIGABRT);
}

std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur)) out.push_back(cur);
  return out;
}

// Line diff (longest common subsequence): "  " same, "- " expected only, "+ " actual
// only. Unchanged lines further than kContextLines from a change are elided.
std::string Diff(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  constexpr std::size_t kContextLines = 3;
  std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> lcs(n + 1, std::vector<std::size_t>(m + 1, 0));
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m; j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  std::vector<std::string> lines;
  std::vector<bool> changed;
  std::size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      lines.push_back("  " + a[i++]);
      changed.push_back(false);
      ++j;
    } else if (j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      lines.push_back("+ " + b[j++]);
      changed.push_back(true);
    } else {
      lines.push_back("- " + a[i++]);
      changed.push_back(true);
    }
  }
  std::string out;
  bool elided = false;
  for (std::size_t k = 0; k < lines.size(); ++k) {
    std::size_t lo = k >= kContextLines ? k - kContextLines : 0;
    std::size_t hi = std::min(lines.size(), k + kContextLines + 1);
    bool near =
        std::any_of(changed.begin() + static_cast<std::ptrdiff_t>(lo),
                    changed.begin() + static_cast<std::ptrdiff_t>(hi), [](bool c) { return c; });
    if (near) {
      out += lines[k] + "\n";
      elided = false;
    } else if (!elided) {
      out += "  ...\n";
      elided = true;
    }
  }
  return out;
}

struct FileResult {
  std::string rewritten;              // the file with actual outputs
  std::vector<std::string> failures;  // one message per mismatching block
};

FileResult RunFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  std::vector<std::string> lines = SplitLines(buf.str());
  ScenarioDriver driver;
  FileResult res;
  std::size_t i = 0;
  while (i < lines.size()) {
    const std::string& line = lines[i];
    if (line.empty() || line[0] == '#') {
      res.rewritten += line + "\n";
      ++i;
      continue;
    }
    std::size_t cmd_line = i + 1;
    std::string cmd = line;
    ++i;
    std::vector<std::string> expected;
    bool has_separator = i < lines.size() && lines[i] == "----";
    if (has_separator) {
      ++i;
      while (i < lines.size() && !lines[i].empty()) expected.push_back(lines[i++]);
    }
    std::snprintf(g_where, sizeof g_where, "%s:%zu: %s", path.filename().c_str(), cmd_line,
                  cmd.c_str());
    std::string actual = driver.Run(cmd);
    std::vector<std::string> actual_lines = SplitLines(actual);
    if (!has_separator || actual_lines != expected) {
      res.failures.push_back(path.filename().string() + ":" + std::to_string(cmd_line) + ": " +
                             cmd + "\n" + Diff(expected, actual_lines));
    }
    res.rewritten += cmd + "\n----\n" + actual + "\n";
  }
  return res;
}

std::vector<std::filesystem::path> ScenarioFiles() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(RAFT_SCENARIO_TESTDATA_DIR)) {
    if (e.path().extension() == ".txt") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool EnvSet(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

}  // namespace

TEST_CASE("scenario scripts match their expected output", "[scenario]") {
  std::signal(SIGABRT, OnAbort);
  const bool rewrite = EnvSet("RAFT_REWRITE");
  const char* only = std::getenv("RAFT_SCENARIO");
  auto files = ScenarioFiles();
  REQUIRE(!files.empty());
  for (const auto& path : files) {
    std::string name = path.filename().string();
    if (only != nullptr && *only != '\0' && name.find(only) == std::string::npos) continue;
    DYNAMIC_SECTION(name) {
      FileResult res = RunFile(path);
      if (rewrite) {
        std::ofstream(path, std::ios::trunc) << res.rewritten;
        if (!res.failures.empty()) WARN("rewrote " << name);
      } else {
        for (const auto& f : res.failures) FAIL_CHECK(f);
      }
    }
  }
}

}  // namespace raft::scenario
