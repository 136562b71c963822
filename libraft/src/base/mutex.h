// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with Clang
// thread-safety annotations (base/thread_annotations.h), as LevelDB's port::Mutex.
// libstdc++'s std::mutex carries no capability attribute, so fields guarded by a plain
// std::mutex cannot be checked; every mutex in the library that guards fields is one of these.
// Thread-safe, as the types they wrap. Not recursive.
#pragma once

#include <condition_variable>
#include <mutex>

#include "base/thread_annotations.h"

namespace raft::base {

class RAFT_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() RAFT_ACQUIRE() { mu_.lock(); }
  void Unlock() RAFT_RELEASE() { mu_.unlock(); }
  // Tells the analysis (not the runtime) that the caller holds the mutex.
  void AssertHeld() RAFT_ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` for the scope.
class RAFT_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) RAFT_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RAFT_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable bound to one Mutex for its lifetime.
class CondVar {
 public:
  explicit CondVar(Mutex* mu) : mu_(mu) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Requires mu held; releases it while blocked and holds it again on return.
  void Wait() RAFT_REQUIRES(mu_) {
    std::unique_lock<std::mutex> lock(mu_->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  template <typename Predicate>
  void Wait(Predicate pred) RAFT_REQUIRES(mu_) {
    while (!pred()) Wait();
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  Mutex* const mu_;
  std::condition_variable cv_;
};

}  // namespace raft::base
