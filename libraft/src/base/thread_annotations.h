// Clang thread-safety annotations (-Wthread-safety), as in LevelDB's port/thread_annotations.h.
// Under other compilers they expand to nothing. scripts/test.sh builds the library with
// clang and -Werror=thread-safety, so a field read without its mutex fails the build.
//
// std::mutex carries no capability attributes in libstdc++, so annotated code uses
// base::Mutex and base::MutexLock (base/mutex.h), thin annotated wrappers.
#pragma once

#if defined(__clang__)
#define RAFT_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define RAFT_THREAD_ANNOTATION_(x)
#endif

#define RAFT_CAPABILITY(x) RAFT_THREAD_ANNOTATION_(capability(x))
#define RAFT_SCOPED_CAPABILITY RAFT_THREAD_ANNOTATION_(scoped_lockable)
#define RAFT_GUARDED_BY(x) RAFT_THREAD_ANNOTATION_(guarded_by(x))
#define RAFT_PT_GUARDED_BY(x) RAFT_THREAD_ANNOTATION_(pt_guarded_by(x))
#define RAFT_ACQUIRED_AFTER(...) RAFT_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))
#define RAFT_ACQUIRED_BEFORE(...) RAFT_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#define RAFT_REQUIRES(...) RAFT_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define RAFT_EXCLUDES(...) RAFT_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define RAFT_ACQUIRE(...) RAFT_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define RAFT_RELEASE(...) RAFT_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define RAFT_TRY_ACQUIRE(...) RAFT_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
#define RAFT_ASSERT_CAPABILITY(x) RAFT_THREAD_ANNOTATION_(assert_capability(x))
#define RAFT_RETURN_CAPABILITY(x) RAFT_THREAD_ANNOTATION_(lock_returned(x))
#define RAFT_NO_THREAD_SAFETY_ANALYSIS RAFT_THREAD_ANNOTATION_(no_thread_safety_analysis)
