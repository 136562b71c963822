// FileOps: the POSIX file-system calls DiskStorage makes, behind a virtual interface so
// tests can inject faults (ENOSPC, EIO on fsync, ...) and count syncs. Every call
// returns 0 on success or an errno value; none throws. Implementations must be usable
// from one thread at a time (DiskStorage serializes its calls).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace raft::storage {

class FileOps {
 public:
  virtual ~FileOps() = default;

  // open(2); *fd receives the descriptor.
  virtual int Open(const std::string& path, int flags, mode_t mode, int* fd) = 0;
  virtual int Close(int fd) = 0;
  // Writes all n bytes at `offset` (retrying short writes and EINTR). On error, an
  // unknown prefix of the bytes may have been written.
  virtual int PwriteAll(int fd, const void* data, std::size_t n, std::uint64_t offset) = 0;
  // Reads exactly n bytes at `offset`; EIO if the file is shorter.
  virtual int PreadAll(int fd, void* data, std::size_t n, std::uint64_t offset) = 0;
  virtual int Fdatasync(int fd) = 0;
  virtual int Fsync(int fd) = 0;
  virtual int Ftruncate(int fd, std::uint64_t size) = 0;
  virtual int FileSize(int fd, std::uint64_t* size) = 0;
  virtual int Rename(const std::string& from, const std::string& to) = 0;
  virtual int Unlink(const std::string& path) = 0;
  virtual int Mkdir(const std::string& path) = 0;
  // Names in `dir` except "." and "..", in unspecified order.
  virtual int ListDir(const std::string& dir, std::vector<std::string>* names) = 0;
  // flock(LOCK_EX | LOCK_NB).
  virtual int LockExclusive(int fd) = 0;
};

// The real calls. Stateless; the returned object lives for the whole program.
FileOps* PosixFileOps();

}  // namespace raft::storage
