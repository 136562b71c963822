// ThreadChecker: "this state belongs to one thread" as a checked fact.
//
// A thread binds the checker when it starts and unbinds it when it ends; between the two,
// Check() from any other thread aborts (RAFT_ASSERT: a thread-id compare, on in every
// build type). While no thread is bound (before the owning thread starts, after it was
// joined) the program is single-threaded as far as that state goes, and Check() passes:
// that is how construction, recovery and shutdown touch thread-owned state.
//
// The checker is also a Clang thread-safety capability (base/thread_annotations.h):
//
//   base::ThreadChecker io_thread_;
//   bool persisting_ RAFT_GUARDED_BY(io_thread_) = false;
//   void Pump() RAFT_REQUIRES(io_thread_);
//
// and Check() asserts that capability, so -Wthread-safety rejects an io-thread field read
// in a function that neither requires the io thread nor calls io_thread_.Check() first.
// Work posted to a thread (lambdas) starts with Check().
//
// Thread-safe: Bind/Unbind/Check from any thread.
#pragma once

#include <atomic>
#include <thread>

#include "base/assert.h"
#include "base/thread_annotations.h"

namespace raft::base {

class RAFT_CAPABILITY("thread") ThreadChecker {
 public:
  explicit ThreadChecker(const char* name) : name_(name) {}
  ThreadChecker(const ThreadChecker&) = delete;
  ThreadChecker& operator=(const ThreadChecker&) = delete;

  // On the owning thread, first thing. A checker is bound to at most one thread at a time.
  void Bind() RAFT_ACQUIRE() {
    std::thread::id none;
    bool bound =
        owner_.compare_exchange_strong(none, std::this_thread::get_id(), std::memory_order_relaxed);
    RAFT_ASSERT(bound, name_);
  }
  // On the owning thread, last thing.
  void Unbind() RAFT_RELEASE() {
    Check();
    owner_.store(std::thread::id(), std::memory_order_relaxed);
  }

  // Aborts unless the calling thread is the bound one (or none is bound).
  void Check() const RAFT_ASSERT_CAPABILITY(this) {
    const std::thread::id owner = owner_.load(std::memory_order_relaxed);
    if (owner != std::thread::id() && owner != std::this_thread::get_id()) [[unlikely]] {
      AssertFail(__FILE__, __LINE__, "ThreadChecker::Check()",
                 std::string("state owned by the ") + name_ + " thread touched from another");
    }
  }

 private:
  const char* const name_;
  std::atomic<std::thread::id> owner_{};
};

}  // namespace raft::base
