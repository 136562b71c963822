// Helpers for the storage tests: a per-test temp directory, entry builders, and a
// FileSystem that counts calls and injects errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/file_system.h"
#include "raft/disk_storage.h"

namespace raft::storage::testing {

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path()/name
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Entry i with term t and a payload of `bytes` bytes derived from (i, t).
Entry MakeEntry(Index i, Term t, std::size_t bytes = 16);
// Entries [lo, hi) with term t.
std::vector<Entry> MakeEntries(Index lo, Index hi, Term t, std::size_t bytes = 16);

// Whole-file helpers (abort the test via Catch on failure).
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& data);
std::vector<std::string> ListSegments(const std::string& dir);  // sorted names

// Counts calls; from the (n+1)-th write or fdatasync on, fails with the given errno.
// A failing write first writes half of its bytes (as a full disk would).
class FaultyFileSystem final : public base::ForwardingFileSystem {
 public:
  int write_calls = 0;
  int fdatasync_calls = 0;
  int fsync_calls = 0;
  int fail_writes_after = -1;  // -1: never
  int write_errno = 0;
  int fail_fdatasyncs_after = -1;
  int fdatasync_errno = 0;
  bool syncs_are_noops = false;  // for tests that reopen hundreds of times

  int PwriteAll(int fd, const void* data, std::size_t n, std::uint64_t offset) override;
  int Fdatasync(int fd) override;
  int Fsync(int fd) override;
  int SyncDir(const std::string& dir) override;  // counted as an fsync
};

}  // namespace raft::storage::testing
