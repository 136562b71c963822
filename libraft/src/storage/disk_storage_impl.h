// DiskStorage::Impl: the state behind the public DiskStorage (pimpl). Internal.
// Split by job: disk_storage.cc (public forwarding, reads), disk_storage_recover.cc
// (Open), disk_storage_write.cc (Append, Sync, snapshots, compaction).
//
// Thread safety (raft/disk_storage.h): one writer, any number of concurrent readers.
// mu_ guards the in-memory index that reads use (segments_, first_index_, snapshot_,
// hard_state_). Every call takes it for its whole run, except that the write side
// releases it around each file-system call that writes or syncs (Unlocked), so a reader
// waits at most for the writer's in-memory work and for other readers' preads, never for
// an fsync. The write side changes the index only with mu_ held, in an order that keeps
// every intermediate state readable: records enter the index after their bytes are
// written; they leave it (truncation, compaction, snapshot install) before their bytes
// are cut or their descriptor closed. The other fields are the writer's alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/file_system.h"
#include "base/mutex.h"
#include "raft/disk_storage.h"

namespace raft {

class DiskStorage::Impl {
 public:
  Impl(std::string dir, const DiskStorageOptions& options);
  ~Impl();  // closes every descriptor; no sync
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Open: lock, read meta files, scan segments, repair a torn tail, reconcile with the
  // snapshot, then sync what was recovered (so everything served is durable).
  Status Recover() RAFT_EXCLUDES(mu_);

  // Reads: any thread.
  HardState hard_state() const RAFT_EXCLUDES(mu_);
  Result<std::vector<Entry>> Entries(Index lo, Index hi, std::uint64_t max_bytes) const
      RAFT_EXCLUDES(mu_);
  Result<Term> TermAt(Index i) const RAFT_EXCLUDES(mu_);
  Index FirstIndex() const RAFT_EXCLUDES(mu_);
  Index LastIndex() const RAFT_EXCLUDES(mu_);
  SnapshotMeta snapshot() const RAFT_EXCLUDES(mu_);
  std::size_t segment_count() const RAFT_EXCLUDES(mu_);
  Index FirstIndexWithin(std::uint64_t max_bytes) const RAFT_EXCLUDES(mu_);

  // Writes: the writer.
  Status Append(const std::vector<Entry>& entries) RAFT_EXCLUDES(mu_);
  Status SetHardState(const HardState& hs) RAFT_EXCLUDES(mu_);
  Status Sync() RAFT_EXCLUDES(mu_);
  Result<SnapshotMeta> CreateSnapshot(Index index, const ConfState& conf) RAFT_EXCLUDES(mu_);
  Status ApplySnapshot(const SnapshotMeta& meta) RAFT_EXCLUDES(mu_);
  Status Compact(Index index) RAFT_EXCLUDES(mu_);

  // The writer's.
  const std::vector<std::string>& notes() const { return notes_; }
  const Status& failure() const { return failure_; }

 private:
  // Where record first+k of a segment lives.
  struct RecordLoc {
    std::uint64_t offset = 0;
    std::uint32_t bytes = 0;  // header + payload
    Term term = 0;
  };
  // One log-<first>.seg file. Entry records are contiguous: records[k] has index
  // first + k; sync marks between them are not listed. Invariant: bytes == end of the
  // last record or sync mark == size of the file as far as we wrote.
  struct Segment {
    Index first = 0;
    std::string path;
    int fd = -1;  // O_RDWR for every segment; only segments_.back() is written
    std::uint64_t bytes = 0;
    std::vector<RecordLoc> records;
    Index Last() const { return first + records.size() - 1; }  // first - 1 when empty
  };

  std::string PathOf(std::string_view name) const;
  // Runs `call` (a file-system call) with mu_ released. It must not touch guarded state;
  // the analysis checks that, as the lambda is analysed on its own, holding nothing.
  template <typename F>
  int Unlocked(F&& call) RAFT_REQUIRES(mu_) {
    base::MutexUnlock u(&mu_);
    return call();
  }
  // segments_ is empty only after a failed ApplySnapshot.
  Index LastIndexLocked() const RAFT_REQUIRES(mu_) {
    return segments_.empty() ? first_index_ - 1 : segments_.back().Last();
  }
  Result<Term> TermAtLocked(Index i) const RAFT_REQUIRES(mu_);
  Status SyncLocked() RAFT_REQUIRES(mu_);
  // Records the first write-side failure (raft::ErrnoStatus of `err`); every later
  // write returns it.
  Status Fail(const char* op, const std::string& path, int err);
  Status Fail(Status s);

  // Recovery steps (disk_storage_recover.cc). Recover holds mu_ throughout (nothing can
  // read yet); the shared write helpers still release it around their calls.
  Status LockAndList(std::vector<Index>* segment_firsts, bool* has_hard_state, bool* has_snapshot)
      RAFT_REQUIRES(mu_);
  Status LoadSnapshotMeta() RAFT_REQUIRES(mu_);
  Status LoadOrCreateHardState(bool exists, bool log_exists) RAFT_REQUIRES(mu_);
  Status ScanSegment(Index first, bool is_last) RAFT_REQUIRES(mu_);
  Status ReconcileWithSnapshot() RAFT_REQUIRES(mu_);

  // Write helpers (disk_storage_write.cc).
  Status WriteFileAtomically(std::string_view name, const std::string& contents) RAFT_REQUIRES(mu_);
  Status CreateSegment(Index first) RAFT_REQUIRES(mu_);
  Status RemoveNewestSegment() RAFT_REQUIRES(mu_);  // close + unlink + fsync(dir)
  Status TruncateFrom(Index i) RAFT_REQUIRES(mu_);
  Status FlushWriteBuffer(std::vector<RecordLoc>* pending) RAFT_REQUIRES(mu_);
  // After an fdatasync of segments_.back(): a sync mark after its last entry record
  // (docs/storage-format.md), not synced. No-op when the segment has no entries.
  Status WriteSyncMark() RAFT_REQUIRES(mu_);
  Status SyncDir() RAFT_REQUIRES(mu_);

  // Index of the segment holding entry i (FirstIndex()-1 <= i <= LastIndex(), i present).
  std::size_t SegmentOf(Index i) const RAFT_REQUIRES(mu_);
  // Reads with mu_ held: the writer cannot close seg.fd meanwhile.
  Status ReadRecords(const Segment& seg, std::size_t k0, std::size_t k1,
                     std::vector<Entry>* out) const RAFT_REQUIRES(mu_);

  std::string dir_;
  DiskStorageOptions options_;
  base::FileSystem* fs_;  // not owned
  int lock_fd_ = -1;
  int dir_fd_ = -1;
  int hard_state_fd_ = -1;

  mutable base::Mutex mu_;  // a leaf: nothing else is taken while it is held
  // By first index; never empty after Recover.
  std::vector<Segment> segments_ RAFT_GUARDED_BY(mu_);
  Index first_index_ RAFT_GUARDED_BY(mu_) = 1;  // logical: reads below return kCompacted
  // The term of index first_index_ - 1 (0 for index 0): what TermAt answers there, since
  // no segment need hold that entry (after a restart or ApplySnapshot it was the
  // snapshot's, and a later CreateSnapshot replaces snapshot_ without compacting).
  Term before_first_term_ RAFT_GUARDED_BY(mu_) = 0;
  SnapshotMeta snapshot_ RAFT_GUARDED_BY(mu_);
  HardState hard_state_ RAFT_GUARDED_BY(mu_);  // latest SetHardState
  HardState durable_hard_state_;               // in the newest valid slot of the hard-state file
  std::uint64_t hard_state_seq_ = 0;
  bool log_dirty_ = false;  // segments_.back() has writes not yet fdatasynced
  // segments_.back() ends with a sync mark not yet fdatasynced (WriteSyncMark). Not
  // log_dirty_: a Sync with nothing new to sync need not sync the mark, but the roll that
  // closes the segment must (found by the full-node simulator's disk, issue 13).
  bool mark_unsynced_ = false;
  bool dir_dirty_ = false;  // a segment was created since the last directory fsync
  Status failure_;
  std::vector<std::string> notes_;
  std::string write_buf_;  // reused by Append
};

}  // namespace raft
