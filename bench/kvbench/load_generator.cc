#include "load_generator.h"

#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>

#include "http_codec.h"
#include "proc_cpu.h"

namespace kvbench {
namespace {

using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

constexpr auto kSweepInterval = std::chrono::milliseconds(20);
constexpr auto kReconnectDelay = std::chrono::milliseconds(50);
constexpr size_t kReadChunkBytes = 16 * 1024;
// Preload gives up after this many failed writes in total (each failed key is retried).
constexpr uint64_t kPreloadFailuresMax = 1000;

enum class Phase { kPreload, kWarmup, kMeasure, kDone };

uint64_t NextRandom(uint64_t& state) {  // xorshift64*
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

class Generator;

// One keep-alive connection with at most one request in flight. Owned by Generator; every
// handler runs on the single io_context thread. `generation_` invalidates handlers of a
// socket that was closed (timeout, error, shutdown).
class Connection {
 public:
  Connection(Generator& gen, asio::io_context& io, const tcp::endpoint& endpoint, std::string host,
             uint64_t seed)
      : gen_(gen),
        socket_(io),
        retry_timer_(io),
        endpoint_(endpoint),
        host_(std::move(host)),
        rng_(seed | 1) {}

  void Connect();
  void Close();
  // Called by the sweeper: true when a connect or request has been outstanding too long.
  bool Overdue(Clock::time_point now, Clock::duration limit) const {
    return busy_ && now - started_ > limit;
  }
  void TimeOut();
  // Starts issuing again if connected and idle (after the preload ran out of keys).
  void Resume() {
    if (connected_ && !busy_) Issue();
  }

 private:
  void Issue();
  void ReadMore(uint64_t gen);
  void OnResponse(const ParsedResponse& r);
  void Fail(uint64_t* counter);
  void ScheduleReconnect();

  Generator& gen_;
  tcp::socket socket_;
  asio::steady_timer retry_timer_;
  tcp::endpoint endpoint_;
  std::string host_;
  uint64_t rng_;
  uint64_t generation_ = 0;
  bool busy_ = false;  // a connect or a request is outstanding
  bool connected_ = false;
  Clock::time_point started_;
  OpKind op_ = OpKind::kWrite;
  int64_t preload_key_ = -1;
  std::string out_, scratch_, key_, value_, in_;
  char chunk_[kReadChunkBytes];
};

class Generator {
 public:
  explicit Generator(const LoadOptions& o) : options_(o), sweep_timer_(io_), phase_timer_(io_) {}

  LoadResult Run();

  // --- used by Connection
  Phase phase() const { return phase_; }
  const LoadOptions& options() const { return options_; }
  PhaseResult& current() { return phase_ == Phase::kPreload ? result_.preload : result_.measure; }
  bool Recording() const { return phase_ == Phase::kPreload || phase_ == Phase::kMeasure; }
  // Preload: the next key to write, or -1 when none is left to hand out.
  int64_t TakePreloadKey();
  void PreloadDone(int64_t key, bool ok);

 private:
  void Sweep();
  void StartWarmup();
  void StartMeasure();
  void Finish();

  LoadOptions options_;
  asio::io_context io_;
  asio::steady_timer sweep_timer_;
  asio::steady_timer phase_timer_;
  std::vector<std::unique_ptr<Connection>> connections_;
  Phase phase_ = Phase::kPreload;
  LoadResult result_;
  Clock::time_point phase_start_;
  double cpu_start_s_ = -1;
  uint64_t next_preload_key_ = 0;
  uint64_t preload_written_ = 0;
  uint64_t preload_failures_ = 0;
  std::deque<int64_t> preload_retry_;
};

// ---------------------------------------------------------------- Connection

void Connection::Connect() {
  if (gen_.phase() == Phase::kDone) return;
  busy_ = true;
  connected_ = false;
  started_ = Clock::now();
  const uint64_t gen = ++generation_;
  socket_.async_connect(endpoint_, [this, gen](const asio::error_code& ec) {
    if (gen != generation_) return;
    if (ec) {
      Fail(&gen_.current().errors.connect);
      return;
    }
    asio::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    connected_ = true;
    busy_ = false;
    Issue();
  });
}

void Connection::Close() {
  ++generation_;
  busy_ = false;
  connected_ = false;
  asio::error_code ignored;
  socket_.close(ignored);
  retry_timer_.cancel();
}

void Connection::TimeOut() { Fail(&gen_.current().errors.timeout); }

void Connection::Fail(uint64_t* counter) {
  if (gen_.Recording()) ++*counter;
  if (preload_key_ >= 0) {
    const int64_t key = preload_key_;
    preload_key_ = -1;
    gen_.PreloadDone(key, false);
  }
  Close();
  ScheduleReconnect();
}

void Connection::ScheduleReconnect() {
  if (gen_.phase() == Phase::kDone) return;
  const uint64_t gen = generation_;
  retry_timer_.expires_after(kReconnectDelay);
  retry_timer_.async_wait([this, gen](const asio::error_code& ec) {
    if (ec || gen != generation_) return;
    Connect();
  });
}

void Connection::Issue() {
  const LoadOptions& o = gen_.options();
  if (gen_.phase() == Phase::kDone) return;
  uint64_t key_index;
  if (gen_.phase() == Phase::kPreload) {
    preload_key_ = gen_.TakePreloadKey();
    if (preload_key_ < 0) return;  // idle until the generator moves to warmup
    key_index = static_cast<uint64_t>(preload_key_);
    op_ = OpKind::kWrite;
  } else if (!o.get_path.empty()) {
    key_index = 0;
    op_ = OpKind::kRead;
  } else {
    key_index = NextRandom(rng_) % o.keys;
    const double u = static_cast<double>(NextRandom(rng_) >> 11) * 0x1.0p-53;
    op_ = u < o.read_ratio ? OpKind::kRead : OpKind::kWrite;
  }
  KeyName(key_index, key_, o.spread_keys);
  if (op_ == OpKind::kWrite) {
    value_.resize(o.value_bytes);
    StampValue(NextRandom(rng_), value_);
  }
  out_.clear();
  if (!o.get_path.empty() && gen_.phase() != Phase::kPreload) {
    AppendRequest(out_, "GET", o.get_path, host_, "", "");
  } else {
    AppendOp(out_, scratch_, o.target, op_, host_, key_, value_);
  }
  in_.clear();
  busy_ = true;
  started_ = Clock::now();
  const uint64_t gen = generation_;
  asio::async_write(socket_, asio::buffer(out_), [this, gen](const asio::error_code& ec, size_t) {
    if (gen != generation_) return;
    if (ec) {
      Fail(&gen_.current().errors.io);
      return;
    }
  });
  ReadMore(gen);
}

void Connection::ReadMore(uint64_t gen) {
  socket_.async_read_some(asio::buffer(chunk_), [this, gen](const asio::error_code& ec, size_t n) {
    if (gen != generation_) return;
    if (ec) {
      Fail(&gen_.current().errors.io);
      return;
    }
    in_.append(chunk_, n);
    const ParsedResponse r = ParseResponse(in_);
    switch (r.state) {
      case ParseState::kIncomplete:
        ReadMore(gen);
        return;
      case ParseState::kError:
        Fail(&gen_.current().errors.parse);
        return;
      case ParseState::kComplete:
        if (r.consumed_bytes != in_.size()) {  // bytes after the only response we asked for
          Fail(&gen_.current().errors.parse);
          return;
        }
        OnResponse(r);
        return;
    }
  });
}

void Connection::OnResponse(const ParsedResponse& r) {
  const auto latency = Clock::now() - started_;
  busy_ = false;
  const bool not_found_ok = op_ == OpKind::kRead && gen_.options().get_path.empty();
  const bool ok = (r.status >= 200 && r.status < 300) || (not_found_ok && r.status == 404);
  if (gen_.Recording()) {
    PhaseResult& p = gen_.current();
    if (ok) {
      const auto ns = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count());
      p.latency_ns.Record(ns);
      if (op_ == OpKind::kRead) {
        ++p.reads;
        if (r.status == 404) ++p.not_found;
        p.read_latency_ns.Record(ns);
      } else {
        ++p.writes;
        p.write_latency_ns.Record(ns);
      }
    } else if (r.status < 400) {
      ++p.errors.http_3xx;
    } else if (r.status < 500) {
      ++p.errors.http_4xx;
    } else {
      ++p.errors.http_5xx;
    }
  }
  if (preload_key_ >= 0) {
    const int64_t key = preload_key_;
    preload_key_ = -1;
    gen_.PreloadDone(key, ok);  // may move to warmup, which resumes this connection
    if (busy_ || gen_.phase() == Phase::kDone) return;
  }
  if (!r.keep_alive) {
    Close();
    Connect();
    return;
  }
  Issue();
}

// ---------------------------------------------------------------- Generator

int64_t Generator::TakePreloadKey() {
  if (!preload_retry_.empty()) {
    const int64_t key = preload_retry_.front();
    preload_retry_.pop_front();
    return key;
  }
  if (next_preload_key_ >= options_.keys) return -1;
  return static_cast<int64_t>(next_preload_key_++);
}

void Generator::PreloadDone(int64_t key, bool ok) {
  if (phase_ != Phase::kPreload) return;
  if (ok) {
    ++preload_written_;
  } else if (++preload_failures_ > kPreloadFailuresMax) {
    std::fprintf(stderr, "kvbench: preload failed: more than %llu failed writes\n",
                 static_cast<unsigned long long>(kPreloadFailuresMax));
    result_.preload_ok = false;
    Finish();
    return;
  } else {
    preload_retry_.push_back(key);
  }
  if (preload_written_ == options_.keys) {
    result_.preload.elapsed_s = std::chrono::duration<double>(Clock::now() - phase_start_).count();
    StartWarmup();
  }
}

void Generator::Sweep() {
  const auto now = Clock::now();
  const auto limit = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(options_.request_timeout_s));
  for (auto& c : connections_) {
    if (c->Overdue(now, limit)) c->TimeOut();
  }
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec && phase_ != Phase::kDone) Sweep();
  });
}

void Generator::StartWarmup() {
  phase_ = Phase::kWarmup;
  // Connections left idle when the preload ran out of keys start issuing again; those
  // connecting or waiting to reconnect issue on their own.
  for (auto& c : connections_) c->Resume();
  phase_timer_.expires_after(std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(options_.warmup_s)));
  phase_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) StartMeasure();
  });
}

void Generator::StartMeasure() {
  phase_ = Phase::kMeasure;
  if (!options_.cpu_pids.empty()) cpu_start_s_ = CpuSeconds(options_.cpu_pids);
  phase_start_ = Clock::now();
  phase_timer_.expires_after(std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(options_.duration_s)));
  phase_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec) return;
    result_.measure.elapsed_s = std::chrono::duration<double>(Clock::now() - phase_start_).count();
    if (cpu_start_s_ >= 0) {
      const double end_s = CpuSeconds(options_.cpu_pids);
      if (end_s >= 0) result_.measure.server_cpu_s = end_s - cpu_start_s_;
    }
    Finish();
  });
}

void Generator::Finish() {
  phase_ = Phase::kDone;
  for (auto& c : connections_) c->Close();
  sweep_timer_.cancel();
  phase_timer_.cancel();
  io_.stop();
}

LoadResult Generator::Run() {
  tcp::resolver resolver(io_);
  std::vector<tcp::endpoint> resolved;
  for (const Endpoint& e : options_.endpoints) {
    asio::error_code ec;
    auto results = resolver.resolve(e.host, e.port, ec);
    if (ec || results.empty()) {
      std::fprintf(stderr, "kvbench: cannot resolve %s: %s\n", e.HostPort().c_str(),
                   ec.message().c_str());
      result_.preload_ok = false;
      return result_;
    }
    resolved.push_back(*results.begin());
  }
  for (int i = 0; i < options_.connections; ++i) {
    const size_t e = static_cast<size_t>(i) % resolved.size();
    connections_.push_back(std::make_unique<Connection>(
        *this, io_, resolved[e], options_.endpoints[e].HostPort(),
        options_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(i) + 1));
  }
  phase_start_ = Clock::now();
  phase_ = options_.preload ? Phase::kPreload : Phase::kWarmup;
  for (auto& c : connections_) c->Connect();
  if (!options_.preload) StartWarmup();
  Sweep();
  io_.run();
  return result_;
}

}  // namespace

LoadResult RunLoad(const LoadOptions& options) {
  auto gen = std::make_unique<Generator>(options);  // large: histograms and buffers
  return gen->Run();
}

}  // namespace kvbench
