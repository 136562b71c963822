// FileSystem: every file-system call the library makes (DiskStorage, SnapshotStore),
// behind one virtual interface, LevelDB's Env in spirit. It is the seam for fault
// injection in tests (ENOSPC, EIO on fsync, counting syncs) and for a future
// deterministic simulator with a simulated disk. Files are named by path and opened
// files by an int descriptor; `flags` and `mode` of Open are those of open(2).
//
// Every call returns 0 on success or an errno value; none throws (raft/errno_status.h
// turns an errno into a Status). Implementations must be usable from one thread at a
// time per open file; the POSIX one is stateless and thread-safe.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace raft::base {

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // --- Files
  // open(2) (O_CLOEXEC is added); *fd receives the descriptor. O_CREAT creates.
  virtual int Open(const std::string& path, int flags, mode_t mode, int* fd) = 0;
  virtual int Close(int fd) = 0;
  // Writes all n bytes at `offset` (retrying short writes and EINTR). On error, an
  // unknown prefix of the bytes may have been written.
  virtual int PwriteAll(int fd, const void* data, std::size_t n, std::uint64_t offset) = 0;
  // Reads up to n bytes at `offset` into data; *read receives the count, which is less
  // than n only when the file ends first (retrying short reads and EINTR).
  virtual int Pread(int fd, void* data, std::size_t n, std::uint64_t offset, std::size_t* read) = 0;
  // fdatasync(2): the file's data and the metadata needed to read it back.
  virtual int Fdatasync(int fd) = 0;
  // fsync(2): data and all metadata. On a descriptor of a directory opened with
  // O_RDONLY | O_DIRECTORY, makes the names in it durable (see also SyncDir).
  virtual int Fsync(int fd) = 0;
  virtual int Ftruncate(int fd, std::uint64_t size) = 0;
  // Starts writing back the dirty pages of [offset, offset + n) without waiting and
  // without any durability promise (Linux: sync_file_range(SYNC_FILE_RANGE_WRITE)), so
  // a long sequential write reaches the disk as it goes instead of all at its final
  // fsync, which would stall every other fsync on the disk meanwhile. A hint: the
  // default does nothing.
  virtual int StartWriteback(int fd, std::uint64_t offset, std::uint64_t n) {
    (void)fd;
    (void)offset;
    (void)n;
    return 0;
  }
  virtual int FileSize(int fd, std::uint64_t* size) = 0;
  // flock(LOCK_EX | LOCK_NB): EWOULDBLOCK if another descriptor holds the lock.
  virtual int LockExclusive(int fd) = 0;
  // An identity of the open file's contents: equal keys name the same file (one inode,
  // whatever its names) unmodified, for as long as some name of it exists. POSIX: device,
  // inode, size and mtime. ENOTSUP (the default): no identity, nothing may be cached.
  virtual int FileKey(int fd, std::string* key) {
    (void)fd;
    (void)key;
    return ENOTSUP;
  }

  // --- Names
  // rename(2): atomic replacement of `to`; durable only after SyncDir of its directory.
  virtual int Rename(const std::string& from, const std::string& to) = 0;
  // Removes a file's name (unlink(2)). Descriptors already open on the file keep reading
  // and writing it until they are closed (SnapshotView relies on this).
  virtual int Unlink(const std::string& path) = 0;
  // Creates a directory (mode 0700: only the owner may read what the library stores);
  // EEXIST if it exists. Files are created 0600 by their callers.
  virtual int Mkdir(const std::string& path) = 0;
  // Removes an empty directory (rmdir(2)); ENOTEMPTY if it holds anything.
  virtual int Rmdir(const std::string& path) = 0;
  // Names in `dir` except "." and "..", in unspecified order.
  virtual int ListDir(const std::string& dir, std::vector<std::string>* names) = 0;
  // Makes the entries of directory `dir` (creations, renames, removals) durable: open,
  // fsync, close.
  virtual int SyncDir(const std::string& dir) = 0;

  // Exactly n bytes at `offset`: Pread, then EIO if the file ended first.
  int PreadAll(int fd, void* data, std::size_t n, std::uint64_t offset);
  // Writes the first `size` bytes of the file again, as they read, and truncates it to
  // `size`: the next fdatasync then makes the disk hold what reads return. After a failed
  // fdatasync Linux drops the writeback and marks the pages clean ("fsyncgate"), so what
  // reads return may be on no disk and no later sync would write it; recovery calls this
  // on the segment it will append to (docs/storage-format.md, "Recovery on open", rule
  // 8). Reads and writes the whole range in memory: for files of a segment's size.
  int RewriteAsRead(int fd, std::uint64_t size);
  // `path` and every missing parent, through Mkdir (an existing directory is fine). Each
  // directory it creates is made durable in its parent (SyncDir(ParentDir(d))) before
  // the next is created; existing ones are left alone.
  int MkdirAll(const std::string& path);
};

// The directory holding `path`'s last component: "a/b//c" -> "a/b", "/a" -> "/",
// "a" -> ".". A trailing '/' counts as part of the last component.
std::string ParentDir(const std::string& path);

// The real POSIX calls. Stateless; the returned object lives for the whole program.
FileSystem* PosixFileSystem();

// Forwards every call to `target` (borrowed; the POSIX one by default). Derive and
// override the calls to observe or fault: the tests' counting, gating and failing file
// systems, and the simulator's disk to come, are written this way. Thread safety: that
// of the target and of the overrides.
class ForwardingFileSystem : public FileSystem {
 public:
  explicit ForwardingFileSystem(FileSystem* target = PosixFileSystem()) : target_(target) {}

  int Open(const std::string& path, int flags, mode_t mode, int* fd) override {
    return target_->Open(path, flags, mode, fd);
  }
  int Close(int fd) override { return target_->Close(fd); }
  int PwriteAll(int fd, const void* data, std::size_t n, std::uint64_t offset) override {
    return target_->PwriteAll(fd, data, n, offset);
  }
  int Pread(int fd, void* data, std::size_t n, std::uint64_t offset, std::size_t* read) override {
    return target_->Pread(fd, data, n, offset, read);
  }
  int Fdatasync(int fd) override { return target_->Fdatasync(fd); }
  int Fsync(int fd) override { return target_->Fsync(fd); }
  int Ftruncate(int fd, std::uint64_t size) override { return target_->Ftruncate(fd, size); }
  int StartWriteback(int fd, std::uint64_t offset, std::uint64_t n) override {
    return target_->StartWriteback(fd, offset, n);
  }
  int FileSize(int fd, std::uint64_t* size) override { return target_->FileSize(fd, size); }
  int LockExclusive(int fd) override { return target_->LockExclusive(fd); }
  int FileKey(int fd, std::string* key) override { return target_->FileKey(fd, key); }
  int Rename(const std::string& from, const std::string& to) override {
    return target_->Rename(from, to);
  }
  int Unlink(const std::string& path) override { return target_->Unlink(path); }
  int Mkdir(const std::string& path) override { return target_->Mkdir(path); }
  int Rmdir(const std::string& path) override { return target_->Rmdir(path); }
  int ListDir(const std::string& dir, std::vector<std::string>* names) override {
    return target_->ListDir(dir, names);
  }
  int SyncDir(const std::string& dir) override { return target_->SyncDir(dir); }

 protected:
  FileSystem* target() const { return target_; }

 private:
  FileSystem* target_;
};

}  // namespace raft::base
