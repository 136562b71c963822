// DiskStorage::Impl: the state behind the public DiskStorage (pimpl). Internal.
// Split by job: disk_storage.cc (public forwarding, reads), disk_storage_recover.cc
// (Open), disk_storage_write.cc (Append, Sync, snapshots, compaction).
// Not thread-safe; see raft/disk_storage.h for the contract.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/file_system.h"
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
  Status Recover();

  HardState hard_state() const { return hard_state_; }
  Result<std::vector<Entry>> Entries(Index lo, Index hi, std::uint64_t max_bytes) const;
  Result<Term> TermAt(Index i) const;
  Index FirstIndex() const { return first_index_; }
  // segments_ is empty only after a failed ApplySnapshot.
  Index LastIndex() const { return segments_.empty() ? first_index_ - 1 : segments_.back().Last(); }
  const SnapshotMeta& snapshot() const { return snapshot_; }

  Status Append(const std::vector<Entry>& entries);
  Status SetHardState(const HardState& hs);
  Status Sync();
  Result<SnapshotMeta> CreateSnapshot(Index index, const ConfState& conf);
  Status ApplySnapshot(const SnapshotMeta& meta);
  Status Compact(Index index);

  const std::vector<std::string>& notes() const { return notes_; }
  const Status& failure() const { return failure_; }
  std::size_t segment_count() const { return segments_.size(); }

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
  // Records the first write-side failure (raft::ErrnoStatus of `err`); every later
  // write returns it.
  Status Fail(const char* op, const std::string& path, int err);
  Status Fail(Status s);

  // Recovery steps (disk_storage_recover.cc).
  Status LockAndList(std::vector<Index>* segment_firsts, bool* has_hard_state, bool* has_snapshot);
  Status LoadSnapshotMeta();
  Status LoadOrCreateHardState(bool exists, bool log_exists);
  Status ScanSegment(Index first, bool is_last);
  Status ReconcileWithSnapshot();

  // Write helpers (disk_storage_write.cc).
  Status WriteFileAtomically(std::string_view name, const std::string& contents);
  Status CreateSegment(Index first);
  Status RemoveNewestSegment();  // close + unlink + fsync(dir)
  Status TruncateFrom(Index i);
  Status FlushWriteBuffer(std::vector<RecordLoc>* pending);
  // After an fdatasync of segments_.back(): a sync mark after its last entry record
  // (docs/storage-format.md), not synced. No-op when the segment has no entries.
  Status WriteSyncMark();
  Status SyncDir();

  // Index of the segment holding entry i (FirstIndex()-1 <= i <= LastIndex(), i present).
  std::size_t SegmentOf(Index i) const;
  Status ReadRecords(const Segment& seg, std::size_t k0, std::size_t k1,
                     std::vector<Entry>* out) const;

  std::string dir_;
  DiskStorageOptions options_;
  base::FileSystem* fs_;  // not owned
  int lock_fd_ = -1;
  int dir_fd_ = -1;
  int hard_state_fd_ = -1;

  std::vector<Segment> segments_;  // by first index; never empty after Recover
  Index first_index_ = 1;          // logical: reads below return kCompacted
  SnapshotMeta snapshot_;
  HardState hard_state_;          // latest SetHardState
  HardState durable_hard_state_;  // in the newest valid slot of the hard-state file
  std::uint64_t hard_state_seq_ = 0;
  bool log_dirty_ = false;  // segments_.back() has writes not yet fdatasynced
  bool dir_dirty_ = false;  // a segment was created since the last directory fsync
  Status failure_;
  std::vector<std::string> notes_;
  std::string write_buf_;  // reused by Append
};

}  // namespace raft
