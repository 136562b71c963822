// DiskStorage: the durable raft::Storage. A directory of append-only log segments, a
// double-buffered hard-state file and a snapshot-meta file; the format, the crash rules
// and which calls sync are specified in docs/storage-format.md.
//
// Typical use by the runtime, once per Ready:
//   Append(ready.entries); SetHardState(ready.hard_state); Sync();  // then send messages
// Group commit: Append writes without syncing and Sync makes everything written so far
// durable with one fdatasync of the log (plus one of the hard-state file when it changed).
//
// Thread safety: one writer, concurrent readers. The write side (Append, SetHardState,
// Sync, CreateSnapshot, ApplySnapshot, Compact, failure(), recovery_notes()) is called
// from one thread at a time (or under a caller-held lock). The reads (the raft::Storage
// methods and SegmentCount) may be called from any thread, concurrently with a write,
// and never wait for the writer's write or fsync syscalls: an internal lock guards the
// in-memory index only, and a write releases it around every file-system call. A read
// waits at most for the writer's in-memory bookkeeping and for other reads' preads.
// What a concurrent read sees: the index between two steps of the write, i.e. entries
// appended and not yet synced (as "Before any Sync" below says), and while a suffix is
// replaced, the log cut short before the new entries arrive. A caller that must see
// only durable entries bounds its reads by what it saw after Sync returned (as the
// runtime's LockedStorage does). One process at a time: Open takes an exclusive flock
// on dir/LOCK.
//
// Failure: the first write-side error (write, fsync, ftruncate, rename, unlink) puts the
// storage into a failed state; every later write-side call (Append, SetHardState, Sync,
// CreateSnapshot, ApplySnapshot, Compact) returns that same Status. A failed fsync is
// never retried: what reached the disk is unknown, so the node must stop and reopen
// (recovery then decides from what is actually on disk). Reads keep working on the
// records that were written successfully.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "raft/export.h"
#include "raft/status.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace raft {

namespace base {
// Internal, not installed (src/base/file_system.h): the file-system calls, a seam for
// fault injection and simulation. Only code built with the library's sources uses it.
class FileSystem;
}  // namespace base

struct DiskStorageOptions {
  // Roll to a new segment before an append would make the open segment larger than
  // this. A segment always holds at least one record. Must be > 0.
  std::uint64_t segment_bytes_target = 64ull << 20;
  // Create dir (and an empty store in it) when it does not exist.
  bool create_if_missing = true;
  // Every file-system call goes through this. Not owned; must outlive the storage.
  // nullptr: the real POSIX calls (base::PosixFileSystem()).
  base::FileSystem* file_system = nullptr;
};

class RAFT_EXPORT DiskStorage final : public Storage {
 public:
  // Opens (or creates) the store in `dir`, running recovery (docs/storage-format.md,
  // "Recovery on open"): a torn tail of the last segment (written after the last sync
  // mark) is truncated and reported in recovery_notes(); a bad record anywhere else,
  // synced records included, is kCorruption naming file and offset.
  // Errors: kCorruption, kIOError, kNoSpace, kInvalidArgument (bad options, or dir
  // missing with create_if_missing = false), kBusy (dir locked by another open store).
  static Result<std::unique_ptr<DiskStorage>> Open(const std::string& dir,
                                                   const DiskStorageOptions& options);
  ~DiskStorage() override;  // closes files; does not sync (call Sync first)

  DiskStorage(const DiskStorage&) = delete;
  DiskStorage& operator=(const DiskStorage&) = delete;

  // --- raft::Storage (reads). Entries are read from the segment files through an
  // in-memory index of record offsets; every read re-checks the record's CRC
  // (kCorruption naming file and offset) and kIOError reports a failed read.
  // Before any Sync, reads return what was appended, durable or not.
  HardState InitialHardState() const override;  // the latest SetHardState value
  Result<std::vector<Entry>> Entries(Index lo, Index hi, std::uint64_t max_bytes) const override;
  Result<Term> TermAt(Index i) const override;
  Index FirstIndex() const override;
  Index LastIndex() const override;
  Result<SnapshotMeta> Snapshot() const override;

  // --- Writes, mirroring MemoryStorage.

  // Appends entries (consecutive indexes, non-decreasing terms). Entries at indexes
  // already present replace that suffix; entries below FirstIndex() are skipped.
  // kInvalidArgument when the first kept entry's index is > LastIndex() + 1, indexes
  // are not consecutive, a term decreases, or a payload exceeds 64 MiB (nothing is
  // written then). Not durable until Sync, except that replacing a suffix is made
  // durable (directory fsync + ftruncate + fdatasync) before the new records are
  // written, and rolling to a new segment fdatasyncs the segment being closed.
  Status Append(const std::vector<Entry>& entries);

  // Records the hard state in memory; Sync writes and syncs it. No I/O.
  Status SetHardState(const HardState& hs);

  // Makes every earlier Append and SetHardState durable: fdatasync of the open log
  // segment followed by a sync mark (one unsynced write, so that recovery can tell
  // damage to these records from a torn write), fsync of the directory if segments were
  // created, then the hard-state slot write + fdatasync. Cheap (no syscalls) when
  // nothing is pending.
  Status Sync();

  // Records a snapshot of the state machine at `index` (FirstIndex()-1 <= index <=
  // LastIndex(), index > the current snapshot's) with membership `conf`, keeping the
  // entries. Runs Sync() first (the snapshot is never durable ahead of its entries);
  // durable on return (atomic file replace).
  Result<SnapshotMeta> CreateSnapshot(Index index, const ConfState& conf);

  // Replaces the whole log by `meta` (a snapshot received from the leader): afterwards
  // FirstIndex() == meta.index + 1 == LastIndex() + 1. kInvalidArgument if older than
  // the current snapshot. Durable on return.
  Status ApplySnapshot(const SnapshotMeta& meta);

  // Discards entries <= index (index <= the latest snapshot's index and <= LastIndex();
  // at or below FirstIndex()-1 it is a no-op). FirstIndex() becomes index + 1; closed
  // segments holding only discarded entries are unlinked and the directory fsynced
  // before returning. After a reopen FirstIndex() is the snapshot index + 1.
  Status Compact(Index index);

  // Notes from recovery in Open (torn tail truncated, interrupted snapshot finished,
  // unknown files ignored), in order. Empty after a clean shutdown.
  const std::vector<std::string>& recovery_notes() const;

  // OK, or the error that failed the storage (see "Failure" above).
  const Status& failure() const;

  // Number of segment files (for tests and metrics).
  std::size_t SegmentCount() const;

  // The lowest index i such that the records of entries i..LastIndex() take at most
  // `max_bytes` on disk (LastIndex() + 1 when even the last one does not fit; at least
  // FirstIndex()). For a compaction bounded in bytes rather than in entries.
  Index FirstIndexWithin(std::uint64_t max_bytes) const;

 private:
  class RAFT_NO_EXPORT Impl;  // src/storage/disk_storage_impl.h
  explicit DiskStorage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace raft
