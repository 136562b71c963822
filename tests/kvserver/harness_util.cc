// Utilities of the real-process harness; see harness_util.h.
#include "harness_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CATCH_CONFIG_EXTERNAL_INTERFACES  // for the failure listener below
#include <catch2/catch.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <thread>

namespace kvtest {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint16_t kPortLow = 20000;  // Linux's ephemeral range starts at 32768
constexpr std::uint16_t kPortHigh = 32000;

// Failure tracking: a Catch2 listener records whether the running test case has
// failed, so that ProcessCluster's destructor knows whether to keep its directory.
bool g_test_failed = false;

class FailureListener : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    TestEventListenerBase::testCaseStarting(info);
    g_test_failed = false;
  }
  bool assertionEnded(Catch::AssertionStats const& stats) override {
    if (!stats.assertionResult.isOk()) g_test_failed = true;
    return TestEventListenerBase::assertionEnded(stats);
  }
};

bool PortBindable(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // No SO_REUSEADDR: a port with connections lingering in TIME_WAIT is skipped too.
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 && ::listen(fd, 1) == 0;
  ::close(fd);
  return ok;
}

// Claims `port` for this test process against the other test binaries CTest runs at the
// same time: an flock on /tmp/kvproc-ports/<port>, held (the descriptor left open) until
// this process exits, when the kernel drops it. Without it two binaries could pick the
// same free port before either bound it ("Address already in use" at a node's start).
bool ClaimPortAcrossProcesses(std::uint16_t port) {
  static const std::string dir = [] {
    std::string d = (std::filesystem::temp_directory_path() / "kvproc-ports").string();
    std::error_code ec;
    std::filesystem::create_directories(d, ec);
    return d;
  }();
  const std::string path = dir + "/" + std::to_string(port);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return true;  // cannot coordinate: fall back to the bind check alone
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;  // another test process holds it
  }
  return true;  // fd stays open: the claim lasts as long as this process
}

}  // namespace

CATCH_REGISTER_LISTENER(FailureListener)

bool CurrentTestFailed() { return g_test_failed; }

bool WaitUntil(Millis limit, const std::function<bool()>& cond, Millis poll) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(poll);
  }
  return cond();
}

std::uint16_t PickFreePort() {
  static std::mutex mu;
  static std::set<std::uint16_t> handed_out;
  static std::mt19937 rng(std::random_device{}());
  std::lock_guard lock(mu);
  std::uniform_int_distribution<int> dist(kPortLow, kPortHigh - 1);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto port = static_cast<std::uint16_t>(dist(rng));
    if (handed_out.count(port) || !PortBindable(port) || !ClaimPortAcrossProcesses(port)) continue;
    handed_out.insert(port);
    return port;
  }
  FAIL("no free loopback port found in [" << kPortLow << ", " << kPortHigh << ")");
  return 0;
}

std::string PercentEncode(std::string_view bytes, bool keep_slash) {
  std::string out;
  for (unsigned char c : bytes) {
    bool unreserved = std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string Base64Decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    int v = value(c);
    INFO("base64 text: " << text);
    REQUIRE(v >= 0);
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string Printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

CommandRun RunCommand(const std::string& cmd) {
  CommandRun run;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return run;  // exit_code -1; no Catch2 assertion (see the header)
  char buf[4096];
  std::size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) run.output.append(buf, got);
  const int status = ::pclose(p);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string KvserverBinary() {
  // A private copy, taken once: a rebuild of the original while the suite runs (another
  // engineer's ninja) must not make later starts fail or run a different binary.
  struct Copy {
    std::filesystem::path dir;
    std::string path;
    ~Copy() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  };
  static Copy copy;
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (!copy.path.empty()) return copy.path;
  std::string original = KVSERVER_BIN;
  if (const char* env = std::getenv("KVSERVER_BIN"); env != nullptr && *env != '\0') {
    original = env;
  }
  copy.dir = std::filesystem::temp_directory_path() / fmt::format("kvproc-bin-{}", ::getpid());
  std::error_code ec;
  std::filesystem::create_directories(copy.dir, ec);
  auto target = copy.dir / "kvserver";
  if (ec || !std::filesystem::copy_file(original, target,
                                        std::filesystem::copy_options::overwrite_existing, ec)) {
    std::cerr << "kvserver process test: cannot copy " << original << " (" << ec.message()
              << "); running it in place\n";
    return original;
  }
  copy.path = target.string();
  return copy.path;
}

}  // namespace kvtest
