// ThreadEnv: the production Env (runtime/env.h). One thread per lane: the io lane is an
// asio::io_context (which the Asio Transport shares), the others a WorkQueue each.
#include <pthread.h>

#include <asio.hpp>
#include <random>
#include <thread>

#include "base/assert.h"
#include "base/file_system.h"
#include "base/thread_checker.h"
#include "runtime/transport.h"
#include "runtime/work_queue.h"

namespace raft::runtime {
namespace {

// Names show in top -H, perf and /proc/<pid>/task/*/comm (at most 15 characters).
constexpr const char* kThreadNames[kLanes] = {"raft-io", "raft-disk", "raft-apply",
                                              "raft-snapshot"};

class ThreadEnv final : public Env {
 public:
  ThreadEnv() : ticker_(io_) {}
  ~ThreadEnv() override {
    for (int l = 0; l < kLanes; ++l) Shutdown(static_cast<Lane>(l), nullptr);
  }

  Clock::time_point Now() override { return Clock::now(); }
  std::uint64_t Random64() override {
    // A few calls per Open: a fresh random_device each time needs no lock.
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) | rd();
  }
  base::FileSystem* file_system() override { return base::PosixFileSystem(); }

  void Start(base::ThreadChecker* const checkers[kLanes]) override {
    RAFT_ASSERT(!started_, "ThreadEnv started twice");
    started_ = true;
    for (int l = 0; l < kLanes; ++l) {
      base::ThreadChecker* checker = checkers[l];
      threads_[l] = std::thread([this, l, checker] {
        pthread_setname_np(pthread_self(), kThreadNames[l]);
        checker->Bind();
        if (l == static_cast<int>(Lane::kIo)) {
          auto guard = asio::make_work_guard(io_);
          io_.run();
        } else {
          while (auto job = queues_[l].Pop()) (*job)();
        }
        checker->Unbind();
      });
    }
  }

  void Post(Lane lane, std::function<void()> work) override {
    if (lane == Lane::kIo) {
      asio::post(io_, std::move(work));
    } else {
      queues_[static_cast<int>(lane)].Push(std::move(work));
    }
  }

  void StartTicker(std::chrono::milliseconds period, std::function<void()> tick) override {
    period_ = period;
    tick_ = std::move(tick);
    asio::post(io_, [this] { Arm(); });
  }

  void Shutdown(Lane lane, std::function<void()> last) override {
    const int l = static_cast<int>(lane);
    if (!threads_[l].joinable()) return;
    if (lane == Lane::kIo) {
      asio::post(io_, [this, last = std::move(last)] {
        ticker_.cancel();
        if (last) last();
        io_.stop();
      });
      threads_[l].join();
      return;
    }
    queues_[l].Close();
    threads_[l].join();
    if (last) last();
  }

  std::unique_ptr<MessageTransport> NewTransport(const TransportOptions& options,
                                                 TransportHandler* handler,
                                                 SnapshotStore* snapshots) override {
    return std::make_unique<Transport>(io_, options, handler, snapshots);
  }

 private:
  // The io thread: re-armed after each tick, so ticks never pile up behind a busy loop.
  void Arm() {
    ticker_.expires_after(period_);
    ticker_.async_wait([this](asio::error_code ec) {
      if (ec) return;
      tick_();
      Arm();
    });
  }

  asio::io_context io_;
  asio::steady_timer ticker_;
  std::chrono::milliseconds period_{100};
  std::function<void()> tick_;
  WorkQueue<std::function<void()>> queues_[kLanes];  // [kIo] unused
  std::thread threads_[kLanes];
  bool started_ = false;
};

}  // namespace

void MessageTransport::SendGroupFrame(NodeId /*peer*/, wire::FrameType /*type*/,
                                      const std::string& /*payload*/) {
  RAFT_ASSERT(false, "a group frame given to a transport that does not speak version 4");
}

void MessageTransport::SendGroupSnapshot(std::uint64_t /*group*/, Message /*m*/,
                                         SnapshotStore* /*store*/) {
  RAFT_ASSERT(false, "a group snapshot given to a transport that does not speak version 4");
}

std::unique_ptr<Env> NewThreadEnv() { return std::make_unique<ThreadEnv>(); }

}  // namespace raft::runtime
