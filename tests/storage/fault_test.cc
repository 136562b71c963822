// Write failures: a full disk (kNoSpace) and a failed fsync (kIOError) fail the storage
// for good; reopening recovers what is on disk. Also the group-commit sync count.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>

#include "raft/disk_storage.h"
#include "test_util.h"

namespace raft::storage::testing {
namespace {

std::unique_ptr<DiskStorage> OpenWith(const std::string& dir, base::FileSystem* ops) {
  DiskStorageOptions opts;
  opts.file_system = ops;
  auto r = DiskStorage::Open(dir, opts);
  INFO(r.status().message());
  REQUIRE(r.ok());
  return std::move(r).value();
}

// Every write-side call returns the failure, and issues no further syscall.
void RequireFailedWith(DiskStorage& s, ErrorCode code, const FaultyFileSystem& ops) {
  const int writes = ops.write_calls, syncs = ops.fdatasync_calls + ops.fsync_calls;
  CHECK(s.failure().code() == code);
  CHECK(s.Append({MakeEntry(s.LastIndex() + 1, 9)}).code() == code);
  CHECK(s.SetHardState({9, 1, 0}).code() == code);
  CHECK(s.Sync().code() == code);
  CHECK(s.ApplySnapshot(SnapshotMeta{1000, 9, {}}).code() == code);
  CHECK(s.Compact(1).code() == code);
  CHECK(s.CreateSnapshot(1, {}).status().code() == code);
  CHECK(ops.write_calls == writes);
  CHECK(ops.fdatasync_calls + ops.fsync_calls == syncs);
}

TEST_CASE("ENOSPC on a log write: kNoSpace, failed, reopen keeps the synced prefix",
          "[storage][fault]") {
  TempDir dir;
  FaultyFileSystem ops;
  {
    auto s = OpenWith(dir.path(), &ops);
    REQUIRE(s->Append(MakeEntries(1, 65, 1, 100)).ok());
    REQUIRE(s->Sync().ok());
    ops.fail_writes_after = ops.write_calls;  // the next write half-succeeds, then ENOSPC
    ops.write_errno = ENOSPC;
    // 63 records of 126 bytes: the half that reaches the disk ends inside record 32.
    Status st = s->Append(MakeEntries(65, 128, 1, 100));
    CHECK(st.code() == ErrorCode::kNoSpace);
    CHECK(st.message().find("out of disk space") != std::string::npos);
    CHECK(st.message().find(".seg") != std::string::npos);
    CHECK(s->LastIndex() == 64);                // the failed batch is not visible
    CHECK(s->Entries(1, 65, UINT64_MAX).ok());  // reads keep working
    RequireFailedWith(*s, ErrorCode::kNoSpace, ops);
  }
  // Whole records of the failed (never synced) batch may survive; the torn one is cut.
  auto s = OpenWith(dir.path(), nullptr);
  CHECK(s->LastIndex() == 64 + 31);
  REQUIRE(s->recovery_notes().size() == 1);
  CHECK(s->recovery_notes()[0].find("torn write") != std::string::npos);
  CHECK(*s->Entries(1, 96, UINT64_MAX) == MakeEntries(1, 96, 1, 100));
}

TEST_CASE("a failed fdatasync is never retried", "[storage][fault]") {
  TempDir dir;
  FaultyFileSystem ops;
  {
    auto s = OpenWith(dir.path(), &ops);
    REQUIRE(s->Append(MakeEntries(1, 11, 1)).ok());
    ops.fail_fdatasyncs_after = ops.fdatasync_calls;
    ops.fdatasync_errno = EIO;
    Status st = s->Sync();
    CHECK(st.code() == ErrorCode::kIOError);
    CHECK(st.message().find("fdatasync") != std::string::npos);
    ops.fail_fdatasyncs_after = -1;  // the disk "recovers": the storage must not
    RequireFailedWith(*s, ErrorCode::kIOError, ops);
  }
  auto s = OpenWith(dir.path(), nullptr);  // what reached the disk decides
  CHECK(s->LastIndex() <= 10);
}

TEST_CASE("ENOSPC on the hard-state write keeps the previous hard state", "[storage][fault]") {
  TempDir dir;
  FaultyFileSystem ops;
  {
    auto s = OpenWith(dir.path(), &ops);
    REQUIRE(s->SetHardState({1, 1, 0}).ok());
    REQUIRE(s->Sync().ok());
    REQUIRE(s->SetHardState({2, 3, 0}).ok());
    ops.fail_writes_after = ops.write_calls;
    ops.write_errno = ENOSPC;
    CHECK(s->Sync().code() == ErrorCode::kNoSpace);
    RequireFailedWith(*s, ErrorCode::kNoSpace, ops);
  }
  auto s = OpenWith(dir.path(), nullptr);
  CHECK(s->InitialHardState() == HardState{1, 1, 0});
}

TEST_CASE("a torn first hard-state write keeps the initial hard state", "[storage][fault]") {
  TempDir dir;
  FaultyFileSystem ops;
  {
    auto s = OpenWith(dir.path(), &ops);
    REQUIRE(s->SetHardState({1, 1, 0}).ok());
    ops.fail_writes_after = ops.write_calls;
    ops.write_errno = EIO;
    CHECK(s->Sync().code() == ErrorCode::kIOError);
  }
  auto s = OpenWith(dir.path(), nullptr);
  CHECK(s->InitialHardState() == HardState{});
}

TEST_CASE("group commit: one log fdatasync per batch, none when idle", "[storage][fault]") {
  TempDir dir;
  FaultyFileSystem ops;
  auto s = OpenWith(dir.path(), &ops);
  const int base = ops.fdatasync_calls + ops.fsync_calls;
  REQUIRE(s->Append(MakeEntries(1, 65, 1, 100)).ok());
  REQUIRE(s->Sync().ok());
  CHECK(ops.fdatasync_calls + ops.fsync_calls == base + 1);
  REQUIRE(s->Append(MakeEntries(65, 129, 1, 100)).ok());
  REQUIRE(s->SetHardState({1, 1, 64}).ok());
  REQUIRE(s->Sync().ok());
  CHECK(ops.fdatasync_calls + ops.fsync_calls == base + 3);  // log + hard state
  REQUIRE(s->SetHardState({1, 1, 64}).ok());                 // unchanged
  REQUIRE(s->Sync().ok());
  CHECK(ops.fdatasync_calls + ops.fsync_calls == base + 3);
}

// The real kernel refusing a write: a forked child under RLIMIT_FSIZE (SIGXFSZ ignored,
// so write(2) fails with EFBIG) appends batches until the storage fails. No root needed.
TEST_CASE("file size limit in a child process: kNoSpace, then reopen", "[storage][fault]") {
  TempDir dir;
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // child: no Catch macros; report through the exit code and the pipe
    ::close(pipe_fds[0]);
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{20000, 20000};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(100);
    auto r = DiskStorage::Open(dir.path(), {});
    if (!r.ok()) ::_exit(101);
    DiskStorage& s = **r;
    Index synced = 0;
    for (Index i = 1; i < 100000; i += 16) {
      Status st = s.Append(MakeEntries(i, i + 16, 1, 100));
      if (st.ok()) st = s.Sync();
      if (!st.ok()) {
        if (::write(pipe_fds[1], &synced, sizeof(synced)) != sizeof(synced)) ::_exit(102);
        ::_exit(st.code() == ErrorCode::kNoSpace && s.Sync().code() == ErrorCode::kNoSpace ? 0
                                                                                           : 103);
      }
      synced = i + 15;
    }
    ::_exit(104);
  }
  ::close(pipe_fds[1]);
  Index synced = 0;
  REQUIRE(::read(pipe_fds[0], &synced, sizeof(synced)) == sizeof(synced));
  ::close(pipe_fds[0]);
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 0);
  CHECK(synced > 100);
  auto s = OpenWith(dir.path(), nullptr);
  // Everything synced survives; whole records of the failed batch may too; the record
  // cut at the limit is a torn tail.
  CHECK(s->LastIndex() >= synced);
  CHECK(s->LastIndex() < synced + 16);
  CHECK(*s->Entries(1, s->LastIndex() + 1, UINT64_MAX) ==
        MakeEntries(1, s->LastIndex() + 1, 1, 100));
}

}  // namespace
}  // namespace raft::storage::testing
