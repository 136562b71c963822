// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with Clang
// thread-safety annotations (base/thread_annotations.h), as LevelDB's port::Mutex.
// libstdc++'s std::mutex carries no capability attribute, so fields guarded by a plain
// std::mutex cannot be checked; every mutex in the library that guards fields is one of these.
// Thread-safe, as the types they wrap. Not recursive.
//
// A Mutex records its holder's thread id (one relaxed store per Lock and per Unlock), so
// AssertHeld() is a checked fact, not only a hint to the analysis: a function that runs
// under a lock its caller took (LockedStorage::Publish) asserts it at entry.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/assert.h"
#include "base/thread_annotations.h"

namespace raft::base {

class RAFT_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() RAFT_ACQUIRE() {
    mu_.lock();
    holder_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  void Unlock() RAFT_RELEASE() {
    holder_.store(std::thread::id(), std::memory_order_relaxed);
    mu_.unlock();
  }
  // Aborts unless the calling thread holds the mutex; tells the analysis that it does.
  void AssertHeld() const RAFT_ASSERT_CAPABILITY(this) {
    RAFT_ASSERT(holder_.load(std::memory_order_relaxed) == std::this_thread::get_id(),
                "mutex not held by this thread");
  }

 private:
  friend class CondVar;
  std::mutex mu_;
  // The thread that holds mu_, or id() when free. Only the holder writes it while
  // holding, so a thread reading its own id here cannot be wrong.
  std::atomic<std::thread::id> holder_{};
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

// Holds `mu` from construction until Unlock() or the end of the scope, whichever comes
// first: for a scope that must release the lock before it ends (to run a callback or
// signal a waiter without the lock held).
class RAFT_SCOPED_CAPABILITY ReleasableMutexLock {
 public:
  explicit ReleasableMutexLock(Mutex* mu) RAFT_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~ReleasableMutexLock() RAFT_RELEASE() {
    if (held_) mu_->Unlock();
  }
  ReleasableMutexLock(const ReleasableMutexLock&) = delete;
  ReleasableMutexLock& operator=(const ReleasableMutexLock&) = delete;

  void Unlock() RAFT_RELEASE() {
    RAFT_ASSERT(held_, "ReleasableMutexLock::Unlock twice");
    held_ = false;
    mu_->Unlock();
  }

 private:
  Mutex* const mu_;
  bool held_ = true;
};

// The reverse of MutexLock: releases `mu`, which the caller holds, for the scope and takes
// it again at the end. For a slow call (a write, an fsync) that the lock's other users
// must not wait for; the analysis rejects guarded fields touched inside the scope.
class RAFT_SCOPED_CAPABILITY MutexUnlock {
 public:
  explicit MutexUnlock(Mutex* mu) RAFT_RELEASE(mu) : mu_(mu) { mu_->Unlock(); }
  ~MutexUnlock() RAFT_RELEASE() { mu_->Lock(); }
  MutexUnlock(const MutexUnlock&) = delete;
  MutexUnlock& operator=(const MutexUnlock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable bound to one Mutex for its lifetime.
class CondVar {
 public:
  explicit CondVar(Mutex* mu) : mu_(mu) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Requires mu held (asserted); releases it while blocked and holds it again on return.
  // Not annotated RAFT_REQUIRES(mu_): the analysis cannot see that a caller's mutex and
  // this CondVar's mu_ are the same object, so the check is at run time.
  void Wait() {
    mu_->AssertHeld();
    mu_->holder_.store(std::thread::id(), std::memory_order_relaxed);
    std::unique_lock<std::mutex> lock(mu_->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
    mu_->holder_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  // A predicate that reads guarded fields is analysed on its own, without the lock:
  // prefer `while (!cond) cv.Wait();` in annotated code.
  template <typename Predicate>
  void Wait(Predicate pred) {
    while (!pred()) Wait();
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  Mutex* const mu_;
  std::condition_variable cv_;
};

}  // namespace raft::base
