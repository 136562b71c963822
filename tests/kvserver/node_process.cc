// One kvserver process of the real-process harness; see node_process.h.
#include "node_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace kvtest {
namespace {

using Clock = std::chrono::steady_clock;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

NodeProcess::NodeProcess(NodeSpec spec) : spec_(std::move(spec)) {}

NodeProcess::~NodeProcess() { ForceStop(); }

void NodeProcess::ForceStop() noexcept {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  if (::waitpid(pid_, &status, 0) == pid_) Reap(status);
  pid_ = -1;
}

std::string NodeProcess::http_addr() const { return fmt::format("127.0.0.1:{}", spec_.http_port); }
std::string NodeProcess::raft_addr() const { return fmt::format("127.0.0.1:{}", spec_.raft_port); }

std::vector<std::string> NodeProcess::Args(const std::optional<std::string>& join,
                                           const std::vector<std::string>& more_args) const {
  std::vector<std::pair<std::string, std::string>> flags = {
      {"id", spec_.id},
      {"laddr", http_addr()},
      {"raddr", raft_addr()},
      {"data", spec_.data_dir.string()},
      {"tick-ms", std::to_string(kTickMs)},
      {"election-ticks", std::to_string(kElectionTicks)},
  };
  if (const char* level = std::getenv("KV_PROCESS_LOG_LEVEL"); level != nullptr) {
    flags.emplace_back("log-level", level);
  }
  if (join) flags.emplace_back("join", *join);
  std::vector<std::string> args;
  for (const auto& [name, value] : flags) {
    if (spec_.equals_syntax) {
      args.push_back("--" + name + "=" + value);
    } else {
      args.push_back("-" + name);
      args.push_back(value);
    }
  }
  args.insert(args.end(), spec_.extra_args.begin(), spec_.extra_args.end());
  args.insert(args.end(), more_args.begin(), more_args.end());
  return args;
}

void NodeProcess::Start(const std::optional<std::string>& join,
                        const std::vector<std::string>& more_args) {
  INFO("starting " << spec_.id);
  REQUIRE(pid_ < 0);
  const std::string binary = KvserverBinary();
  INFO("binary " << binary);
  REQUIRE(::access(binary.c_str(), X_OK) == 0);
  std::vector<std::string> args = Args(join, more_args);
  args.insert(args.begin(), binary);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment is built here: setenv is not async-signal-safe in the child.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.insert(env_strings.end(), spec_.env.begin(), spec_.env.end());
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  std::filesystem::create_directories(spec_.log_path.parent_path());
  int log_fd = ::open(spec_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  REQUIRE(log_fd >= 0);
  std::string header = "==== harness: start #" + std::to_string(starts_ + 1) + ":";
  for (const auto& a : args) header += " " + a;
  header += "\n";
  REQUIRE(::write(log_fd, header.data(), header.size()) == static_cast<ssize_t>(header.size()));
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(null_fd >= 0);

  pid_t pid = ::fork();
  if (pid == 0) {
    // Child: async-signal-safe calls only until exec (the parent may have threads).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, nullptr);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    // Drop every other inherited descriptor (e.g. client sockets of writer threads),
    // so that no connection of the test outlives its owner inside a server process.
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  int fork_errno = errno;
  ::close(log_fd);
  ::close(null_fd);
  INFO("fork: " << std::strerror(fork_errno));
  REQUIRE(pid > 0);
  pid_ = pid;
  ++starts_;
}

void NodeProcess::Reap(int wait_status) noexcept {
  last_exit_ = WIFEXITED(wait_status)     ? WEXITSTATUS(wait_status)
               : WIFSIGNALED(wait_status) ? 128 + WTERMSIG(wait_status)
                                          : -1;
  pid_ = -1;
}

bool NodeProcess::Alive() {
  if (pid_ < 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    Reap(status);
    return false;
  }
  return true;
}

void NodeProcess::Kill() {
  INFO("kill -9 " << spec_.id);
  REQUIRE(pid_ > 0);
  ::kill(pid_, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid_, &status, 0) == pid_);
  Reap(status);
}

void NodeProcess::Signal(int signal) {
  INFO("signal " << signal << " to " << spec_.id);
  REQUIRE(pid_ > 0);
  ::kill(pid_, signal);
}

std::optional<int> NodeProcess::WaitExit(Millis limit) {
  if (pid_ < 0) return last_exit_;
  const pid_t pid = pid_;
  auto deadline = Clock::now() + limit;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      Reap(status);
      return last_exit_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

std::size_t NodeProcess::RssBytes() const {
  if (pid_ < 0) return 0;
  std::string status = ReadFile(fmt::format("/proc/{}/status", pid_));
  auto pos = status.find("\nVmRSS:");
  if (pos == std::string::npos) return 0;
  return std::strtoull(status.c_str() + pos + 8, nullptr, 10) * 1024;  // "VmRSS:  1234 kB"
}

int NodeProcess::Terminate(Millis limit) {
  INFO("SIGTERM " << spec_.id);
  REQUIRE(pid_ > 0);
  const pid_t pid = pid_;
  ::kill(pid, SIGTERM);
  if (auto code = WaitExit(limit)) return *code;
  int status = 0;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  Reap(status);
  FAIL(spec_.id << " did not exit within " << limit.count()
                << " ms of SIGTERM (killed with SIGKILL). Log tail:\n"
                << LogTail());
  return -1;
}

void NodeProcess::WaitServing(Millis limit) {
  auto deadline = Clock::now() + limit;
  HttpReply last;
  while (Clock::now() < deadline) {
    if (!Alive()) {
      FAIL(spec_.id << " exited (" << (last_exit_ ? *last_exit_ : -1)
                    << ") while waiting for it to serve. Log tail:\n"
                    << LogTail());
    }
    last = Client(2s).Status();
    if (last.Ok()) return;
    std::this_thread::sleep_for(20ms);
  }
  FAIL(spec_.id << " did not answer GET /status with 200 within " << limit.count()
                << " ms; last: " << last.Describe() << ". Log tail:\n"
                << LogTail());
}

nlohmann::json NodeProcess::StatusJson(Millis timeout) const {
  HttpReply r = Client(timeout).Status();
  if (!r.Ok()) return nullptr;
  auto doc = r.Json();
  if (doc.is_discarded() || !doc.is_object()) return nullptr;
  return doc;
}

std::string NodeProcess::Log() const { return ReadFile(spec_.log_path); }

std::string NodeProcess::LogTail(std::size_t max_lines) const {
  std::string log = Log();
  std::size_t pos = log.size();
  std::size_t lines = 0;
  while (pos > 0 && lines <= max_lines) {
    pos = log.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
    ++lines;
  }
  std::string tail = log.substr(pos == 0 ? 0 : pos + 1);
  if (tail.size() > 24000) tail = "..." + tail.substr(tail.size() - 24000);
  return tail;
}

}  // namespace kvtest
