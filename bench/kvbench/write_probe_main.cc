// write_probe: measures how long a cluster takes to accept a write again, e.g. after its
// leader was killed. It starts a new write attempt on a fresh connection to every address
// each --interval-ms (earlier attempts stay in flight, so a write that waits for the new
// leader is not abandoned) and prints the time from --since-ns to the first 2xx answer.
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "flags.h"
#include "http_codec.h"
#include "workload.h"

namespace {

using asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr char kUsage[] = R"(usage: write_probe --addr HOST:PORT[,...] [flags]

Repeats one write against every address until one succeeds; prints the milliseconds
from --since-ns (CLOCK_REALTIME, e.g. `date +%s%N` taken just before kill -9) to the
first successful answer, and the address that gave it.

flags:
  --addr LIST            addresses to write to (default 127.0.0.1:3000)
  --target NAME          kvserver or etcd (default kvserver)
  --since-ns NS          time origin in ns since the epoch (default: now)
  --interval-ms N        a new attempt per address every N ms (default 20)
  --attempt-timeout S    an attempt without an answer after S s is dropped (default 2)
  --timeout S            give up after S s (exit status 1) (default 30)
  --in-flight-max N      attempts in flight per address at most (default 200)
  --key K                the key written (default failover-probe)
)";

int64_t RealtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Attempt {
  explicit Attempt(asio::io_context& io) : socket(io) {}
  tcp::socket socket;
  size_t endpoint = 0;
  SteadyClock::time_point deadline;
  bool done = false;
  std::string out, in;
  char chunk[4096];
};

class Probe {
 public:
  Probe(std::vector<kvbench::Endpoint> endpoints, kvbench::Target target, std::string key,
        int64_t since_ns, std::chrono::milliseconds interval, SteadyClock::duration attempt_timeout,
        SteadyClock::duration timeout, int in_flight_max)
      : endpoints_(std::move(endpoints)),
        target_(target),
        key_(std::move(key)),
        since_ns_(since_ns),
        interval_(interval),
        attempt_timeout_(attempt_timeout),
        in_flight_max_(in_flight_max),
        tick_timer_(io_),
        give_up_at_(SteadyClock::now() + timeout),
        in_flight_(endpoints_.size(), 0) {}

  int Run() {
    tcp::resolver resolver(io_);
    for (const auto& e : endpoints_) {
      asio::error_code ec;
      auto results = resolver.resolve(e.host, e.port, ec);
      if (ec || results.empty()) {
        std::fprintf(stderr, "write_probe: cannot resolve %s\n", e.HostPort().c_str());
        return 2;
      }
      resolved_.push_back(*results.begin());
    }
    Tick();
    io_.run();
    if (winner_ < 0) {
      std::fprintf(stderr,
                   "write_probe: no write succeeded in time (attempts %llu, connect errors %llu, "
                   "non-2xx %llu, last status %d)\n",
                   static_cast<unsigned long long>(attempts_),
                   static_cast<unsigned long long>(connect_errors_),
                   static_cast<unsigned long long>(non_2xx_), last_status_);
      return 1;
    }
    std::printf("elapsed_ms %.1f addr %s attempts %llu\n",
                static_cast<double>(success_ns_ - since_ns_) / 1e6,
                endpoints_[static_cast<size_t>(winner_)].HostPort().c_str(),
                static_cast<unsigned long long>(attempts_));
    return 0;
  }

 private:
  void Tick() {
    const auto now = SteadyClock::now();
    if (now >= give_up_at_) {
      Stop();
      return;
    }
    for (auto& a : attempts_list_) {
      if (!a->done && now >= a->deadline) Finish(*a);
    }
    for (size_t e = 0; e < resolved_.size(); ++e) {
      if (in_flight_[e] < in_flight_max_) Launch(e);
    }
    tick_timer_.expires_after(interval_);
    tick_timer_.async_wait([this](const asio::error_code& ec) {
      if (!ec) Tick();
    });
  }

  void Launch(size_t e) {
    attempts_list_.push_back(std::make_unique<Attempt>(io_));
    Attempt* a = attempts_list_.back().get();
    a->endpoint = e;
    a->deadline = SteadyClock::now() + attempt_timeout_;
    ++in_flight_[e];
    ++attempts_;
    std::string scratch, value(16, 'x');
    kvbench::StampValue(attempts_, value);
    kvbench::AppendOp(a->out, scratch, target_, kvbench::OpKind::kWrite, endpoints_[e].HostPort(),
                      key_, value);
    a->socket.async_connect(resolved_[e], [this, a](const asio::error_code& ec) {
      if (a->done) return;
      if (ec) {
        ++connect_errors_;
        Finish(*a);
        return;
      }
      asio::error_code ignored;
      a->socket.set_option(tcp::no_delay(true), ignored);
      asio::async_write(a->socket, asio::buffer(a->out),
                        [this, a](const asio::error_code& wec, size_t) {
                          if (!a->done && wec) Finish(*a);
                        });
      Read(a);
    });
  }

  void Read(Attempt* a) {
    a->socket.async_read_some(
        asio::buffer(a->chunk), [this, a](const asio::error_code& ec, size_t n) {
          if (a->done) return;
          if (ec) {
            Finish(*a);
            return;
          }
          a->in.append(a->chunk, n);
          const kvbench::ParsedResponse r = kvbench::ParseResponse(a->in);
          if (r.state == kvbench::ParseState::kIncomplete) {
            Read(a);
            return;
          }
          if (r.state == kvbench::ParseState::kComplete && r.status >= 200 && r.status < 300) {
            success_ns_ = RealtimeNs();
            winner_ = static_cast<int>(a->endpoint);
            Finish(*a);
            Stop();
            return;
          }
          ++non_2xx_;
          last_status_ = r.status;
          Finish(*a);
        });
  }

  void Finish(Attempt& a) {
    if (a.done) return;
    a.done = true;
    --in_flight_[a.endpoint];
    asio::error_code ignored;
    a.socket.close(ignored);
  }

  void Stop() {
    tick_timer_.cancel();
    for (auto& a : attempts_list_) Finish(*a);
    io_.stop();
  }

  std::vector<kvbench::Endpoint> endpoints_;
  kvbench::Target target_;
  std::string key_;
  int64_t since_ns_;
  std::chrono::milliseconds interval_;
  SteadyClock::duration attempt_timeout_;
  int in_flight_max_;
  asio::io_context io_;
  asio::steady_timer tick_timer_;
  SteadyClock::time_point give_up_at_;
  std::vector<tcp::endpoint> resolved_;
  std::vector<int> in_flight_;
  // Attempts live until exit (their sockets are closed when they finish), so handlers never
  // see a freed attempt. Bounded by timeout / interval per address.
  std::vector<std::unique_ptr<Attempt>> attempts_list_;
  uint64_t attempts_ = 0;
  uint64_t connect_errors_ = 0;
  uint64_t non_2xx_ = 0;
  int last_status_ = 0;
  int winner_ = -1;
  int64_t success_ns_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  kvbench::Flags flags(argc, argv, {"help", "h"});
  if (flags.Has("help") || flags.Has("h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  auto endpoints = flags.Endpoints("addr", "127.0.0.1:3000");
  const std::string target = flags.String("target", "kvserver");
  const int64_t since_ns = flags.Int("since-ns", RealtimeNs());
  const int64_t interval_ms = flags.Int("interval-ms", 20);
  const double attempt_timeout_s = flags.Double("attempt-timeout", 2);
  const double timeout_s = flags.Double("timeout", 30);
  const int64_t in_flight_max = flags.Int("in-flight-max", 200);
  const std::string key = flags.String("key", "failover-probe");
  std::string problem = flags.error();
  if (problem.empty() && !flags.Unused().empty())
    problem = std::string("unknown flag --").append(flags.Unused()[0]);
  if (problem.empty() && target != "kvserver" && target != "etcd") {
    problem = "--target must be kvserver or etcd";
  }
  if (problem.empty() &&
      (interval_ms < 1 || attempt_timeout_s <= 0 || timeout_s <= 0 || in_flight_max < 1)) {
    problem = "--interval-ms, --attempt-timeout, --timeout and --in-flight-max must be positive";
  }
  if (!problem.empty()) {
    std::fprintf(stderr, "write_probe: %s (try --help)\n", problem.c_str());
    return 2;
  }
  auto seconds = [](double s) {
    return std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(s));
  };
  Probe probe(std::move(endpoints),
              target == "etcd" ? kvbench::Target::kEtcd : kvbench::Target::kKvserver, key, since_ns,
              std::chrono::milliseconds(interval_ms), seconds(attempt_timeout_s),
              seconds(timeout_s), static_cast<int>(in_flight_max));
  return probe.Run();
}
