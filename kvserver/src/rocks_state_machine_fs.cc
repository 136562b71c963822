#include "rocks_state_machine_fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "raft/errno_status.h"
#include "rocks_state_machine.h"

namespace kv::fs {

using raft::ErrnoStatus;

namespace {

std::string Join(const std::string& dir, std::string_view name) {
  return dir + "/" + std::string(name);
}

}  // namespace

raft::Status FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus("fsync", path, err);
  return raft::Status::Ok();
}

raft::Status RenameDurably(const std::string& from, const std::string& to,
                           const std::string& parent) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    return ErrnoStatus("rename", from + " to " + to, errno);
  return FsyncPath(parent);
}

raft::Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return ErrnoStatus("remove", path, ec.value());
  return raft::Status::Ok();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

raft::Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return ErrnoStatus("create directory", path, ec.value());
  return raft::Status::Ok();
}

raft::Result<int> LockDir(const std::string& dir) {
  std::string path = Join(dir, "LOCK");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      return raft::Status(raft::ErrorCode::kIOError,
                          dir + " is in use by another state machine (" + path + " is locked)");
    return ErrnoStatus("flock", path, err);
  }
  return fd;
}

void Unlock(int fd) {
  if (fd >= 0) ::close(fd);  // closing the descriptor releases the flock
}

raft::Status RecoverLayout(const std::string& dir) {
  const std::string live = Join(dir, kLiveDbDir);
  const std::string fresh = Join(dir, kNewDbDir);
  const std::string old = Join(dir, kOldDbDir);
  if (raft::Status s = RemoveAll(Join(dir, kRestoreTmpDir)); !s.ok()) return s;
  if (!Exists(live)) {
    if (Exists(fresh)) {
      if (raft::Status s = RenameDurably(fresh, live, dir); !s.ok()) return s;
    } else if (Exists(old)) {
      if (raft::Status s = RenameDurably(old, live, dir); !s.ok()) return s;
    }
  }
  if (raft::Status s = RemoveAll(fresh); !s.ok()) return s;
  if (raft::Status s = RemoveAll(old); !s.ok()) return s;
  return FsyncPath(dir);
}

}  // namespace kv::fs
