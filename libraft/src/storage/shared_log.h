// SharedLog: the one durable log of a host of many Raft groups (docs/storage-format.md,
// "The shared log of a host"). Every group's entries, hard states and snapshot
// bookkeeping are records in one sequence of segment files, so one Sync (one
// fdatasync) makes the writes of any number of groups durable.
//
// Per group it serves what raft::Storage asks (GroupStorage, below): entries are read
// back from the segment files through an in-memory index of where each lies.
//
// Writes mirror DiskStorage's, per group: Append (a suffix replaced by a later record
// needs no truncation), SetHardState, Sync for all groups at once; CreateSnapshot,
// ApplySnapshot (install), Compact and RemoveGroup write their record and sync it.
// Reclaim deletes the oldest segments once nothing in them is live, writing a group's
// live hard-state and snapshot records again first.
//
// Failure: as DiskStorage, the first write-side error is sticky: every later write
// returns it, and the owner must reopen (recovery decides from what is on disk).
//
// Thread safety: one writer, any number of concurrent readers, as DiskStorage. The
// write side (Append, SetHardState, Sync, CreateSnapshot, ApplySnapshot, Compact,
// RemoveGroup, AddGroup, Reclaim, failure(), recovery_notes()) is called from one thread
// at a time. The reads (GroupStorage, Group, Groups, segment_count, syncs) may be called
// from any thread: mu_ guards the in-memory index, and the writer releases it around
// every file call that writes, syncs, creates or deletes, so a reader never waits for
// an fdatasync. A reader sees entries appended and not yet synced, as DiskStorage's do;
// one that must see only durable entries bounds its reads by what it saw after Sync.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/file_system.h"
#include "base/mutex.h"
#include "raft/status.h"
#include "raft/storage.h"
#include "storage/group_replay.h"

namespace raft::storage {

struct SharedLogOptions {
  // Roll to a new segment before an append would make the open one larger than this.
  std::uint64_t segment_bytes_target = 64ull << 20;
  // Not owned; nullptr: the real POSIX calls.
  base::FileSystem* file_system = nullptr;
};

class SharedLog;

// One group's view: raft::Storage over the shared log. Owned by the SharedLog; valid
// until the group is removed or the log closed.
class GroupStorage final : public Storage {
 public:
  GroupStorage(SharedLog* log, GroupId group) : log_(log), group_(group) {}
  HardState InitialHardState() const override;
  Result<std::vector<Entry>> Entries(Index lo, Index hi, std::uint64_t max_bytes) const override;
  Result<Term> TermAt(Index i) const override;
  Index FirstIndex() const override;
  Index LastIndex() const override;
  Result<SnapshotMeta> Snapshot() const override;

 private:
  SharedLog* log_;
  GroupId group_;
};

class SharedLog {
 public:
  // Opens (or creates) the log in `dir`: lock, scan every segment (a torn tail of the
  // last is truncated and noted; a bad record anywhere else is kCorruption naming file
  // and offset), replay (GroupLogReplay), then sync what was recovered.
  static Result<std::unique_ptr<SharedLog>> Open(const std::string& dir,
                                                 const SharedLogOptions& options);
  ~SharedLog();  // closes files; does not sync
  SharedLog(const SharedLog&) = delete;
  SharedLog& operator=(const SharedLog&) = delete;

  // The groups with state in the log, and one's view (nullptr if absent). A group
  // appears with its first record.
  std::vector<GroupId> Groups() const RAFT_EXCLUDES(mu_);
  GroupStorage* Group(GroupId g) RAFT_EXCLUDES(mu_);
  // Creates a group's view before its first record (a new group bootstraps through
  // Append). No-op if it exists. kInvalidArgument for group 0 or a removed group.
  Status AddGroup(GroupId g) RAFT_EXCLUDES(mu_);

  // Writes (not durable until Sync). Append: consecutive indexes, non-decreasing terms,
  // the first at most LastIndex() + 1 and above FirstIndex() - 1 (kInvalidArgument
  // otherwise); it replaces the group's entries from its first index on.
  Status Append(GroupId g, const std::vector<Entry>& entries) RAFT_EXCLUDES(mu_);
  Status SetHardState(GroupId g, const HardState& hs) RAFT_EXCLUDES(mu_);
  // One fdatasync of the open segment for everything written since the last, then a
  // sync mark (not synced); the directory first if a segment was created.
  Status Sync() RAFT_EXCLUDES(mu_);

  // Each writes its record and syncs (Sync) before returning.
  // A snapshot at `index` (FirstIndex()-1 <= index <= LastIndex()) with `conf`; nothing
  // is discarded.
  Result<SnapshotMeta> CreateSnapshot(GroupId g, Index index, const ConfState& conf)
      RAFT_EXCLUDES(mu_);
  // Installs a received snapshot: the group's log is discarded, FirstIndex = index + 1.
  // kInvalidArgument if older than the group's snapshot.
  Status ApplySnapshot(GroupId g, const SnapshotMeta& meta) RAFT_EXCLUDES(mu_);
  // Discards entries <= index (at most the snapshot's index and LastIndex()).
  Status Compact(GroupId g, Index index) RAFT_EXCLUDES(mu_);
  Status RemoveGroup(GroupId g) RAFT_EXCLUDES(mu_);

  // Deletes the oldest segments that hold nothing live (never the open one), writing
  // live non-entry records of each again first. Returns how many were deleted.
  Result<std::size_t> Reclaim() RAFT_EXCLUDES(mu_);

  std::size_t segment_count() const RAFT_EXCLUDES(mu_) {
    base::MutexLock l(&mu_);
    return segments_.size();
  }
  std::uint64_t syncs() const { return syncs_.load(); }  // fdatasyncs of segments so far
  const std::vector<std::string>& recovery_notes() const { return notes_; }
  const Status& failure() const { return failure_; }

 private:
  friend class GroupStorage;
  struct Segment {
    std::uint64_t seq = 0;
    std::string path;
    int fd = -1;
    std::uint64_t bytes = 0;
    std::uint64_t live_entries = 0;  // entry records some group's index points at
  };
  // Which of a group's latest non-entry records lives where (for Reclaim).
  enum Kind { kHardState = 0, kSnapshot = 1, kFloor = 2, kKinds = 3 };
  struct GroupState {
    ReplayedGroup log;
    std::uint64_t latest_seq[kKinds] = {0, 0, 0};  // segment of the latest record of a kind
    bool has_latest[kKinds] = {false, false, false};
    std::unique_ptr<GroupStorage> view;
  };

  SharedLog(std::string dir, const SharedLogOptions& options);
  Status Recover() RAFT_EXCLUDES(mu_);
  Status ScanSegment(Segment& seg, bool is_last, GroupLogReplay* replay) RAFT_REQUIRES(mu_);
  Status CreateSegment(std::uint64_t seq) RAFT_REQUIRES(mu_);
  // Writes `records` at the end of the open segment (rolling first if they would pass
  // the target); *offset receives where they start.
  Status WriteRecords(const std::string& records, std::uint64_t* offset) RAFT_REQUIRES(mu_);
  Status SyncLocked() RAFT_REQUIRES(mu_);
  Status WriteAndSync(const std::string& records) RAFT_REQUIRES(mu_);
  Status AddGroupLocked(GroupId g) RAFT_REQUIRES(mu_);
  Status Fail(const char* op, const std::string& path, int err);
  // Runs `call` (a file-system call on values copied out of guarded state) with mu_
  // released: readers never wait for a write or a sync.
  template <typename F>
  int Unlocked(F&& call) RAFT_REQUIRES(mu_) {
    base::MutexUnlock u(&mu_);
    return call();
  }
  GroupState* Find(GroupId g) RAFT_REQUIRES(mu_);
  const GroupState* Find(GroupId g) const RAFT_REQUIRES(mu_);
  Segment* SegmentBySeq(std::uint64_t seq) RAFT_REQUIRES(mu_);
  // Drops entries [from, end) of g from the index (their segments' live counts).
  void DropEntriesFrom(GroupState& gs, std::size_t k) RAFT_REQUIRES(mu_);
  void NoteLatest(GroupState& gs, Kind kind, std::uint64_t seq);
  Result<std::vector<Entry>> ReadEntries(const GroupState& gs, Index lo, Index hi,
                                         std::uint64_t max_bytes) const RAFT_REQUIRES(mu_);

  std::string dir_;
  SharedLogOptions options_;
  base::FileSystem* fs_;
  int lock_fd_ = -1;
  mutable base::Mutex mu_;  // a leaf: nothing else is taken while it is held
  std::vector<Segment> segments_ RAFT_GUARDED_BY(mu_);  // by seq, consecutive; last open
  std::map<GroupId, GroupState> groups_ RAFT_GUARDED_BY(mu_);
  std::set<GroupId> removed_ RAFT_GUARDED_BY(mu_);
  // The writer's.
  bool dirty_ = false;          // the open segment has writes not yet fdatasynced
  bool mark_unsynced_ = false;  // it ends with a sync mark not yet fdatasynced
  bool dir_dirty_ = false;      // a segment was created or deleted since the last dir sync
  std::atomic<std::uint64_t> syncs_{0};
  // Recovery's bookkeeping of where each group's latest non-entry records are.
  struct ScanLatest {
    bool has[kKinds] = {false, false, false};
    std::uint64_t seq[kKinds] = {0, 0, 0};
    Index snapshot_index = 0;
    Index floor_index = 0;
  };
  std::map<GroupId, ScanLatest> scan_latest_;
  bool scan_last_is_mark_ = false;
  Status failure_;
  std::vector<std::string> notes_;
};

}  // namespace raft::storage
