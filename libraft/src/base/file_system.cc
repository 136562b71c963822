#include "base/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace raft::base {

int FileSystem::PreadAll(int fd, void* data, std::size_t n, std::uint64_t offset) {
  std::size_t read = 0;
  if (int err = Pread(fd, data, n, offset, &read); err != 0) return err;
  return read == n ? 0 : EIO;  // the file is shorter than the caller knows it to be
}

int FileSystem::RewriteAsRead(int fd, std::uint64_t size) {
  if (size > 0) {
    std::string bytes(size, '\0');
    if (int err = PreadAll(fd, bytes.data(), bytes.size(), 0); err != 0) return err;
    if (int err = PwriteAll(fd, bytes.data(), bytes.size(), 0); err != 0) return err;
  }
  return Ftruncate(fd, size);
}

int FileSystem::MkdirAll(const std::string& path) {
  // Each prefix ending before a '/', then the whole path; "" and "/" need nothing.
  for (std::size_t i = 1; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') continue;
    if (i < path.size() && path[i - 1] == '/') continue;  // "a//b"
    const std::string prefix = path.substr(0, i);
    const int err = Mkdir(prefix);
    if (err == EEXIST) continue;
    if (err != 0) return err;
    if (int e = SyncDir(ParentDir(prefix)); e != 0) return e;
  }
  return 0;
}

std::string ParentDir(const std::string& path) {
  if (path.empty()) return ".";
  std::size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;  // "a/b/" names b
  std::size_t slash = path.rfind('/', end - 1);
  if (slash == std::string::npos) return ".";
  while (slash > 0 && path[slash - 1] == '/') --slash;  // "a//b"
  return slash == 0 ? std::string("/") : path.substr(0, slash);
}

namespace {

class Posix final : public FileSystem {
 public:
  int Open(const std::string& path, int flags, mode_t mode, int* fd) override {
    int r;
    do r = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    while (r < 0 && errno == EINTR);
    if (r < 0) return errno;
    *fd = r;
    return 0;
  }
  int Close(int fd) override { return ::close(fd) == 0 ? 0 : errno; }
  int PwriteAll(int fd, const void* data, std::size_t n, std::uint64_t offset) override {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
      if (w < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      p += w;
      n -= static_cast<std::size_t>(w);
      offset += static_cast<std::uint64_t>(w);
    }
    return 0;
  }
  int Pread(int fd, void* data, std::size_t n, std::uint64_t offset, std::size_t* read) override {
    char* p = static_cast<char*>(data);
    *read = 0;
    while (*read < n) {
      ssize_t r = ::pread(fd, p + *read, n - *read, static_cast<off_t>(offset + *read));
      if (r < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      if (r == 0) break;  // end of file
      *read += static_cast<std::size_t>(r);
    }
    return 0;
  }
  int Fdatasync(int fd) override { return ::fdatasync(fd) == 0 ? 0 : errno; }
  int Fsync(int fd) override { return ::fsync(fd) == 0 ? 0 : errno; }
  int Ftruncate(int fd, std::uint64_t size) override {
    return ::ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
  }
  int StartWriteback(int fd, std::uint64_t offset, std::uint64_t n) override {
#if defined(__linux__)
    return ::sync_file_range(fd, static_cast<off64_t>(offset), static_cast<off64_t>(n),
                             SYNC_FILE_RANGE_WRITE) == 0
               ? 0
               : errno;
#else
    (void)fd;
    (void)offset;
    (void)n;
    return 0;
#endif
  }
  int FileSize(int fd, std::uint64_t* size) override {
    struct stat st;
    if (::fstat(fd, &st) != 0) return errno;
    *size = static_cast<std::uint64_t>(st.st_size);
    return 0;
  }
  int LockExclusive(int fd) override { return ::flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno; }
  int FileKey(int fd, std::string* key) override {
    struct stat st;
    if (::fstat(fd, &st) != 0) return errno;
    // Not ctime: linking the file (a checkpoint, a linked snapshot) changes it.
    *key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
           std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec);
    return 0;
  }
  int Rename(const std::string& from, const std::string& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
  }
  int Unlink(const std::string& path) override { return ::unlink(path.c_str()) == 0 ? 0 : errno; }
  int Rmdir(const std::string& path) override { return ::rmdir(path.c_str()) == 0 ? 0 : errno; }
  int Mkdir(const std::string& path) override {
    return ::mkdir(path.c_str(), 0700) == 0 ? 0 : errno;
  }
  int ListDir(const std::string& dir, std::vector<std::string>* names) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return errno;
    names->clear();
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names->push_back(std::move(n));
    }
    int err = errno;
    ::closedir(d);
    return err;
  }
  int SyncDir(const std::string& dir) override {
    int fd = -1;
    if (int err = Open(dir, O_RDONLY | O_DIRECTORY, 0, &fd); err != 0) return err;
    int err = Fsync(fd);
    Close(fd);
    return err;
  }
};

}  // namespace

FileSystem* PosixFileSystem() {
  static Posix posix;
  return &posix;
}

}  // namespace raft::base
