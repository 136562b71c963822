// connflood: holds many connections open against one HTTP server, the way an idle crowd
// and a slowloris attacker would (docs/performance.md, the connection-flood scenario).
//
//   connflood --addr 127.0.0.1:3000 --idle 10000 --slow 1000 --duration 60
//
// - Idle connections: each sends one complete `GET /health HTTP/1.1` request, reads the
//   answer, then stays open and silent (keep-alive). Closed by the server: reopened.
// - Slowloris connections: each sends a request head that never ends, one byte every 1-2 s
//   (jittered). Closed by the server (e.g. 408 at its header deadline): reopened.
// Connections are opened at `--rate` per second (idle and slow interleaved), a closed one is
// reopened after `--reconnect-ms`. One thread, non-blocking sockets, epoll (Linux).
//
// Prints a status line every `--status-interval` seconds on stdout
//   connflood t=12.0 idle_open=10000 idle_answered=10000 slow_open=1000 connecting=0 ...
// and, at the end (after `--duration` s, 0 = until SIGINT/SIGTERM), one JSON object.
// RLIMIT_NOFILE is raised to its hard limit at start.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kvbench/flags.h"
#include "kvbench/http_codec.h"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kUsage[] = R"(usage: connflood --addr HOST:PORT [flags]

Opens --idle keep-alive connections (one GET /health each, then silent) and --slow
slowloris connections (a request head that never ends, one byte every 1-2 s) to one
address, reopens any the server closes, and reports how many are open.

flags:
  --addr HOST:PORT        server (default 127.0.0.1:3000)
  --idle N                idle keep-alive connections (default 10000)
  --slow M                slowloris connections (default 1000)
  --duration S            seconds to run, 0 = until SIGINT/SIGTERM (default 0)
  --rate R                new connections per second while ramping up (default 2000)
  --reconnect-ms MS       delay before reopening a closed connection (default 100)
  --drip-min-ms MS        shortest gap between two slowloris bytes (default 1000)
  --drip-max-ms MS        longest gap (default 2000)
  --path P                the idle connections' request path (default /health)
  --status-interval S     seconds between status lines, 0 = none (default 1)

Output: status lines, then one JSON object (counts now and at their peak, connects,
connect errors, closes by the server, reopens, answers). Exit status 0, 2 for bad flags.
)";

constexpr size_t kReadChunkBytes = 4096;
constexpr auto kScanInterval = milliseconds(20);
constexpr auto kConnectFailureBackoff = milliseconds(500);

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

enum class Kind : uint8_t { kIdle, kSlow };
enum class State : uint8_t {
  kWaiting,     // closed; (re)connect at next_at
  kConnecting,  // non-blocking connect in progress
  kSending,     // idle: request partly written
  kAnswer,      // idle: request written, answer not complete
  kQuiet,       // idle: answered, keep-alive and silent
  kDripping,    // slow: next byte of the endless head at next_at
};

struct Conn {
  Kind kind = Kind::kIdle;
  State state = State::kWaiting;
  int fd = -1;
  bool opened_before = false;
  bool unsolicited = false;  // bytes arrived that answer no request of ours
  Clock::time_point next_at;
  size_t sent = 0;  // request bytes (idle) or head bytes (slow) written
  std::string in;   // idle: the answer so far
};

struct Counts {
  uint64_t connects = 0;        // connections established
  uint64_t connect_errors = 0;  // connect refused or failed, socket() failed (EMFILE...)
  uint64_t reconnects = 0;      // connects after a close (second and later per slot)
  uint64_t closed_idle = 0;     // idle connections closed or reset by the server
  uint64_t closed_slow = 0;     // slowloris connections closed or reset by the server
  uint64_t answers_ok = 0;      // 2xx answers to the idle connections' request
  uint64_t answers_error = 0;   // other answers to it
  uint64_t unsolicited = 0;     // connections that got bytes without (or after) a request
  uint64_t parse_errors = 0;    // unframed or malformed answers
};

struct Snapshot {
  size_t idle_open = 0;  // connected (sending, awaiting the answer or quiet)
  size_t idle_answered = 0;
  size_t slow_open = 0;
  size_t connecting = 0;
};

class Flood {
 public:
  Flood(sockaddr_storage addr, socklen_t addr_len, std::string host, std::string path)
      : addr_(addr), addr_len_(addr_len), host_(std::move(host)) {
    kvbench::AppendRequest(request_, "GET", path, host_, "", "");
    head_ = "GET ";
    head_.append(path).append(" HTTP/1.1\r\nHost: ").append(host_).append("\r\nX-Slow: ");
  }

  int Run(int idle, int slow, double duration_s, double rate, milliseconds reconnect,
          milliseconds drip_min, milliseconds drip_max, double status_interval_s);

 private:
  void StartConnect(size_t i, Clock::time_point now);
  void OnConnected(size_t i, Clock::time_point now);
  void OnWritable(size_t i, Clock::time_point now);
  void OnReadable(size_t i, Clock::time_point now);
  void WriteRequest(size_t i, Clock::time_point now);
  void Drip(size_t i, Clock::time_point now);
  void CloseByServer(size_t i, Clock::time_point now);
  void Drop(size_t i, Clock::time_point retry_at);
  void Watch(size_t i, uint32_t events, bool add);
  milliseconds DripGap();
  Snapshot Take() const;

  sockaddr_storage addr_;
  socklen_t addr_len_;
  std::string host_;
  std::string request_;
  std::string head_;
  int epoll_fd_ = -1;
  std::vector<Conn> conns_;
  Counts counts_;
  milliseconds reconnect_{100};
  milliseconds drip_min_{1000};
  milliseconds drip_max_{2000};
  uint64_t rng_ = 0x9E3779B97F4A7C15ULL;
  char chunk_[kReadChunkBytes];
};

milliseconds Flood::DripGap() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const auto span = static_cast<uint64_t>((drip_max_ - drip_min_).count()) + 1;
  return drip_min_ + milliseconds(static_cast<int64_t>(rng_ % span));
}

void Flood::Watch(size_t i, uint32_t events, bool add) {
  epoll_event ev{};
  ev.events = events | EPOLLRDHUP;
  ev.data.u64 = i;
  epoll_ctl(epoll_fd_, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, conns_[i].fd, &ev);
}

void Flood::Drop(size_t i, Clock::time_point retry_at) {
  Conn& c = conns_[i];
  if (c.fd >= 0) close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
  c.state = State::kWaiting;
  c.next_at = retry_at;
  c.sent = 0;
  c.in.clear();
  c.unsolicited = false;
}

void Flood::CloseByServer(size_t i, Clock::time_point now) {
  ++(conns_[i].kind == Kind::kIdle ? counts_.closed_idle : counts_.closed_slow);
  Drop(i, now + reconnect_);
}

void Flood::StartConnect(size_t i, Clock::time_point now) {
  Conn& c = conns_[i];
  c.fd = socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    ++counts_.connect_errors;
    Drop(i, now + kConnectFailureBackoff);
    return;
  }
  if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), addr_len_) == 0) {
    Watch(i, EPOLLIN, true);
    OnConnected(i, now);
    return;
  }
  if (errno != EINPROGRESS) {
    ++counts_.connect_errors;
    Drop(i, now + kConnectFailureBackoff);
    return;
  }
  c.state = State::kConnecting;
  Watch(i, EPOLLOUT, true);
}

void Flood::OnConnected(size_t i, Clock::time_point now) {
  Conn& c = conns_[i];
  ++counts_.connects;
  if (c.opened_before) ++counts_.reconnects;
  c.opened_before = true;
  const int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c.sent = 0;
  if (c.kind == Kind::kIdle) {
    c.state = State::kSending;
    WriteRequest(i, now);
  } else {
    c.state = State::kDripping;
    Watch(i, EPOLLIN, false);
    Drip(i, now);
  }
}

void Flood::WriteRequest(size_t i, Clock::time_point now) {
  Conn& c = conns_[i];
  while (c.sent < request_.size()) {
    const ssize_t n = send(c.fd, request_.data() + c.sent, request_.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      Watch(i, EPOLLIN | EPOLLOUT, false);
      return;
    }
    if (n < 0) {
      CloseByServer(i, now);
      return;
    }
    c.sent += static_cast<size_t>(n);
  }
  c.state = State::kAnswer;
  Watch(i, EPOLLIN, false);
}

void Flood::Drip(size_t i, Clock::time_point now) {
  Conn& c = conns_[i];
  const char byte = c.sent < head_.size() ? head_[c.sent] : 'a';
  const ssize_t n = send(c.fd, &byte, 1, MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    CloseByServer(i, now);
    return;
  }
  if (n == 1) ++c.sent;
  c.next_at = now + DripGap();
}

void Flood::OnWritable(size_t i, Clock::time_point now) {
  Conn& c = conns_[i];
  if (c.state == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      ++counts_.connect_errors;
      Drop(i, now + kConnectFailureBackoff);
      return;
    }
    Watch(i, EPOLLIN, false);
    OnConnected(i, now);
  } else if (c.state == State::kSending) {
    WriteRequest(i, now);
  }
}

void Flood::OnReadable(size_t i, Clock::time_point now) {
  Conn& c = conns_[i];
  for (;;) {
    const ssize_t n = recv(c.fd, chunk_, sizeof(chunk_), 0);
    if (n == 0) {
      CloseByServer(i, now);
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      CloseByServer(i, now);
      return;
    }
    if (c.state != State::kAnswer) {
      // Bytes nobody asked for (a 408 or 503 before the close): dropped, counted once per
      // connection.
      if (!c.unsolicited) ++counts_.unsolicited;
      c.unsolicited = true;
      continue;
    }
    c.in.append(chunk_, static_cast<size_t>(n));
    const kvbench::ParsedResponse r = kvbench::ParseResponse(c.in);
    if (r.state == kvbench::ParseState::kIncomplete) continue;
    if (r.state == kvbench::ParseState::kError) {
      ++counts_.parse_errors;
      Drop(i, now + reconnect_);
      return;
    }
    ++(r.status >= 200 && r.status < 300 ? counts_.answers_ok : counts_.answers_error);
    c.in.clear();
    c.state = State::kQuiet;
  }
}

Snapshot Flood::Take() const {
  Snapshot s;
  for (const Conn& c : conns_) {
    switch (c.state) {
      case State::kWaiting:
        break;
      case State::kConnecting:
        ++s.connecting;
        break;
      case State::kSending:
      case State::kAnswer:
        ++s.idle_open;
        break;
      case State::kQuiet:
        ++s.idle_open;
        ++s.idle_answered;
        break;
      case State::kDripping:
        ++s.slow_open;
        break;
    }
  }
  return s;
}

int Flood::Run(int idle, int slow, double duration_s, double rate, milliseconds reconnect,
               milliseconds drip_min, milliseconds drip_max, double status_interval_s) {
  reconnect_ = reconnect;
  drip_min_ = drip_min;
  drip_max_ = drip_max;
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    std::perror("connflood: epoll_create1");
    return 1;
  }
  const auto start = Clock::now();
  const int total = idle + slow;
  conns_.resize(static_cast<size_t>(total));
  for (int i = 0; i < total; ++i) {
    // Interleave: slot i is slow when it crosses a multiple of total/slow.
    const bool is_slow = slow > 0 && (static_cast<int64_t>(i + 1) * slow / total) !=
                                         (static_cast<int64_t>(i) * slow / total);
    Conn& c = conns_[static_cast<size_t>(i)];
    c.kind = is_slow ? Kind::kSlow : Kind::kIdle;
    c.next_at = start + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(static_cast<double>(i) / rate));
  }
  const auto deadline = duration_s > 0 ? start + std::chrono::duration_cast<Clock::duration>(
                                                     std::chrono::duration<double>(duration_s))
                                       : Clock::time_point::max();
  const auto status_every =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(status_interval_s));
  auto next_status = start + status_every;
  auto next_scan = start;
  Snapshot peak;
  std::vector<epoll_event> events(1024);
  while (g_stop == 0) {
    auto now = Clock::now();
    if (now >= deadline) break;
    const auto wait = std::min(next_scan, deadline) - now;
    const int timeout_ms = static_cast<int>(
        std::max<int64_t>(0, std::chrono::duration_cast<milliseconds>(wait).count()));
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    now = Clock::now();
    for (int e = 0; e < n; ++e) {
      const size_t i = events[static_cast<size_t>(e)].data.u64;
      const uint32_t ev = events[static_cast<size_t>(e)].events;
      if (conns_[i].fd < 0) continue;
      if (ev & EPOLLOUT) OnWritable(i, now);
      if (conns_[i].fd < 0) continue;
      if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        if (conns_[i].state == State::kConnecting) {
          OnWritable(i, now);  // the connect failed: SO_ERROR says why
        } else {
          OnReadable(i, now);
        }
      }
    }
    if (now >= next_scan) {
      for (size_t i = 0; i < conns_.size(); ++i) {
        Conn& c = conns_[i];
        if (c.next_at > now) continue;
        if (c.state == State::kWaiting) {
          StartConnect(i, now);
        } else if (c.state == State::kDripping) {
          Drip(i, now);
        }
      }
      next_scan = now + kScanInterval;
    }
    if (status_interval_s > 0 && now >= next_status) {
      const Snapshot s = Take();
      peak.idle_open = std::max(peak.idle_open, s.idle_open);
      peak.idle_answered = std::max(peak.idle_answered, s.idle_answered);
      peak.slow_open = std::max(peak.slow_open, s.slow_open);
      std::printf(
          "connflood t=%.1f idle_open=%zu idle_answered=%zu slow_open=%zu connecting=%zu "
          "connects=%llu connect_errors=%llu closed_idle=%llu closed_slow=%llu\n",
          std::chrono::duration<double>(now - start).count(), s.idle_open, s.idle_answered,
          s.slow_open, s.connecting, static_cast<unsigned long long>(counts_.connects),
          static_cast<unsigned long long>(counts_.connect_errors),
          static_cast<unsigned long long>(counts_.closed_idle),
          static_cast<unsigned long long>(counts_.closed_slow));
      std::fflush(stdout);
      next_status = now + status_every;
    }
  }
  const Snapshot s = Take();
  peak.idle_open = std::max(peak.idle_open, s.idle_open);
  peak.idle_answered = std::max(peak.idle_answered, s.idle_answered);
  peak.slow_open = std::max(peak.slow_open, s.slow_open);
  std::printf(
      "{\"idle_target\":%d,\"slow_target\":%d,\"seconds\":%.1f,\"idle_open\":%zu,"
      "\"idle_answered\":%zu,\"slow_open\":%zu,\"connecting\":%zu,\"peak_idle_open\":%zu,"
      "\"peak_idle_answered\":%zu,\"peak_slow_open\":%zu,\"connects\":%llu,"
      "\"connect_errors\":%llu,\"reconnects\":%llu,\"closed_idle\":%llu,\"closed_slow\":%llu,"
      "\"answers_ok\":%llu,\"answers_error\":%llu,\"unsolicited\":%llu,\"parse_errors\":%llu}\n",
      idle, slow, std::chrono::duration<double>(Clock::now() - start).count(), s.idle_open,
      s.idle_answered, s.slow_open, s.connecting, peak.idle_open, peak.idle_answered,
      peak.slow_open, static_cast<unsigned long long>(counts_.connects),
      static_cast<unsigned long long>(counts_.connect_errors),
      static_cast<unsigned long long>(counts_.reconnects),
      static_cast<unsigned long long>(counts_.closed_idle),
      static_cast<unsigned long long>(counts_.closed_slow),
      static_cast<unsigned long long>(counts_.answers_ok),
      static_cast<unsigned long long>(counts_.answers_error),
      static_cast<unsigned long long>(counts_.unsolicited),
      static_cast<unsigned long long>(counts_.parse_errors));
  std::fflush(stdout);
  for (Conn& c : conns_) {
    if (c.fd >= 0) close(c.fd);
  }
  close(epoll_fd_);
  return 0;
}

void RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace

int main(int argc, char** argv) {
  kvbench::Flags flags(argc, argv, {"help", "h"});
  if (flags.Has("help") || flags.Has("h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const auto endpoints = flags.Endpoints("addr", "127.0.0.1:3000");
  const auto idle = flags.Int("idle", 10000);
  const auto slow = flags.Int("slow", 1000);
  const double duration_s = flags.Double("duration", 0);
  const double rate = flags.Double("rate", 2000);
  const auto reconnect_ms = flags.Int("reconnect-ms", 100);
  const auto drip_min_ms = flags.Int("drip-min-ms", 1000);
  const auto drip_max_ms = flags.Int("drip-max-ms", 2000);
  const std::string path = flags.String("path", "/health");
  const double status_interval_s = flags.Double("status-interval", 1);
  std::string problem = flags.error();
  if (problem.empty() && !flags.Unused().empty())
    problem = std::string("unknown flag --").append(flags.Unused()[0]);
  if (problem.empty() && endpoints.size() != 1) problem = "--addr takes one HOST:PORT";
  if (problem.empty() && (idle < 0 || slow < 0 || idle + slow < 1 || idle + slow > 1000000)) {
    problem = "--idle and --slow must be >= 0, their sum in 1..1000000";
  }
  if (problem.empty() && (duration_s < 0 || rate <= 0 || reconnect_ms < 0 || drip_min_ms < 1 ||
                          drip_max_ms < drip_min_ms || status_interval_s < 0)) {
    problem =
        "--rate > 0, --duration, --status-interval and --reconnect-ms >= 0, "
        "1 <= --drip-min-ms <= --drip-max-ms";
  }
  if (problem.empty() && (path.empty() || path[0] != '/')) problem = "--path must start with '/'";
  if (!problem.empty()) {
    std::fprintf(stderr, "connflood: %s (try --help)\n", problem.c_str());
    return 2;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(endpoints[0].host.c_str(), endpoints[0].port.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    std::fprintf(stderr, "connflood: cannot resolve %s: %s\n", endpoints[0].HostPort().c_str(),
                 gai_strerror(rc));
    return 1;
  }
  sockaddr_storage addr{};
  std::memcpy(&addr, found->ai_addr, found->ai_addrlen);
  const auto addr_len = static_cast<socklen_t>(found->ai_addrlen);
  freeaddrinfo(found);

  RaiseFileLimit();
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  Flood flood(addr, addr_len, endpoints[0].HostPort(), path);
  return flood.Run(static_cast<int>(idle), static_cast<int>(slow), duration_s, rate,
                   milliseconds(reconnect_ms), milliseconds(drip_min_ms), milliseconds(drip_max_ms),
                   status_interval_s);
}
