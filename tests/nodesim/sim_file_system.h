// SimDisk: one simulated machine's disk, in memory, with the durability of a Linux file
// system under power loss. SimFileSystem: one process's view of it (base::FileSystem).
//
// Durability model (what Crash keeps):
// - File data: every write and truncate since the file's last successful Fdatasync/Fsync
//   is pending. A crash keeps the synced contents plus a prefix of the pending operations
//   in order: none, all, or some, the last one possibly torn (a prefix of its bytes;
//   with Options::tear_with_garbage also random bytes up to the next 512-byte boundary
//   inside that write). Reordered page writeback is deliberately not modelled.
// - Names: creations, unlinks, renames and Mkdir in a directory are volatile until
//   SyncDir of that directory (or Fsync of a descriptor of it). A crash restores every
//   directory to its last synced entries, except that each unsynced rename, in order,
//   is independently kept or lost (POSIX allows either). Syncing either directory of a
//   rename makes the whole rename durable.
// - A failed fsync (Options::fail_fsync_probability) drops the file's pending operations
//   from the durable path, as Linux does after writeback errors: reads still see the
//   bytes, a crash never brings them back, and a later successful fsync does not persist
//   them ("fsyncgate").
// - Crash kills every open descriptor and every SimFileSystem made before it: their
//   calls return EIO, and never touch the new state. Locks die with them.
//
// Paths: '/'-separated; relative paths are taken from the root ("a/b" == "/a/b"); "."
// and ".." are resolved lexically. O_APPEND, permissions, hard links and symbolic links
// are not modelled (libraft uses none of them).
//
// Determinism: every random choice comes from the Rng given to the disk (faults) or to
// Crash; listings are sorted. Not thread-safe: the simulator's one thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/file_system.h"
#include "sim_rng.h"

namespace raft::nodesim {

class SimFileSystem;

class SimDisk {
 public:
  // Faults, all off by default; may be changed at any time.
  struct Options {
    double fail_fsync_probability = 0;  // Fdatasync/Fsync/SyncDir return EIO
    double fail_write_probability = 0;  // PwriteAll writes a random prefix, returns EIO
    // Total bytes of all live files' contents; a write growing past it writes what fits
    // or nothing (chosen at random) and returns ENOSPC.
    std::uint64_t capacity_bytes = UINT64_MAX;
    bool tear_with_garbage = false;  // see "Durability model" above
  };
  struct Counters {
    std::uint64_t fsyncs = 0;         // Fdatasync, Fsync and SyncDir calls (failed ones too)
    std::uint64_t failed_fsyncs = 0;  // of which returned EIO by fault injection
    std::uint64_t bytes_written = 0;  // bytes PwriteAll stored (partial writes included)
    std::uint64_t crashes = 0;
  };

  // `rng` (borrowed, must outlive the disk) draws the faults. The disk starts with an
  // empty root directory "/".
  explicit SimDisk(sim::Rng* rng);
  ~SimDisk();
  SimDisk(const SimDisk&) = delete;
  SimDisk& operator=(const SimDisk&) = delete;

  Options& options() { return options_; }
  const Counters& counters() const { return counters_; }

  // Power loss: see "Durability model". Afterwards the disk holds only the durable image
  // and no descriptor is open; views made earlier are dead.
  void Crash(sim::Rng& rng);

  // Sum of the sizes of live files (linked, or unlinked but still open).
  std::uint64_t TotalBytes() const;
  // Every live path (directories end in '/'), sorted; for debugging.
  std::vector<std::string> ListAll() const;
  // The current (page cache) contents of a file, or false if there is none; for tests.
  bool ReadFile(const std::string& path, std::string* contents) const;
  // Open descriptors of live views (for leak checks in tests).
  std::size_t OpenFds() const { return fds_.size(); }

 private:
  friend class SimFileSystem;
  struct Inode;
  struct Fd;
  struct PendingRename;

  // The SimFileSystem entry points; `view` identifies the calling process.
  int Open(std::uint64_t view, const std::string& path, int flags, int* fd);
  int Close(std::uint64_t view, int fd);
  void CloseAll(std::uint64_t view);  // the process exited
  int PwriteAll(std::uint64_t view, int fd, const void* data, std::size_t n, std::uint64_t off);
  int Pread(std::uint64_t view, int fd, void* data, std::size_t n, std::uint64_t off,
            std::size_t* read);
  int Sync(std::uint64_t view, int fd);
  int Ftruncate(std::uint64_t view, int fd, std::uint64_t size);
  int FileSize(std::uint64_t view, int fd, std::uint64_t* size);
  int LockExclusive(std::uint64_t view, int fd);
  int Rename(const std::string& from, const std::string& to);
  int Unlink(const std::string& path);
  int Mkdir(const std::string& path);
  int Rmdir(const std::string& path);
  int ListDir(const std::string& dir, std::vector<std::string>* names);
  int SyncDir(const std::string& dir);

  // Resolves `path` to its parent directory's inode and last component; ENOENT or
  // ENOTDIR when a directory on the way is missing. The root has no last component.
  int Lookup(const std::string& path, std::uint64_t* parent, std::string* name) const;
  int Resolve(const std::string& path, std::uint64_t* ino) const;
  int GetFd(std::uint64_t view, int fd, Fd** out);
  int SyncFile(Inode& f);
  int SyncDirInode(std::uint64_t dir);
  void Link(std::uint64_t dir, const std::string& name, std::uint64_t ino);
  void UnlinkName(std::uint64_t dir, const std::string& name);
  void SetDurableEntries(Inode& dir, const std::map<std::string, std::uint64_t>& entries);
  void MaybeFree(std::uint64_t ino);
  std::uint64_t NewInode(bool is_dir);
  std::uint64_t NewView() { return next_view_++; }
  bool ViewAlive(std::uint64_t view) const { return view >= first_live_view_; }

  sim::Rng* rng_;
  Options options_;
  Counters counters_;
  std::map<std::uint64_t, std::unique_ptr<Inode>> inodes_;  // 1 is the root
  std::map<int, std::unique_ptr<Fd>> fds_;
  std::vector<PendingRename> renames_;  // unsynced renames, oldest first
  std::uint64_t next_ino_ = 1;
  int next_fd_ = 3;
  std::uint64_t next_view_ = 1;
  std::uint64_t first_live_view_ = 1;  // views below it died in a crash
};

// One process's file system on a SimDisk (borrowed; must outlive the view). After
// SimDisk::Crash every call returns EIO. Descriptors are private to the view (another
// view's numbers are EBADF). Destroying a live view is the process exiting: its
// descriptors still open are closed (and their locks released). Open ignores `mode`.
class SimFileSystem final : public base::FileSystem {
 public:
  explicit SimFileSystem(SimDisk* disk) : disk_(disk), view_(disk->NewView()) {}
  ~SimFileSystem() override;
  SimFileSystem(const SimFileSystem&) = delete;
  SimFileSystem& operator=(const SimFileSystem&) = delete;

  int Open(const std::string& path, int flags, mode_t mode, int* fd) override;
  int Close(int fd) override;
  int PwriteAll(int fd, const void* data, std::size_t n, std::uint64_t offset) override;
  int Pread(int fd, void* data, std::size_t n, std::uint64_t offset, std::size_t* read) override;
  int Fdatasync(int fd) override;
  int Fsync(int fd) override;
  int Ftruncate(int fd, std::uint64_t size) override;
  int FileSize(int fd, std::uint64_t* size) override;
  int LockExclusive(int fd) override;
  int Rename(const std::string& from, const std::string& to) override;
  int Unlink(const std::string& path) override;
  int Mkdir(const std::string& path) override;
  int Rmdir(const std::string& path) override;
  int ListDir(const std::string& dir, std::vector<std::string>* names) override;
  int SyncDir(const std::string& dir) override;

  bool alive() const { return disk_->ViewAlive(view_); }

 private:
  SimDisk* disk_;
  std::uint64_t view_;
};

}  // namespace raft::nodesim
