// Status, Result<T> and RAFT_ASSERT: the misuse guards abort with a message in every
// build type. Each abort is observed in a forked child (Catch2 v2 has no death tests).
#include "raft/status.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "base/assert.h"

namespace raft {
namespace {

struct Death {
  bool aborted = false;
  std::string stderr_text;
};

// Runs `fn` in a child process with stderr captured; reports whether it died of SIGABRT.
Death RunInChild(const std::function<void()>& fn) {
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Catch2's own SIGABRT handler would report the abort as a failure of the child.
    std::signal(SIGABRT, SIG_DFL);
    ::dup2(pipefd[1], STDERR_FILENO);
    ::close(pipefd[0]);
    fn();
    ::_exit(0);
  }
  ::close(pipefd[1]);
  Death d;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) d.stderr_text.append(buf, n);
  ::close(pipefd[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  d.aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  return d;
}

Result<int> Failing() { return Status(ErrorCode::kIOError, "disk on fire"); }

}  // namespace

TEST_CASE("Result holds a value or the Status that explains why not", "[status]") {
  Result<int> ok = 7;
  REQUIRE(ok.ok());
  CHECK(*ok == 7);
  CHECK(ok.value() == 7);
  Result<int> bad = Failing();
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == ErrorCode::kIOError);
  CHECK(bad.status().ToString() == "IOError: disk on fire");
}

TEST_CASE("reading a Result without a value aborts with its Status", "[status][death]") {
  SECTION("value()") {
    Death d = RunInChild([] { std::printf("%d\n", Failing().value()); });
    CHECK(d.aborted);
    CHECK(d.stderr_text.find("Result has no value") != std::string::npos);
    CHECK(d.stderr_text.find("disk on fire") != std::string::npos);
  }
  SECTION("operator*") {
    Death d = RunInChild([] {
      Result<int> r = Failing();
      std::printf("%d\n", *r);
    });
    CHECK(d.aborted);
    CHECK(d.stderr_text.find("disk on fire") != std::string::npos);
  }
  SECTION("operator->") {
    Death d = RunInChild([] {
      Result<std::string> r = Status(ErrorCode::kCorruption, "bad crc");
      std::printf("%zu\n", r->size());
    });
    CHECK(d.aborted);
    CHECK(d.stderr_text.find("bad crc") != std::string::npos);
  }
  SECTION("built from an ok Status") {
    Death d = RunInChild([] { Result<int> r = Status::Ok(); });
    CHECK(d.aborted);
    CHECK(d.stderr_text.find("ok Status") != std::string::npos);
  }
}

TEST_CASE("RAFT_ASSERT prints the condition, the message and the operands", "[assert][death]") {
  SECTION("a holding assert is silent") {
    Death d = RunInChild([] {
      std::uint64_t a = 3;
      RAFT_ASSERT(a == 3);
      RAFT_ASSERT_EQ(a, 3u);
      RAFT_ASSERT_LT(a, 4u);
    });
    CHECK_FALSE(d.aborted);
    CHECK(d.stderr_text.empty());
  }
  SECTION("the message") {
    Death d = RunInChild([] { RAFT_ASSERT(1 + 1 == 3, "arithmetic holds"); });
    CHECK(d.aborted);
    CHECK(d.stderr_text.find("1 + 1 == 3") != std::string::npos);
    CHECK(d.stderr_text.find("arithmetic holds") != std::string::npos);
  }
  SECTION("both operands of a comparison") {
    Death d = RunInChild([] {
      std::uint64_t conflict = 4, committed = 9;
      RAFT_ASSERT_GT(conflict, committed);
    });
    CHECK(d.aborted);
    CHECK(d.stderr_text.find("conflict > committed (4 vs 9)") != std::string::npos);
  }
  SECTION("strings and enums") {
    Death d = RunInChild([] { RAFT_ASSERT_EQ(std::string("abc"), "abd"); });
    CHECK(d.stderr_text.find("(\"abc\" vs \"abd\")") != std::string::npos);
    Death e = RunInChild([] { RAFT_ASSERT_EQ(ErrorCode::kBusy, ErrorCode::kOk); });
    CHECK(e.stderr_text.find("(12 vs 0)") != std::string::npos);
  }
}

}  // namespace raft
