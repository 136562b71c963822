// host_socket_bench: issue 17's idle target end to end over real sockets. Three
// runtime::HostCore processes (here: three io threads of one process, each with its own
// asio::io_context), each with a Transport speaking protocol version 4 on loopback
// (TransportOptions::host), a ticker, and a replica of every group over MemoryStorage.
// Readies are handled on the io thread (idle groups write nothing, so no disk lane is
// needed to measure them). The groups elect, commit one entry each and fall asleep; then
// each io thread's CPU time (pthread_getcpuclockid) and the bytes each sends are
// measured over a window of wall-clock time.
//
//   host_socket_bench [--groups N] [--seconds S] [--tick-ms MS] [--quiesce on|off]
//
// The harness is the io lane of the host runtime to come (docs/multi-raft.md), without
// its disk and apply lanes: it is a benchmark, not the runtime.
#include <pthread.h>
#include <time.h>

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "raft/storage.h"
#include "runtime/host_core.h"
#include "runtime/transport.h"
#include "runtime_test_util.h"
#include "wire/group_frames.h"

namespace {

using raft::NodeId;
using raft::Status;
using raft::runtime::GroupId;
using namespace std::chrono_literals;

class Proc final : public raft::runtime::TransportHandler {
 public:
  Proc(NodeId self, std::size_t groups, bool quiesce, std::chrono::milliseconds tick)
      : tick_(tick), ticker_(io_) {
    raft::runtime::HostCoreOptions ho;
    ho.self = self;
    ho.liveness_timeout_ticks = 10;
    host_ = std::make_unique<raft::runtime::HostCore>(ho);
    raft::runtime::TransportOptions to;
    to.self = self;
    to.listen_addr = "127.0.0.1:0";
    to.host = true;
    transport_ = std::make_unique<raft::runtime::Transport>(io_, to, this, nullptr);
    for (GroupId g = 1; g <= groups; ++g) {
      auto& s = storages_[g];
      s = std::make_unique<raft::MemoryStorage>();
      if (!s->Bootstrap({1, 2, 3}).ok()) std::abort();
      raft::Config c;
      c.id = self;
      c.seed = g * 7919 + self;
      c.quiesce = quiesce;
      if (!host_->AddGroup(g, c, s.get()).ok()) std::abort();
    }
  }
  ~Proc() override { Stop(); }

  Status Listen() { return transport_->Listen(); }
  std::uint16_t port() const { return transport_->port(); }
  void AddPeer(NodeId id, const std::string& addr) {
    transport_->SetPeerAddress(id, addr);
    host_->AddPeer(id);
  }

  void Start() {
    Arm();
    thread_ = std::thread([this] { io_.run(); });
  }
  void Stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      ticker_.cancel();
      transport_->Stop();
    });
    thread_.join();
  }

  // Runs f on the io thread and waits for its result.
  template <typename F>
  auto Call(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(io_, [&task] { task(); });
    return result.get();
  }

  // CPU seconds of the io thread so far.
  double CpuSeconds() {
    clockid_t id;
    if (pthread_getcpuclockid(thread_.native_handle(), &id) != 0) return -1;
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
  std::uint64_t bytes_sent() const { return bytes_sent_.load(); }
  std::uint64_t frames_sent() const { return frames_sent_.load(); }
  raft::runtime::HostCore& host() { return *host_; }  // io thread only (Call)

  // TransportHandler, on the io thread.
  Status OnMessage(raft::Message) override {
    return Status(raft::ErrorCode::kInvalidArgument, "a host takes group frames only");
  }
  void OnUnreachable(NodeId) override {}
  void OnSnapshotSent(NodeId, bool) override {}
  void OnPeerAddress(NodeId, const std::string&) override {}
  Status OnGroupMessage(NodeId peer, raft::wire::GroupMessage gm) override {
    return Pumped(host_->Receive(peer, gm));
  }
  Status OnHostBeat(NodeId peer, raft::wire::HostBeat hb) override {
    return Pumped(host_->Receive(peer, hb));
  }
  Status OnHostBeatAck(NodeId peer, raft::wire::HostBeatAck ha) override {
    return Pumped(host_->Receive(peer, ha));
  }

 private:
  Status Pumped(Status s) {
    Pump();
    return s;
  }
  void Arm() {
    ticker_.expires_after(tick_);
    ticker_.async_wait([this](asio::error_code ec) {
      if (ec) return;
      host_->Tick();
      Pump();
      Arm();
    });
  }
  // Handles every touched group's Ready (persisting to its MemoryStorage before the
  // messages that depend on it leave), then sends what the host queued.
  void Pump() {
    for (GroupId g : host_->TakeTouched()) {
      raft::MemoryStorage& s = *storages_.at(g);
      (void)host_->With(g, [&](raft::RawNode& core) {
        while (core.HasReady()) {
          raft::Ready rd = core.GetReady();
          host_->Send(g, std::move(rd.messages));
          if (!rd.entries.empty() && !s.Append(rd.entries).ok()) std::abort();
          if (rd.hard_state) s.SetHardState(*rd.hard_state);
          host_->Send(g, std::move(rd.messages_after_persist));
          core.Advance(rd);
        }
      });
    }
    for (raft::runtime::HostOutput& o : host_->TakeOutput()) {
      if (o.send_beat)
        Send(o.to, raft::wire::FrameType::kHostBeat, raft::wire::EncodeHostBeat(o.beat));
      for (const raft::wire::GroupMessage& gm : o.messages) {
        Send(o.to, raft::wire::FrameType::kGroupMessage,
             raft::wire::EncodeGroupMessage(gm.group, gm.message));
      }
      if (!o.acks.acks.empty()) {
        Send(o.to, raft::wire::FrameType::kHostBeatAck, raft::wire::EncodeHostBeatAck(o.acks));
      }
    }
  }
  void Send(NodeId to, raft::wire::FrameType type, const raft::Result<std::string>& payload) {
    if (!payload.ok()) std::abort();
    bytes_sent_ += raft::wire::kFrameHeaderBytes + payload->size();
    ++frames_sent_;
    transport_->SendGroupFrame(to, type, *payload);
  }

  asio::io_context io_;
  std::chrono::milliseconds tick_;
  asio::steady_timer ticker_;
  std::unique_ptr<raft::runtime::HostCore> host_;
  std::unique_ptr<raft::runtime::Transport> transport_;
  std::map<GroupId, std::unique_ptr<raft::MemoryStorage>> storages_;
  std::thread thread_;
  std::atomic<std::uint64_t> bytes_sent_{0};
  std::atomic<std::uint64_t> frames_sent_{0};
};

}  // namespace

int main(int argc, char** argv) {
  std::size_t groups = 10000;
  double seconds = 20;
  int tick_ms = 100;
  bool quiesce = true;
  const char* usage =
      "usage: host_socket_bench [--groups N] [--seconds S] [--tick-ms MS] [--quiesce on|off]\n";
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) {
      std::fputs(usage, stderr);
      return 2;
    }
    const char* v = argv[i + 1];
    if (!std::strcmp(argv[i], "--groups")) {
      groups = std::strtoull(v, nullptr, 10);
    } else if (!std::strcmp(argv[i], "--seconds")) {
      seconds = std::atof(v);
    } else if (!std::strcmp(argv[i], "--tick-ms")) {
      tick_ms = std::atoi(v);
    } else if (!std::strcmp(argv[i], "--quiesce")) {
      quiesce = std::strcmp(v, "off") != 0;
    } else {
      std::fputs(usage, stderr);
      return 2;
    }
  }
  if (groups == 0 || seconds <= 0 || tick_ms <= 0) {
    std::fputs(usage, stderr);
    return 2;
  }

  std::map<NodeId, std::unique_ptr<Proc>> procs;
  for (NodeId p = 1; p <= 3; ++p) {
    procs[p] = std::make_unique<Proc>(p, groups, quiesce, std::chrono::milliseconds(tick_ms));
    if (Status s = procs[p]->Listen(); !s.ok()) {
      std::fprintf(stderr, "listen: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  for (auto& [p, proc] : procs) {
    for (auto& [q, other] : procs) {
      if (p != q) proc->AddPeer(q, "127.0.0.1:" + std::to_string(other->port()));
    }
  }
  for (auto& [p, proc] : procs) proc->Start();

  // Every group elects a leader; each leader commits one entry.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  std::size_t led = 0;
  while (led < groups && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(500ms);
    led = 0;
    for (auto& [p, proc] : procs) {
      led += proc->Call([&proc = *proc] {
        std::size_t n = 0;
        for (GroupId g : proc.host().GroupIds()) {
          (void)proc.host().With(
              g, [&](raft::RawNode& core) { n += core.role() == raft::Role::kLeader; });
        }
        return n;
      });
    }
  }
  if (led < groups) {
    std::fprintf(stderr, "only %zu of %zu groups elected a leader in 60 s\n", led, groups);
    return 1;
  }
  for (auto& [p, proc] : procs) {
    proc->Call([&proc = *proc] {
      for (GroupId g : proc.host().GroupIds()) {
        (void)proc.host().With(g, [&](raft::RawNode& core) {
          if (core.role() == raft::Role::kLeader) (void)core.Propose("x");
        });
      }
      return 0;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(tick_ms * 40));  // time to sleep

  std::map<NodeId, double> cpu0;
  std::map<NodeId, std::uint64_t> bytes0, frames0;
  for (auto& [p, proc] : procs) {
    cpu0[p] = proc->CpuSeconds();
    bytes0[p] = proc->bytes_sent();
    frames0[p] = proc->frames_sent();
  }
  const double lo0 = raft::test::LoopbackBytes();
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double lo1 = raft::test::LoopbackBytes();
  std::printf(
      "groups %zu x 3 processes over loopback TCP (protocol 4), quiesce %s, tick %d ms, "
      "%.1f s measured\n",
      groups, quiesce ? "on" : "off", tick_ms, wall);
  std::uint64_t bytes = 0;
  for (auto& [p, proc] : procs) {
    const double cpu = proc->CpuSeconds() - cpu0[p];
    const std::size_t awake = proc->Call([&proc = *proc] { return proc.host().awake_count(); });
    const std::uint64_t b = proc->bytes_sent() - bytes0[p];
    bytes += b;
    std::printf(
        "process %llu: io thread %.2f%% of a core; awake groups %zu; sent %.0f bytes/s in "
        "%.0f frames/s\n",
        static_cast<unsigned long long>(p), 100.0 * cpu / wall, awake,
        static_cast<double>(b) / wall,
        static_cast<double>(proc->frames_sent() - frames0[p]) / wall);
  }
  // Each process sends to two peers: a pair's traffic, both ways, is a third of the total.
  std::printf("per process pair (both directions): %.0f bytes/s of frames\n",
              static_cast<double>(bytes) / 3.0 / wall);
  if (lo0 >= 0 && lo1 >= 0) {
    std::printf(
        "per process pair on the loopback interface (TCP/IP headers and acks, and any "
        "other traffic on lo): %.0f bytes/s\n",
        (lo1 - lo0) / 3.0 / wall);
  }
  for (auto& [p, proc] : procs) proc->Stop();
  return 0;
}
