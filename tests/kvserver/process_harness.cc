// Real-process test harness for kvserver; see process_harness.h for the contract.
#include "process_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#define CATCH_CONFIG_EXTERNAL_INTERFACES  // for the failure listener below
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace kvtest {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint16_t kPortLow = 20000;  // Linux's ephemeral range starts at 32768
constexpr std::uint16_t kPortHigh = 32000;
constexpr Millis kConnectTimeout = 2s;

// ---- failure tracking: a Catch2 listener records whether the running test case has
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

std::pair<std::string, int> SplitHostPort(const std::string& addr) {
  auto colon = addr.rfind(':');
  REQUIRE(colon != std::string::npos);
  return {addr.substr(0, colon), std::stoi(addr.substr(colon + 1))};
}

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

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
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
    if (handed_out.count(port) || !PortBindable(port)) continue;
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

// ---- HttpReply

nlohmann::json HttpReply::Json() const { return nlohmann::json::parse(body, nullptr, false); }

std::string HttpReply::Describe() const {
  if (status == 0) return fmt::format("no response ({})", error);
  std::string shown = body.size() > 400 ? body.substr(0, 400) + "..." : body;
  return fmt::format("HTTP {} {}", status, Printable(shown));
}

// ---- KvClient

KvClient::KvClient(std::string http_addr, Millis timeout)
    : addr_(std::move(http_addr)), timeout_(timeout) {
  auto [host, port] = SplitHostPort(addr_);
  host_ = host;
  port_ = port;
}

HttpReply KvClient::Request(const std::string& method, const std::string& target,
                            const std::string& body, const std::string& content_type,
                            const std::multimap<std::string, std::string>& headers) const {
  httplib::Client cli(host_, port_);
  cli.set_url_encode(false);  // targets are encoded by the caller, byte for byte
  cli.set_connection_timeout(kConnectTimeout);
  cli.set_read_timeout(timeout_);
  cli.set_write_timeout(timeout_);
  httplib::Request req;
  req.method = method;
  req.path = target;
  req.body = body;
  for (const auto& [name, value] : headers) req.set_header(name, value);
  if (!content_type.empty()) req.set_header("Content-Type", content_type);
  HttpReply reply;
  auto res = cli.send(req);
  if (!res) {
    reply.error = httplib::to_string(res.error());
    return reply;
  }
  reply.status = res->status;
  reply.body = res->body;
  reply.content_type = res->get_header_value("Content-Type");
  reply.retry_after = res->get_header_value("Retry-After");
  return reply;
}

HttpReply KvClient::Put(std::string_view key, std::string_view value,
                        std::string_view query) const {
  std::string target = "/kv/" + PercentEncode(key);
  if (!query.empty()) target += "?" + std::string(query);
  return Request("PUT", target, std::string(value), "application/octet-stream");
}

HttpReply KvClient::Get(std::string_view key, bool stale) const {
  std::string target = "/kv/" + PercentEncode(key);
  if (stale) target += "?consistency=stale";
  return Request("GET", target);
}

HttpReply KvClient::Del(std::string_view key) const {
  return Request("DELETE", "/kv/" + PercentEncode(key));
}

HttpReply KvClient::Cas(std::string_view key, std::string_view prev_value,
                        std::string_view value) const {
  return Put(key, value, "prev_value=" + PercentEncode(prev_value));
}

HttpReply KvClient::PutIfAbsent(std::string_view key, std::string_view value) const {
  return Put(key, value, "prev_exist=false");
}

HttpReply KvClient::List(std::string_view prefix, int limit,
                         const std::optional<std::string>& start_after,
                         std::string_view extra) const {
  std::string target = "/kv?prefix=" + PercentEncode(prefix);
  if (limit >= 0) target += fmt::format("&limit={}", limit);
  if (start_after) target += "&start_after=" + PercentEncode(*start_after);
  if (!extra.empty()) target += "&" + std::string(extra);
  return Request("GET", target);
}

HttpReply KvClient::Status() const { return Request("GET", "/status"); }
HttpReply KvClient::Metrics() const { return Request("GET", "/metrics"); }
HttpReply KvClient::Health() const { return Request("GET", "/health"); }

HttpReply KvClient::Join(const std::string& id, const std::string& raft_addr,
                         const std::string& http_addr, const std::string& token) const {
  nlohmann::json body = {{"id", id}, {"raft_addr", raft_addr}, {"http_addr", http_addr}};
  std::multimap<std::string, std::string> headers;
  if (!token.empty()) headers.emplace("X-Cluster-Token", token);
  return Request("POST", "/join", body.dump(), "application/json", headers);
}

HttpReply KvClient::Leave(const std::string& id, const std::string& token) const {
  nlohmann::json body = {{"id", id}};
  std::multimap<std::string, std::string> headers;
  if (!token.empty()) headers.emplace("X-Cluster-Token", token);
  return Request("POST", "/leave", body.dump(), "application/json", headers);
}

// ---- NodeProcess

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
    ::execv(argv[0], argv.data());
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

int NodeProcess::Terminate(Millis limit) {
  INFO("SIGTERM " << spec_.id);
  REQUIRE(pid_ > 0);
  const pid_t pid = pid_;
  ::kill(pid, SIGTERM);
  auto deadline = Clock::now() + limit;
  int status = 0;
  while (Clock::now() < deadline) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      Reap(status);
      return *last_exit_;
    }
    std::this_thread::sleep_for(10ms);
  }
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
    last = KvClient(http_addr(), 2s).Status();
    if (last.Ok()) return;
    std::this_thread::sleep_for(20ms);
  }
  FAIL(spec_.id << " did not answer GET /status with 200 within " << limit.count()
                << " ms; last: " << last.Describe() << ". Log tail:\n"
                << LogTail());
}

nlohmann::json NodeProcess::StatusJson(Millis timeout) const {
  HttpReply r = KvClient(http_addr(), timeout).Status();
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

// ---- ProcessCluster

ProcessCluster::ProcessCluster(ClusterOptions options) : options_(std::move(options)) {
  static int counter = 0;
  std::string name = Catch::getResultCapture().getCurrentTestName();
  std::string slug;
  for (char c : name) {
    slug.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
    if (slug.size() >= 40) break;
  }
  root_ = std::filesystem::temp_directory_path() /
          fmt::format("kvproc-{}-{}-{}", ::getpid(), counter++, slug);
  std::filesystem::remove_all(root_);
  std::filesystem::create_directories(root_);
}

ProcessCluster::~ProcessCluster() {
  bool failed = CurrentTestFailed() || std::uncaught_exceptions() > 0;
  // SIGKILL is fast; clean shutdown is tested explicitly where it matters.
  for (auto& n : nodes_) n->ForceStop();
  const char* keep = std::getenv("KV_PROCESS_KEEP");
  if (failed) {
    DumpLogs();
    std::cerr << "kvserver process test: kept " << root_.string() << "\n";
  } else if (keep != nullptr && std::string(keep) == "1") {
    std::cerr << "kvserver process test: kept " << root_.string() << " (KV_PROCESS_KEEP=1)\n";
  } else {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
}

NodeProcess& ProcessCluster::AddNode(const std::vector<std::string>& extra_args) {
  NodeSpec spec;
  spec.id = fmt::format("node{}", nodes_.size());
  spec.http_port = PickFreePort();
  spec.raft_port = PickFreePort();
  spec.data_dir = root_ / spec.id;
  spec.log_path = root_ / (spec.id + ".log");
  spec.extra_args = options_.extra_args;
  spec.extra_args.insert(spec.extra_args.end(), extra_args.begin(), extra_args.end());
  nodes_.push_back(std::make_unique<NodeProcess>(std::move(spec)));
  return *nodes_.back();
}

void ProcessCluster::Start(std::size_t n) {
  REQUIRE(n >= 1);
  while (nodes_.size() < n) AddNode();
  node(0).Start();
  node(0).WaitServing();
  WaitLeader();
  for (std::size_t i = 1; i < n; ++i) {
    node(i).Start(node(0).http_addr());
    node(i).WaitServing();
    WaitVoters(i + 1);
  }
}

std::size_t ProcessCluster::WaitLeader(Millis limit) {
  std::size_t leader = nodes_.size();
  std::string seen;
  bool found = WaitUntil(limit, [&] {
    std::uint64_t best_term = 0;
    leader = nodes_.size();
    seen.clear();
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]->Alive()) continue;
      auto st = nodes_[i]->StatusJson();
      if (st.is_null()) {
        seen += fmt::format("{}: no status; ", nodes_[i]->id());
        continue;
      }
      std::string role = st.value("role", "");
      seen += fmt::format("{}: role={} term={}; ", nodes_[i]->id(), role, JsonU64(st, "term"));
      if (IsLeaderRole(st) && (leader == nodes_.size() || JsonU64(st, "term") > best_term)) {
        leader = i;
        best_term = JsonU64(st, "term");
      }
    }
    return leader < nodes_.size();
  });
  if (!found) FAIL("no leader within " << limit.count() << " ms; last seen: " << seen);
  return leader;
}

std::size_t ProcessCluster::Follower(std::size_t leader, std::size_t nth) {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (i == leader || !nodes_[i]->Alive()) continue;
    if (nth == 0) return i;
    --nth;
  }
  FAIL("no running follower #" << nth);
  return 0;
}

std::map<std::string, bool> Members(const nlohmann::json& status) {
  std::map<std::string, bool> out;
  if (!status.is_object() || !status.contains("members") || !status["members"].is_array()) {
    return out;
  }
  for (const auto& m : status["members"]) {
    if (!m.is_object()) continue;
    out[m.value("id", std::string())] = m.value("voter", false);
  }
  return out;
}

bool IsLeaderRole(const nlohmann::json& status) {
  if (!status.is_object()) return false;
  std::string role = status.value("role", std::string());
  for (auto& c : role) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return role == "leader";
}

std::uint64_t JsonU64(const nlohmann::json& doc, const char* field) {
  if (!doc.is_object() || !doc.contains(field)) return 0;
  const auto& v = doc[field];
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer())
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, v.get<std::int64_t>()));
  return 0;
}

void ProcessCluster::WaitVoters(std::size_t voters, Millis limit) {
  std::string seen;
  bool ok = WaitUntil(limit, [&] {
    std::size_t leader = nodes_.size();
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]->Alive()) continue;
      auto st = nodes_[i]->StatusJson();
      if (IsLeaderRole(st)) {
        leader = i;
        auto members = Members(st);
        std::size_t v = 0;
        for (const auto& [id, voter] : members) v += voter ? 1 : 0;
        seen = st.dump();
        if (v == voters && members.size() == voters) return true;
      }
    }
    if (leader == nodes_.size()) seen = "no leader";
    return false;
  });
  if (!ok) {
    FAIL("the leader did not report " << voters << " voters within " << limit.count()
                                      << " ms; last leader status: " << seen);
  }
}

void ProcessCluster::WaitCaughtUp(std::size_t i, Millis limit) {
  std::size_t leader = WaitLeader();
  auto lst = nodes_.at(leader)->StatusJson();
  std::uint64_t commit = JsonU64(lst, "commit_index");
  REQUIRE(commit > 0);
  std::string seen;
  bool ok = WaitUntil(limit, [&] {
    auto st = nodes_.at(i)->StatusJson();
    seen = st.dump();
    return JsonU64(st, "applied_index") >= commit;
  });
  if (!ok) {
    FAIL(nodes_.at(i)->id() << " did not apply up to the leader's commit index " << commit
                            << " within " << limit.count() << " ms; last status: " << seen
                            << "\nlog tail:\n"
                            << nodes_.at(i)->LogTail(30));
  }
}

void ProcessCluster::DumpLogs(std::size_t max_lines) const {
  for (const auto& n : nodes_) {
    std::cerr << "-------- " << n->id() << " log tail (" << n->spec().log_path.string()
              << ") --------\n"
              << n->LogTail(max_lines) << "\n";
  }
}

// ---- helpers

void PutOk(const KvClient& client, std::string_view key, std::string_view value, Millis limit) {
  HttpReply r;
  auto deadline = Clock::now() + limit;
  do {
    r = client.Put(key, value);
    if (r.status != 503) break;
    std::this_thread::sleep_for(50ms);
  } while (Clock::now() < deadline);
  INFO("PUT " << Printable(key) << " via " << client.addr() << ": " << r.Describe());
  REQUIRE(r.status == 200);
}

void RequireValue(const KvClient& client, std::string_view key, std::string_view value,
                  bool stale) {
  HttpReply r = client.Get(key, stale);
  INFO("GET " << Printable(key) << (stale ? " (stale)" : "") << " via " << client.addr() << ": "
              << r.Describe() << "; expected " << Printable(value));
  REQUIRE(r.status == 200);
  REQUIRE(r.body == value);
}

// ---- RawConnection

RawConnection::RawConnection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd_ >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  INFO("connect to 127.0.0.1:" << port << ": " << std::strerror(errno));
  REQUIRE(rc == 0);
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, 5000) <= 0) return false;  // peer not reading for 5 s
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

namespace {
// Reads from `fd` until `done(out)` holds, the peer closes, or `limit` passes.
std::string ReadWhile(int fd, Millis limit, const std::function<bool(const std::string&)>& done) {
  std::string out;
  auto deadline = Clock::now() + limit;
  char buf[4096];
  while (Clock::now() < deadline && !done(out)) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    int pr = ::poll(&p, 1, static_cast<int>(std::max<long>(1, left)));
    if (pr <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}
}  // namespace

std::string RawConnection::ReadUntilClose(Millis limit) {
  return ReadWhile(fd_, limit, [](const std::string&) { return false; });
}

std::string RawConnection::ReadHttpResponse(Millis limit) {
  return ReadWhile(fd_, limit, [](const std::string& out) {
    auto end = out.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::string head = out.substr(0, end);
    for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto cl = head.find("\r\ncontent-length:");
    std::size_t body =
        cl == std::string::npos ? 0 : std::strtoul(head.c_str() + cl + 17, nullptr, 10);
    return out.size() >= end + 4 + body;
  });
}

bool RawConnection::ClosedByPeer(Millis limit) {
  auto deadline = Clock::now() + limit;
  char buf[4096];
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    pollfd p{fd_, POLLIN, 0};
    int pr = ::poll(&p, 1, static_cast<int>(std::max<long>(1, left)));
    if (pr <= 0) continue;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return true;  // reset
    }
  }
  return false;
}

int RawStatus(std::string_view response) {
  if (response.substr(0, 5) != "HTTP/") return 0;
  auto sp = response.find(' ');
  if (sp == std::string_view::npos || sp + 4 > response.size()) return 0;
  int code = 0;
  for (std::size_t i = sp + 1; i < sp + 4; ++i) {
    if (response[i] < '0' || response[i] > '9') return 0;
    code = code * 10 + (response[i] - '0');
  }
  return code;
}

}  // namespace kvtest
