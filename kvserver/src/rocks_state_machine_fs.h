// File-system helpers of RocksStateMachine: fsync, durable rename, removal, copy and
// link, and the recovery of a directory swap interrupted by a crash. POSIX calls only;
// every error is a raft::Status from raft::ErrnoStatus (raft/errno_status.h: ENOSPC,
// EDQUOT, EFBIG -> kNoSpace, anything else -> kIOError). Stateless; callable from any
// thread.
#pragma once

#include <cstddef>
#include <string>

#include "raft/status.h"

namespace kv::fs {

// fsync(2) of a regular file or of a directory (which makes the names in it durable).
raft::Status FsyncPath(const std::string& path);

// rename(2), then fsync of `parent` (the directory holding both names).
raft::Status RenameDurably(const std::string& from, const std::string& to,
                           const std::string& parent);

// Removes `path` and everything below it; a missing path is not an error.
raft::Status RemoveAll(const std::string& path);

bool Exists(const std::string& path);

// write(2) of all of [p, p + n) to `fd` (retried on EINTR and short writes); `path`
// names the file in errors.
raft::Status WriteAll(int fd, const char* p, std::size_t n, const std::string& path);

// Copies the file `from` to `to`, a new file (created 0600, O_EXCL: it must not exist),
// through one bounded buffer (a file of any size), then fsyncs `to` (not its directory:
// the caller fsyncs that once for all its files). `from` is only read. On failure `to`
// may be left partial: the caller removes it.
raft::Status CopyFile(const std::string& from, const std::string& to);

// Hard-links the file `from` as `to` (a new name: link(2)), so both names share the
// file's data and nothing is copied; the caller fsyncs the directory of `to`. Where the
// file system refuses the link (EXDEV: another file system, EPERM: one without hard
// links or a protected file, EMLINK: too many links) it copies instead (CopyFile).
// Only for a file that nothing writes again: a write through either name shows in both.
raft::Status LinkOrCopy(const std::string& from, const std::string& to);

// Creates `path` (and missing parents) as a directory, each new one 0700; an existing
// one is fine (and keeps its mode: LoosePermissions reports a loose one).
raft::Status MakeDirs(const std::string& path);

// "" when only the owner may access `dir` (or it does not exist); otherwise a warning
// naming it, its mode and 0700 (etcd checks its data directory the same way).
std::string LoosePermissions(const std::string& dir);

// An exclusive flock(2) on <dir>/LOCK, held until Unlock or process exit, so that two
// processes (or two instances in one process) never recover or open the same dir.
raft::Result<int> LockDir(const std::string& dir);
void Unlock(int fd);

// Brings `dir` (a RocksStateMachine directory) back to exactly one DB in <dir>/db after a
// crash, using the swap protocol of RocksStateMachine::Restore:
//   restore.tmp        incomplete stream: removed
//   db + db.new        crash before the old DB was moved aside: db.new removed (the old
//                      DB stays; the runtime restores its snapshot again)
//   db.old + db.new    crash between the two renames: db.new renamed to db (roll forward)
//   db + db.old        crash before the old DB was deleted: db.old removed
//   db.old alone       cannot be produced by the protocol; renamed back to db
// Every rename is made durable. Checkpoints are not touched (one may be streaming).
raft::Status RecoverLayout(const std::string& dir);

}  // namespace kv::fs
