#include "rocks_state_machine_fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
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

raft::Status WriteAll(int fd, const char* p, std::size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return ErrnoStatus("write", path, errno);
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return raft::Status::Ok();
}

namespace {

constexpr std::size_t kCopyBufferBytes = 1 << 20;

// Copies what is left to read of `in` to `out`, then fsyncs `out`.
raft::Status CopyFd(int in, int out, const std::string& from, const std::string& to) {
  auto buf = std::make_unique<char[]>(kCopyBufferBytes);
  for (;;) {
    ssize_t n = ::read(in, buf.get(), kCopyBufferBytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read", from, errno);
    if (n == 0) break;
    if (raft::Status s = WriteAll(out, buf.get(), static_cast<std::size_t>(n), to); !s.ok())
      return s;
  }
  if (::fsync(out) != 0) return ErrnoStatus("fsync", to, errno);
  return raft::Status::Ok();
}

}  // namespace

raft::Status CopyFile(const std::string& from, const std::string& to) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoStatus("open", from, errno);
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    int err = errno;
    ::close(in);
    return ErrnoStatus("create", to, err);
  }
  raft::Status s = CopyFd(in, out, from, to);
  ::close(in);
  if (::close(out) != 0 && s.ok()) s = ErrnoStatus("close", to, errno);
  return s;
}

raft::Status LinkOrCopy(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) == 0) return raft::Status::Ok();
  if (errno == EXDEV || errno == EPERM || errno == EMLINK) return CopyFile(from, to);
  return ErrnoStatus("link", from + " to " + to, errno);
}

raft::Status MakeDirs(const std::string& path) {
  // Component by component, each created 0700 (std::filesystem::create_directories
  // would use 0777 less the umask).
  std::string prefix;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    prefix = path.substr(0, slash);
    pos = slash + 1;
    if (prefix.empty() || prefix == "." || prefix == "..") continue;
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST)
      return ErrnoStatus("create directory", prefix, errno);
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path, errno);
  if (!S_ISDIR(st.st_mode)) return ErrnoStatus("create directory", path, ENOTDIR);
  return raft::Status::Ok();
}

std::string LoosePermissions(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return "";
  const unsigned mode = st.st_mode & 0777;
  if ((mode & 077) == 0) return "";
  char buf[160];
  std::snprintf(buf, sizeof(buf),
                "the data directory %s has permissions %04o: group or others may read the "
                "stored values; the recommended permissions are 0700",
                dir.c_str(), mode);
  return buf;
}

raft::Result<int> LockDir(const std::string& dir) {
  std::string path = Join(dir, "LOCK");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
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
