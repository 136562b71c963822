// libFuzzer target for kvserver's HTTP front door (issue 12): arbitrary bytes on a real
// loopback connection to a real HttpServer in this process.
//
// Input: byte 0 is the plan (which server, how the rest is split into writes, whether
// the client resets the connection at the end; see PlanOf); the rest is written as is on
// one new connection, then the write side is shut down (except on the slow server, which
// must close by its own deadlines), and the answers are read until the server closes.
// Checked per input:
//   - the connection closes within kHardBound (else a hang: abort), and the server's side
//     of it closes too once ours has (after a client reset as well);
//   - the bytes read are HTTP/1.x answers, each with exactly one Content-Length and a body
//     of that size (the interim "100 Continue" aside), and nothing after the last; nothing
//     is cut short unless the connection was reset;
//   - the handler's answers arrive in request order (X-Seq 0, 1, 2, ...), one for every
//     request it was handed (on a clean close); the server's own answer (an error it makes
//     itself: a status of ServerOwnCode, counted once through CountRefused) closes the
//     connection and is the last, as is any answer that closes it;
//   - no more answers than the input holds request heads (+1 for the server's own).
// Crashes, sanitizer reports and aborts are findings.
//
// Two builds (tests/kvserver/CMakeLists.txt): with RAFT_FUZZ, the libFuzzer target
// fuzz_http (the server's sources compiled in, so they carry coverage); in every build,
// fuzz_http_replay (FUZZ_HTTP_REPLAY): a main() that runs every seed of fuzz_corpus/ and
// then seeded mutations of them, registered as a CTest.
//
// The handler follows the real routes (kv_server.cc, http_data.cc, http_control.cc):
// ParseTarget, KeyFromPath, Origin, the Authorization header (auth.h: a request that
// carries one is authorized against a fixed table, with an admin and a read token in
// fuzz_http.dict; one without is served, so inputs reach every route), Content-Type, query
// parameters, a JSON body, the /join checks (join_check.h). It answers some requests at once, some
// later from the I/O thread, and some from another thread in reverse order, so that answers
// complete out of order.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "auth.h"
#include "http_server.h"
#include "http_types.h"
#include "http_util.h"
#include "join_check.h"
#include "logger.h"

#ifdef FUZZ_HTTP_REPLAY
#include <dirent.h>

#include <fstream>
#include <random>
#include <sstream>
#endif

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using kv::HttpRequest;
using kv::HttpResponse;
namespace http = kv::http;

// A connection that has not closed by then is a hang (the slow server's deadlines are
// tens of milliseconds, the normal one's 200-300 ms).
constexpr auto kHardBound = 2s;
// The handler's answer bodies for GET /kv/{key}?size=N are capped at this.
constexpr std::size_t kMaxAnswerBody = 64 * 1024;
constexpr std::size_t kMaxKeyBytes = 256;

// --- The handler --------------------------------------------------------------------

std::uint32_t Fnv1a(std::string_view s, std::uint32_t h = 2166136261u) {
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

std::string Field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The credentials the handler knows (also in fuzz_http.dict).
const kv::AuthTable& FuzzAuth() {
  static const kv::AuthTable table =
      kv::AuthTable::Parse("fuzz-admin-token-0123 admin\nfuzz-read-token-01234 read\n", "fuzz")
          .value();
  return table;
}

// What the real routes would answer, without Raft or RocksDB: the same parsing and
// header lookups, stateless (an answer depends on the request only).
HttpResponse Route(const HttpRequest& req) {
  using kv::ErrorAnswer;
  using kv::JsonAnswer;
  using kv::JsonString;
  const std::string_view target = req.target();
  auto t = kv::ParseTarget(target);
  if (!t) return ErrorAnswer(400, "malformed percent-encoding in the URL");
  if (req.count(http::field::origin) != 0)
    return ErrorAnswer(403, "requests from browser pages (Origin) are refused");
  const std::string_view path = t->path;
  if (auto authz = req.find(http::field::authorization); authz != req.end()) {
    kv::AuthDecision d = kv::Authorize(FuzzAuth(), kv::AccessFor(path, req.method_string(), false),
                                       std::string_view(authz->value()), std::nullopt);
    if (d.status != 200) return ErrorAnswer(d.status, d.message);
  }
  if (path == "/kv") {
    if (req.method() != http::verb::get) return ErrorAnswer(405, "only GET /kv");
    std::size_t limit = 100;
    if (t->Has("limit")) {
      const std::string v = t->Param("limit");
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
      if (ec != std::errc() || p != v.data() + v.size() || limit == 0 || limit > 1000)
        return ErrorAnswer(400, "limit must be a number in 1..1000");
    }
    const bool b64 = t->Param("encoding") == "base64";
    const std::string prefix = t->Param("prefix");
    std::string body = "{\"items\": [{\"key\": ";
    body += JsonString(b64 ? kv::Base64(prefix) : prefix);
    body += ", \"value\": ";
    body += JsonString(t->Param("start_after"));
    body += "}], \"next\": null}";
    return JsonAnswer(200, std::move(body));
  }
  if (path.substr(0, 4) == "/kv/") {
    auto key = kv::KeyFromPath(path);
    if (!key) return ErrorAnswer(400, "malformed or empty key in the URL");
    if (key->size() > kMaxKeyBytes) return ErrorAnswer(413, "key is too long");
    if (req.method() == http::verb::get) {
      if (key->front() == 'x') return ErrorAnswer(404, "key not found");
      HttpResponse res{http::status::ok, 11};
      res.set(http::field::content_type, "application/octet-stream");
      if (t->Has("size")) {
        std::size_t n = 0;
        const std::string v = t->Param("size");
        std::from_chars(v.data(), v.data() + v.size(), n);
        res.body().assign(std::min(n, kMaxAnswerBody), 'v');
      } else {
        res.body() = *key;
      }
      return res;
    }
    if (req.method() != http::verb::put && req.method() != http::verb::delete_)
      return ErrorAnswer(405, "only GET, PUT and DELETE on /kv/{key}");
    nlohmann::json j;
    j["index"] = req.body().size();
    if (t->Has("prev_value")) {
      if (t->Param("prev_value") != req.body()) {
        nlohmann::json e;
        e["error"] = "compare failed";
        e["current"] = req.body();
        return JsonAnswer(412, e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
    } else if (t->Has("prev_exist") && t->Param("prev_exist") != "false") {
      return ErrorAnswer(400, "prev_exist only supports false (create if absent)");
    }
    j["prev_value"] = kv::Base64(req.body());
    return JsonAnswer(200, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (path == "/status" || path == "/metrics" || path == "/health") {
    if (req.method() != http::verb::get) return ErrorAnswer(405, "only GET");
    std::string body = "{\"ok\": true, \"leader\": ";
    body += JsonString(req[http::field::host]);
    body += "}";
    return JsonAnswer(200, std::move(body));
  }
  if (path != "/join" && path != "/leave" && path != "/transfer-leader")
    return ErrorAnswer(404, "no such route");
  if (req.method() != http::verb::post) return ErrorAnswer(405, "only POST");
  auto ct = req.find(http::field::content_type);
  std::string_view type = ct == req.end() ? std::string_view() : std::string_view(ct->value());
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  if (!kv::IEquals(type, "application/json"))
    return ErrorAnswer(415, "the body must be JSON (Content-Type: application/json)");
  auto j = nlohmann::json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return ErrorAnswer(400, "body must be a JSON object");
  const std::string id = Field(j, "id");
  if (path == "/join") {
    kv::JoinVerdict v = kv::CheckJoin({id, Field(j, "raft_addr"), Field(j, "http_addr")}, {});
    if (v.kind == kv::JoinVerdict::Kind::kRefused) return ErrorAnswer(v.status, v.message);
  }
  if (id.empty()) return ErrorAnswer(400, "needs id");
  return JsonAnswer(200, "{\"id\": " + JsonString(id) + "}");
}

// Answers queued here are sent from this thread, each batch in reverse order.
class LateAnswers {
 public:
  LateAnswers() : thread_([this] { Loop(); }) {}
  ~LateAnswers() { Stop(); }
  // Answers what is queued, then ends the thread. Idempotent.
  void Stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }
  void Push(kv::Responder respond, HttpResponse res) {
    {
      std::lock_guard<std::mutex> l(mu_);
      queue_.emplace_back(std::move(respond), std::move(res));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (true) {
      cv_.wait(l, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_, nothing left to answer
      // Let a pipelined batch gather, then answer it backwards.
      l.unlock();
      std::this_thread::sleep_for(100us);
      l.lock();
      auto batch = std::move(queue_);
      queue_.clear();
      l.unlock();
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) it->first(std::move(it->second));
      l.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<kv::Responder, HttpResponse>> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the rest is built
};

class FuzzHandler final : public kv::HttpHandler {
 public:
  void Handle(HttpRequest req, const kv::RequestInfo& info, kv::Responder respond) override {
    std::uint64_t seq;
    {
      std::lock_guard<std::mutex> l(mu_);
      seq = handled_[info.peer]++;
    }
    HttpResponse res = Route(req);
    res.set("X-Seq", std::to_string(seq));
    std::string how(req.method_string());
    how += req.target();
    switch (Fnv1a(how, static_cast<std::uint32_t>(req.body().size())) % 3) {
      case 0:  // at once, inside Handle
        respond(std::move(res));
        break;
      case 1:  // later, from the I/O thread
        boost::asio::post(info.io,
                          [respond, res = std::move(res)]() mutable { respond(std::move(res)); });
        break;
      default:  // later, from another thread, out of order
        late_.Push(std::move(respond), std::move(res));
        break;
    }
  }
  void CountRefused(int) override { ++refused_; }

  // Requests handed to Handle for the connection from `peer`; forgets the peer.
  std::uint64_t TakeHandled(const std::string& peer) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = handled_.find(peer);
    if (it == handled_.end()) return 0;
    std::uint64_t n = it->second;
    handled_.erase(it);
    return n;
  }
  // Answers the server made itself (CountRefused), all connections.
  std::uint64_t refused() const { return refused_.load(); }
  void StopLateAnswers() { late_.Stop(); }

 private:
  std::mutex mu_;
  std::map<std::string, std::uint64_t> handled_;  // by peer "ip:port"
  std::atomic<std::uint64_t> refused_{0};
  LateAnswers late_;
};

// --- The servers --------------------------------------------------------------------

// Small limits so that inputs reach them; deadlines short so that nothing waits long.
kv::HttpServerOptions ServerOptions(bool slow) {
  kv::HttpServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.threads = 1;
  o.max_conns = 64;
  o.max_header_bytes = 1024;
  o.max_body_bytes = 2048;
  o.pipeline_depth = 4;
  o.max_inflight_bytes = 8192;
  if (slow) {  // the client keeps its side open: the server must close by its deadlines
    o.header_timeout = 15ms;
    o.body_timeout = 15ms;
    o.idle_timeout = 30ms;
  } else {
    o.header_timeout = 200ms;
    o.body_timeout = 200ms;
    o.idle_timeout = 300ms;
  }
  o.write_timeout = 1000ms;
  return o;
}

struct RunningServer {
  std::unique_ptr<kv::HttpServer> server;
  std::thread thread;
  std::uint16_t port = 0;
};

// Both servers share one handler. Built once, on the first input.
struct Fixture {
  Fixture() : logger(raft::LogLevel::kWarn, kv::LogFormat::kLogfmt) {
    for (int i = 0; i < 2; ++i) {
      kv::HttpServerOptions o = ServerOptions(/*slow=*/i == 1);
      o.logger = &logger;
      auto s = kv::HttpServer::Listen(o, &handler);
      if (!s.ok()) {
        std::fprintf(stderr, "fuzz_http: %s\n", s.status().ToString().c_str());
        std::abort();
      }
      servers[i].server = std::move(*s);
      servers[i].port = servers[i].server->port();
      servers[i].thread = std::thread([srv = servers[i].server.get()] { srv->Run(); });
    }
  }
  // Late answers first (their Responders hold sessions, which need their server), then
  // the servers.
  void Shutdown() {
    handler.StopLateAnswers();
    for (auto& s : servers) {
      s.server->Stop();
      s.thread.join();
      s.server.reset();
    }
  }

  kv::StructuredLogger logger;
  FuzzHandler handler;
  std::array<RunningServer, 2> servers;  // [0] normal, [1] slow
};

Fixture& TheFixture() {
  // Never destroyed in the libFuzzer build (its I/O threads run until the process exits);
  // the replay main shuts it down.
  static Fixture* f = new Fixture();
  return *f;
}

// --- The client ---------------------------------------------------------------------

struct Plan {
  bool slow = false;      // the slow server; the write side stays open
  bool abort = false;     // once written, the connection is reset (SO_LINGER 0), unread
  int split = 0;          // 0 one write, 1 fixed chunks, 2 one write per line, 3 chunks + pauses
  std::size_t chunk = 1;  // bytes per write for split 1 and 3
};

Plan PlanOf(std::uint8_t c) {
  static constexpr std::array<std::size_t, 8> kChunks = {1, 2, 3, 7, 16, 64, 256, 1024};
  Plan p;
  p.slow = (c & 0xf0) == 0xf0;   // 1 in 16: every such input waits for a deadline
  p.abort = (c & 0xf0) == 0xe0;  // 1 in 16
  p.split = c & 3;
  p.chunk = kChunks[(c >> 2) & 7];
  return p;
}

// Where each write ends (exclusive offsets into the payload).
std::vector<std::size_t> WriteEnds(const Plan& p, std::string_view payload) {
  std::vector<std::size_t> ends;
  if (p.split == 2) {
    for (std::size_t i = 0; i < payload.size(); ++i)
      if (payload[i] == '\n') ends.push_back(i + 1);
  } else if (p.split != 0) {
    for (std::size_t i = p.chunk; i < payload.size(); i += p.chunk) ends.push_back(i);
  }
  ends.push_back(payload.size());
  return ends;
}

struct Exchange {
  std::string answers;     // every byte read
  std::string peer;        // our address as the server sees it
  bool reset = false;      // the connection was reset (answers may be cut short)
  bool hung = false;       // not closed within kHardBound
  bool kept_open = false;  // the server's side stayed open after ours closed
  bool aborted = false;    // we reset it (Plan::abort)
};

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "fuzz_http: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

// One connection to `server` (serving on `port`): writes the payload as planned, reads
// until the server closes (or resets, unless it was reset by us). `accepted`: the
// server's count of accepted connections before this one.
Exchange Run(const kv::HttpServer& server, std::uint16_t port, std::uint64_t accepted,
             const Plan& plan, std::string_view payload) {
  Exchange ex;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Non-blocking from the start: libFuzzer's timer signals interrupt blocking calls.
  int fd = -1;
  for (int attempt = 0;; ++attempt) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) Die("socket");
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
    if (errno == EINPROGRESS || errno == EINTR) {
      pollfd pfd{fd, POLLOUT, 0};
      while (::poll(&pfd, 1, 2000) < 0 && errno == EINTR) {
      }
      int err = 0;
      socklen_t err_len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
      if ((pfd.revents & POLLOUT) && err == 0) break;
      errno = err != 0 ? err : ETIMEDOUT;
    }
    // Out of local ports (connections in TIME_WAIT after a burst): wait, it passes.
    if (errno != EADDRNOTAVAIL || attempt == 200) Die("connect");
    ::close(fd);
    std::this_thread::sleep_for(10ms);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  ex.peer = "127.0.0.1:" + std::to_string(ntohs(local.sin_port));

  const auto deadline = Clock::now() + kHardBound;
  const std::vector<std::size_t> ends = WriteEnds(plan, payload);
  std::size_t next_end = 0, written = 0;
  int pauses_left = 8;
  auto resume_at = Clock::now();
  bool writing = true;
  auto finish_writing = [&] {
    writing = false;
    if (!plan.slow && !plan.abort) ::shutdown(fd, SHUT_WR);
  };
  if (payload.empty()) finish_writing();
  char buf[16384];
  while (true) {
    if (plan.abort && !writing) {
      // Not before the server has a session for it (accepted is counted just before the
      // session is made): else the session could be made after our wait for the close,
      // and serve requests that count for a later connection from the same port. Until
      // our reset, it cannot close by itself (deadlines of 200 ms, the linger).
      while ((server.stats().accepted == accepted || server.stats().open == 0) &&
             Clock::now() < deadline)
        std::this_thread::sleep_for(20us);
      const linger reset{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
      ex.reset = ex.aborted = true;
      break;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      ex.hung = true;
      break;
    }
    const bool may_write = writing && now >= resume_at;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) + 1ms;
    if (writing && !may_write)
      wait = std::chrono::duration_cast<std::chrono::milliseconds>(resume_at - now) + 1ms;
    pollfd pfd{fd, static_cast<short>(POLLIN | (may_write ? POLLOUT : 0)), 0};
    if (::poll(&pfd, 1, static_cast<int>(wait.count())) < 0) {
      if (errno == EINTR) continue;
      Die("poll");
    }
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        ex.answers.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) break;  // the server closed
      if (errno == ECONNRESET) {
        ex.reset = true;
        break;
      }
      if (errno != EAGAIN && errno != EINTR) Die("recv");
    }
    if (may_write && (pfd.revents & POLLOUT)) {
      const std::size_t end = ends[next_end];
      const ssize_t n =
          ::send(fd, payload.data() + written, end - written, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EPIPE || errno == ECONNRESET) {
          writing = false;  // the server is gone: read what it said
        } else if (errno != EAGAIN && errno != EINTR) {
          Die("send");
        }
        continue;
      }
      written += static_cast<std::size_t>(n);
      if (written < end) continue;
      if (++next_end == ends.size()) {
        finish_writing();
      } else if (plan.split == 3 && pauses_left > 0) {
        --pauses_left;
        resume_at = Clock::now() + 1ms;
      }
    }
  }
  ::close(fd);
  return ex;
}

// --- The checks ---------------------------------------------------------------------

struct Answer {
  int status = 0;
  bool http11 = false;
  bool close = false;  // the server closes after it: HTTP/1.1 and Connection: close, or
                       // HTTP/1.0 without Connection: keep-alive
  std::optional<std::uint64_t> seq;
};

bool IEq(std::string_view a, std::string_view b) { return kv::IEquals(a, b); }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Parses what the server wrote into answers; interim ones are counted in *interim.
// Returns what is wrong with it, or "" when it is well formed. `cut_ok`: the connection
// was reset, so the last answer may be incomplete.
std::string ParseAnswers(std::string_view in, bool cut_ok, std::vector<Answer>* out,
                         std::size_t* interim) {
  *interim = 0;
  while (!in.empty()) {
    if (in.substr(0, 7) != "HTTP/1.") return "an answer does not start with HTTP/1.";
    const auto head_end = in.find("\r\n\r\n");
    if (head_end == std::string_view::npos) return cut_ok ? "" : "an answer head is cut short";
    std::string_view head = in.substr(0, head_end + 2);
    const auto line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    // "HTTP/1.x NNN reason"
    if (line.size() < 12 || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
        !AllDigits(line.substr(9, 3)) || (line.size() > 12 && line[12] != ' '))
      return "malformed status line";
    Answer a;
    a.http11 = line[7] == '1';
    a.status = std::stoi(std::string(line.substr(9, 3)));
    std::string_view connection;
    if (a.status < 100 || a.status > 599) return "status out of range";
    std::optional<std::uint64_t> length;
    int lengths = 0;
    for (std::string_view rest = head.substr(line_end + 2); !rest.empty();) {
      const auto e = rest.find("\r\n");
      const std::string_view h = rest.substr(0, e);
      rest.remove_prefix(e + 2);
      const auto colon = h.find(':');
      if (colon == 0 || colon == std::string_view::npos) return "malformed header line";
      const std::string_view name = h.substr(0, colon), value = Trim(h.substr(colon + 1));
      if (name.find_first_of(" \t") != std::string_view::npos) return "malformed header name";
      std::uint64_t v = 0;
      if (IEq(name, "Content-Length")) {
        ++lengths;
        if (!AllDigits(value) ||
            std::from_chars(value.data(), value.data() + value.size(), v).ec != std::errc())
          return "malformed Content-Length";
        length = v;
      } else if (IEq(name, "Connection")) {
        connection = value;
      } else if (IEq(name, "X-Seq")) {
        if (!AllDigits(value) ||
            std::from_chars(value.data(), value.data() + value.size(), v).ec != std::errc())
          return "malformed X-Seq";
        a.seq = v;
      } else if (IEq(name, "Transfer-Encoding")) {
        return "an answer with Transfer-Encoding";
      }
    }
    a.close = a.http11 ? IEq(connection, "close") : !IEq(connection, "keep-alive");
    in.remove_prefix(head_end + 4);
    if (a.status < 200) {
      if (a.status != 100 || lengths != 0) return "an interim answer other than 100 Continue";
      ++*interim;
      continue;
    }
    if (lengths != 1) return "a final answer without exactly one Content-Length";
    if (in.size() < *length) return cut_ok ? "" : "an answer body is cut short";
    in.remove_prefix(*length);
    out->push_back(a);
  }
  return "";
}

// Request heads the input could hold at most: every blank line (an empty line after a
// line feed) could end one. Counts more than Beast would (it needs CRLF) on purpose.
std::size_t HeadsBound(std::string_view in) {
  std::size_t n = 0;
  for (std::size_t i = 0; i + 1 < in.size(); ++i) {
    if (in[i] != '\n') continue;
    if (in[i + 1] == '\n' || (in[i + 1] == '\r' && i + 2 < in.size() && in[i + 2] == '\n')) ++n;
  }
  return n;
}

bool ServerOwnCode(int code) {
  switch (code) {
    case 400:  // malformed
    case 408:  // deadline
    case 413:  // body limit
    case 415:  // Content-Encoding
    case 417:  // Expect other than 100-continue
    case 431:  // head limit
    case 501:  // Transfer-Encoding other than chunked
    case 503:  // draining, or the connection cap
      return true;
    default:
      return false;
  }
}

// What is wrong with the exchange, or "".
// `handled`: requests the handler got on this connection; `refused`: answers the server
// counted as its own meanwhile.
std::string Check(std::string_view payload, const Exchange& ex, std::uint64_t handled,
                  std::uint64_t refused) {
  if (ex.hung) return "the connection did not close within the hard bound";
  if (ex.kept_open) return "the server kept the connection open after the client closed";
  std::vector<Answer> answers;
  std::size_t interim = 0;
  std::string err = ParseAnswers(ex.answers, ex.reset, &answers, &interim);
  if (!err.empty()) return err;
  const std::size_t heads = HeadsBound(payload);
  if (answers.size() > heads + 1) return "more answers than the input has request heads";
  if (interim > heads) return "more 100 Continue than the input has request heads";
  if (handled > heads) return "the handler got more requests than the input has heads";
  std::uint64_t next_seq = 0, own = 0;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const Answer& a = answers[i];
    const bool last = i + 1 == answers.size();
    if (a.close && !last) return "an answer that closes the connection is not the last";
    if (!a.seq) {
      if (!last) return "the server's own answer is not the last";
      if (!a.close) return "the server's own answer does not close the connection";
      if (!ServerOwnCode(a.status)) return "the server's own answer has an unexpected status";
      ++own;
      continue;
    }
    if (*a.seq != next_seq) return "answers out of request order (X-Seq)";
    ++next_seq;
  }
  if (!ex.reset && next_seq != handled)
    return "a request handed to the handler was not answered before the close";
  if (!ex.reset && own != refused) return "CountRefused does not match the server's own answers";
  return "";
}

std::string Escaped(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

// Per-run figures (replay prints them).
struct Totals {
  std::uint64_t inputs = 0, answers = 0, interim = 0, resets = 0, aborts = 0;
  std::map<int, std::uint64_t> by_status;
};
Totals totals;

// Runs one input; aborts with a description on a broken invariant.
void RunInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  Fixture& f = TheFixture();
  const Plan plan = PlanOf(data[0]);
  const std::uint64_t refused_before = f.handler.refused();
  const std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
  RunningServer& server = f.servers[plan.slow ? 1 : 0];
  Exchange ex = Run(*server.server, server.port, server.server->stats().accepted, plan, payload);
  // Our side is closed: the server's must follow (after a reset too), and only then is
  // the handler's count for this connection final.
  if (!ex.hung) {
    const auto until = Clock::now() + kHardBound;
    while (server.server->stats().open != 0 && Clock::now() < until)
      std::this_thread::sleep_for(20us);
    ex.kept_open = server.server->stats().open != 0;
  }
  const std::uint64_t handled = f.handler.TakeHandled(ex.peer);
  const std::uint64_t refused = f.handler.refused() - refused_before;
  const std::string err = Check(payload, ex, handled, refused);
  if (!err.empty()) {
    std::fprintf(stderr,
                 "fuzz_http: FINDING: %s\n  plan: byte0=0x%02x (slow=%d split=%d chunk=%zu)\n"
                 "  input: \"%s\"\n  read%s: \"%s\"\n  handler got %llu requests, the server "
                 "refused %llu\n",
                 err.c_str(), data[0], plan.slow, plan.split, plan.chunk, Escaped(payload).c_str(),
                 ex.reset ? " (then reset)" : "", Escaped(ex.answers).c_str(),
                 static_cast<unsigned long long>(handled),
                 static_cast<unsigned long long>(refused));
    std::abort();
  }
  static const bool verbose = std::getenv("FUZZ_HTTP_VERBOSE") != nullptr;
  if (verbose)
    std::fprintf(stderr, "  input: \"%s\"\n  read%s: \"%s\"\n", Escaped(payload).c_str(),
                 ex.reset ? " (then reset)" : "", Escaped(ex.answers).c_str());
  std::vector<Answer> answers;
  std::size_t interim = 0;
  ParseAnswers(ex.answers, ex.reset, &answers, &interim);
  ++totals.inputs;
  totals.answers += answers.size();
  totals.interim += interim;
  totals.resets += ex.reset && !ex.aborted;
  totals.aborts += ex.aborted;
  for (const Answer& a : answers) ++totals.by_status[a.status];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  RunInput(data, size);
  return 0;
}

#ifdef FUZZ_HTTP_REPLAY
// fuzz_http_replay CORPUS_DIR [MUTATIONS [SEED]]: every file of CORPUS_DIR (sorted by
// name), then MUTATIONS (default 3000) inputs made from them by a PRNG seeded with SEED
// (default 1; printed, so a failure replays exactly). Exits non-zero (abort) on a finding.
namespace {

// The checker must reject what it is there to reject (a test that cannot fail is no test).
void SelfTest() {
  auto bad = [](std::string_view answers, std::uint64_t handled, bool reset = false,
                std::uint64_t refused = 0) {
    Exchange ex;
    ex.answers = std::string(answers);
    ex.reset = reset;
    return !Check("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", ex, handled, refused).empty();
  };
  const std::string a0 = "HTTP/1.1 200 OK\r\nX-Seq: 0\r\nContent-Length: 2\r\n\r\nok";
  const std::string a1 = "HTTP/1.1 200 OK\r\nX-Seq: 1\r\nContent-Length: 2\r\n\r\nok";
  const std::string own =
      "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
  bool ok = !bad(a0 + a1, 2) && !bad(a0 + own, 1, false, 1) && !bad("", 0) &&
            !bad(a0 + a1.substr(0, 20), 2, /*reset=*/true);
  ok = ok && bad(a1 + a0, 2);                // out of order
  ok = ok && bad(a0, 2);                     // one request unanswered
  ok = ok && bad(own + a0, 1, false, 1);     // the server's own answer not last
  ok = ok && bad(a0 + a1.substr(0, 20), 2);  // cut short without a reset
  ok = ok && bad("HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
  ok = ok && bad("HTTP/1.1 200 OK\r\nX-Seq: 0\r\n\r\n", 1);  // no Content-Length
  ok = ok && bad(a0 + own, 1);                       // an own answer the server did not count
  ok = ok && bad(a0 + a1 + own + own, 2, false, 2);  // more answers than heads allow
  ok = ok && bad("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 0, false, 1);  // open
  ok = ok && bad("HTTP/1.0 200 OK\r\nX-Seq: 0\r\nContent-Length: 0\r\n\r\n" + a1, 2);
  Exchange hung;
  hung.hung = true;
  ok = ok && !Check("", hung, 0, 0).empty();
  if (!ok) {
    std::fprintf(stderr, "fuzz_http_replay: the checker's self-test failed\n");
    std::abort();
  }
}

std::vector<std::pair<std::string, std::string>> LoadSeeds(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> seeds;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    std::fprintf(stderr, "fuzz_http_replay: cannot open %s\n", dir.c_str());
    std::exit(2);
  }
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    std::ifstream in(dir + "/" + name, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    seeds.emplace_back(name, s.str());
  }
  ::closedir(d);
  std::sort(seeds.begin(), seeds.end());
  return seeds;
}

// Fragments that make a mutation likely to reach a different path.
constexpr std::array<std::string_view, 24> kTokens = {
    "\r\n",
    "\r\n\r\n",
    "GET /kv/k HTTP/1.1\r\n\r\n",
    "PUT /kv/k HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    "Transfer-Encoding: chunked\r\n",
    "Content-Length: 5\r\n",
    "Content-Length: 99999\r\n",
    "Expect: 100-continue\r\n",
    "Connection: close\r\n",
    "Connection: keep-alive\r\n",
    "Content-Encoding: gzip\r\n",
    "Origin: http://x\r\n",
    "0\r\n\r\n",
    "5\r\nhello\r\n",
    "fffffffffffffffff\r\n",
    "HTTP/1.0",
    "%",
    "%zz",
    "?prev_value=abc",
    "?size=5000",
    " ",
    "\t",
    std::string_view("\0", 1),
    "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
};

std::string Mutate(std::mt19937_64& rng,
                   const std::vector<std::pair<std::string, std::string>>& seeds) {
  auto pick = [&rng](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  std::string s = seeds[pick(seeds.size())].second;
  if (s.empty()) s.push_back('\0');
  const std::size_t steps = 1 + pick(4);
  for (std::size_t k = 0; k < steps; ++k) {
    const std::size_t pos = 1 + pick(s.size());  // byte 0 is the plan
    switch (pick(8)) {
      case 0:  // a new plan
        s[0] = static_cast<char>(rng());
        break;
      case 1:  // flip a byte
        if (pos < s.size()) s[pos] = static_cast<char>(s[pos] ^ (1u << pick(8)));
        break;
      case 2:  // a random byte
        s.insert(pos, 1, static_cast<char>(rng()));
        break;
      case 3:  // delete a range
        if (pos < s.size()) s.erase(pos, 1 + pick(std::min<std::size_t>(32, s.size() - pos)));
        break;
      case 4:  // duplicate a range (pipelining)
        if (pos < s.size()) {
          const std::string part = s.substr(pos, 1 + pick(s.size() - pos));
          s.insert(1 + pick(s.size()), part);
        }
        break;
      case 5:  // a token
        s.insert(pos, kTokens[pick(kTokens.size())]);
        break;
      case 6:  // splice another seed's tail (pipelined requests of two kinds)
      {
        const std::string& o = seeds[pick(seeds.size())].second;
        if (o.size() > 1) s.insert(pos, o.substr(1 + pick(o.size() - 1)));
        break;
      }
      default:  // cut the tail (a request that stops mid-way)
        if (pos < s.size()) s.resize(pos);
        break;
    }
  }
  if (s.size() > 16384) s.resize(16384);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS [SEED]]\n", argv[0]);
    return 2;
  }
  const std::size_t mutations = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 3000;
  const std::uint64_t seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1;
  SelfTest();
  const auto seeds = LoadSeeds(argv[1]);
  if (seeds.empty()) {
    std::fprintf(stderr, "fuzz_http_replay: no seeds in %s\n", argv[1]);
    return 2;
  }
  const auto t0 = Clock::now();
  for (const auto& [name, bytes] : seeds) {
    std::fprintf(stderr, "seed %s\n", name.c_str());
    RunInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("fuzz_http_replay: %zu seeds ok; %zu mutations, seed %llu\n", seeds.size(), mutations,
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < mutations; ++i) {
    const std::string input = Mutate(rng, seeds);
    RunInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "fuzz_http_replay: %llu inputs in %.1f s: %llu answers, %llu 100-continue, %llu "
      "resets by the server, %llu by the client\n  by status:",
      static_cast<unsigned long long>(totals.inputs), secs,
      static_cast<unsigned long long>(totals.answers),
      static_cast<unsigned long long>(totals.interim),
      static_cast<unsigned long long>(totals.resets),
      static_cast<unsigned long long>(totals.aborts));
  for (const auto& [code, n] : totals.by_status)
    std::printf(" %d:%llu", code, static_cast<unsigned long long>(n));
  std::printf("\n");
  TheFixture().Shutdown();
  return 0;
}
#endif
