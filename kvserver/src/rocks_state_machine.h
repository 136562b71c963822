// RocksStateMachine: kvserver's raft::StateMachine, the key-value data in one RocksDB.
//
// Directory layout (dir = <data>/kv; names are part of the on-disk format):
//   LOCK           flock(LOCK_EX) held while open: one instance per directory
//   db/            the live DB
//   checkpoints/   snapshot sources being streamed (hard links); emptied on Open
//   restore.tmp/   a snapshot being received; incomplete, removed on Open
//   db.new/        a received snapshot, complete and fsynced, about to become db/
//   db.old/        the DB that a restore is replacing
//
// Key space (one column family, so one memtable and one flush order), specified in
// docs/state-format.md:
//   'u' key                 a user key's record (kv_record.h: index, expiry, value)
//   'h' index:u64be         the change history (one event per changing entry)
//   'x' expire_at:u64be key a pending expiry of a TTL key
//   "\0applied"             u64 little-endian: index of the last entry applied
//   "\0hstart"              u64 little-endian: every event at or after it is retained
//   "\0hbytes"              u64 little-endian: bytes of the retained events' keys and values
//   "\0format"              u8: kStateFormatVersion (a format-1 DB is upgraded on open)
//   "\0voters"              ranges mode: a split's new range's first voters
//   "\0range", "\0split"     ranges mode: the span this range owns, its last split
//   "\0origin"              ranges mode: u64 little-endian: the split index it began at
// Metadata keys start with '\0', the others with their letter: they can never collide,
// and a scan of one space never meets another.
//
// Durability (the Raft log is the WAL; RocksDB's own WAL is disabled):
//  - Each Apply call is one WriteBatch holding the commands' effects AND the new applied
//    index. RocksDB applies a batch atomically to the memtable, and flushes memtables to
//    SST files (fsynced, then recorded in the fsynced MANIFEST) in sequence order. So
//    whatever survives a crash is the effect of a prefix of the batches, tagged with
//    exactly that prefix's applied index.
//  - On restart AppliedIndex() returns that index; the runtime replays the committed log
//    after it, and Apply is deterministic, so the lost suffix is rebuilt.
//  - The runtime discards log entries only at or below a snapshot's index. The snapshot is
//    a RocksDB checkpoint of SST files taken once the memtables holding its index are
//    flushed (see PrepareSnapshot): once a snapshot exists, the live DB durably holds at
//    least its index.
//  - Close() flushes. A restore writes a new DB in a fresh directory, fsyncs it, and swaps
//    it in by two renames with directory fsyncs; Open finishes or undoes a swap that a
//    crash interrupted (see fs::RecoverLayout), so one complete DB is always found.
//
// Thread safety: Apply, PrepareSnapshot, Restore, RestoreFiles and AppliedIndex come from
// the runtime's apply thread. Get, GetRecord, List, History, DueExpiries and
// ApproximateSizeBytes may be called from any thread at any time, concurrently with
// everything (they read the DB under a shared lock; a restore holds it exclusively only
// while it swaps the directories). Close may be called from any thread once the runtime
// no longer calls in.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv_record.h"
#include "raft/state_machine.h"
#include "raft/status.h"
#include "raft/types.h"
#include "range_map.h"
#include "write_load.h"

namespace rocksdb {
class Cache;
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace kv {

struct Command;  // kv_command.h

inline constexpr std::string_view kLiveDbDir = "db";
inline constexpr std::string_view kCheckpointsDir = "checkpoints";
inline constexpr std::string_view kRestoreTmpDir = "restore.tmp";
inline constexpr std::string_view kNewDbDir = "db.new";
inline constexpr std::string_view kOldDbDir = "db.old";
inline constexpr std::uint8_t kStateFormatVersion = 2;

// RocksDB tuning. The defaults suit a small machine: memory use is about
// block_cache_bytes + max_write_buffers * write_buffer_bytes, whatever the data size
// (index and filter blocks live in the block cache too).
struct RocksOptions {
  std::size_t block_cache_bytes = 32u << 20;
  std::size_t write_buffer_bytes = 16u << 20;  // one memtable; a flush writes one
  int max_write_buffers = 3;
  int background_jobs = 2;                      // flush and compaction threads
  std::uint64_t target_file_bytes = 64u << 20;  // SST size at level 1
  int bloom_bits_per_key = 10;                  // 0: no filter
  // SST files kept open (RocksDB's default, -1, keeps all: descriptors the HTTP port needs).
  int max_open_files = 1000;
  // Change history kept for watches: at most this many log indices (-watch-history; at
  // least 1) and about this many bytes of keys and values (-watch-history-bytes).
  std::uint64_t history_entries = 100000;
  std::uint64_t history_bytes = 256u << 20;
  // Ranges mode with -range-max-writes: record the client writes applied (WriteLoad), for
  // LoadSplitKey.
  bool track_write_load = false;
};

// A key's value with what the state keeps beside it.
struct KeyRecord {
  std::string value;
  std::uint64_t index = 0;         // the entry that last wrote it (0: before format 2)
  std::uint64_t expire_at_ms = 0;  // 0: no TTL
};

// A piece of the change history (RocksStateMachine::History).
struct HistoryPage {
  std::vector<Event> events;  // index order, only keys with the prefix asked for
  // Where the next page starts: every event before it (from `from`) was looked at.
  std::uint64_t next = 0;
  std::uint64_t applied = 0;  // the applied index the page was read at
  std::uint64_t start = 0;    // the history start (hstart) then
  bool compacted = false;     // `from` < start: the events asked for are gone
};

class RocksStateMachine final : public raft::StateMachine {
 public:
  // Opens (creating if needed) the state machine in `dir`, first repairing what a crash
  // may have left (see the layout above). kIOError if another instance holds `dir`;
  // kCorruption for a DB of an unknown format.
  static raft::Result<std::unique_ptr<RocksStateMachine>> Open(const std::string& dir,
                                                               const RocksOptions& options);
  ~RocksStateMachine() override;  // Close()
  RocksStateMachine(const RocksStateMachine&) = delete;
  RocksStateMachine& operator=(const RocksStateMachine&) = delete;

  // Applies the entries as one WriteBatch. Per entry, `results` receives: for a kNormal
  // entry with a valid command, EncodeResult of its outcome; for a malformed one,
  // EncodeResult with `error` set (a no-op, the same on every replica); "" for the
  // term-start no-op, kConfChange entries, and entries at or below the applied index
  // (already applied: ignored). A RocksDB write error (a full disk: ENOSPC when a flush
  // fails) cannot be reported and must not be skipped (the replica would diverge), and
  // aborting would crash-loop while the disk stays full. So Apply stalls: Failure()
  // names the error, and every 100 ms..2 s it asks RocksDB to resume (DB::Resume) and
  // writes the batch again; once space is freed it succeeds and Failure() clears. The
  // Raft core keeps running meanwhile. Interrupt() or Close() ends the stall without
  // applying (the applied index stays behind; a restart replays the log after it).
  void Apply(const std::vector<raft::Entry>& entries, std::vector<std::string>* results) override;

  // The applied index stored in the DB. Right after Open it is the durable one (see
  // above); afterwards it includes batches not flushed yet.
  raft::Index AppliedIndex() override;

  // A RocksDB checkpoint of the state at AppliedIndex(), streamed in the grammar of
  // rocks_state_machine_snapshot.h. The apply thread only switches the memtable (no I/O:
  // the WAL is off); the source's first WriteTo or ReleaseFiles, on the snapshot thread,
  // waits for that flush, then checkpoints the SST files without flushing again (which
  // would take in what Apply wrote since) and checks that the checkpoint's applied index
  // is exactly this one. A flush of a later memtable can overtake it (the write buffer
  // filled in between): that attempt fails with kUnavailable, and the next
  // PrepareSnapshot checkpoints inline (flush and checkpoint on the apply thread, as long
  // as writing up to one write buffer), so snapshots always make progress. The source
  // may outlive this object: it then fails with kShutdown.
  raft::Result<std::unique_ptr<raft::SnapshotSource>> PrepareSnapshot() override;

  // Streams the snapshot into a fresh directory (bounded memory), checks that it holds a
  // DB whose applied index is meta.index, and swaps it in. Readers keep seeing the old
  // state until the swap, and block (without failing) during it. On failure the old state
  // stays in place when possible.
  raft::Status Restore(raft::SnapshotReader* in, const raft::SnapshotMeta& meta) override;

  // The same from a linked snapshot (raft::SnapshotFiles, e.g. one a CheckpointSource
  // released), without copying the table files: they are hard-linked into the new DB
  // (see ReceiveSnapshotFiles: copied only where the file system refuses links), the
  // few others copied. The runtime's files are never changed, and the restored DB does
  // not depend on them staying (a link is a name of its own). Always returns a value.
  std::optional<raft::Status> RestoreFiles(const raft::SnapshotFiles& files,
                                           const raft::SnapshotMeta& meta) override;

  // The value of `key`, nullopt if absent. kShutdown after Close.
  raft::Result<std::optional<std::string>> Get(std::string_view key) const;
  // The same with the key's index and expiry.
  raft::Result<std::optional<KeyRecord>> GetRecord(std::string_view key) const;

  // The events with index in [from, applied] whose keys start with `prefix`, from one
  // consistent view, in index order: at most `max_events` of them, after looking at no
  // more than `max_scan` events in all (of any key), ending early once their keys and
  // values pass `max_bytes`. page.next is where to continue. `from` below the history
  // start: page.compacted, no events. kShutdown after Close.
  raft::Result<HistoryPage> History(std::uint64_t from, std::string_view prefix,
                                    std::size_t max_events, std::size_t max_scan,
                                    std::size_t max_bytes) const;

  // Up to `limit` pending expiries due at `now_ms` (expire_at <= now_ms), oldest first:
  // (key, expire_at). Some may be stale (docs/state-format.md, "Expiries").
  raft::Result<std::vector<std::pair<std::string, std::uint64_t>>> DueExpiries(
      std::uint64_t now_ms, std::size_t limit) const;

  // Called on the apply thread after each Apply that moved the applied index (with it)
  // and after a Restore: it must not block. Set before the runtime starts.
  void SetAppliedListener(std::function<void(raft::Index)> f) { applied_listener_ = std::move(f); }

  // Up to `limit` (key, value) pairs whose keys start with `prefix` and sort strictly after
  // `start_after` (bytewise), in key order. An empty `start_after` starts at the prefix.
  // Pass the last key returned to get the next page; limit 0 gives an empty page.
  // The page also ends after the item that brings the keys and values it holds to
  // `max_bytes` or more (so it holds at most max_bytes plus one item). kShutdown after Close.
  raft::Result<std::vector<std::pair<std::string, std::string>>> List(
      std::string_view prefix, std::string_view start_after, std::size_t limit,
      std::size_t max_bytes = SIZE_MAX) const;

  // Ranges mode (docs/state-format.md, "Splits"). SetSplitDir: where a split makes the
  // new range's state machine (<data>/ranges/<id>); unset, a split is refused (a no-op).
  // Set before the runtime starts. Range: the span this range owns, nullopt when none is
  // recorded (single-group mode, or a range never split: it owns what its directory
  // descriptor says). LastSplit: the last split applied here. Owns: whether `key` is in
  // Range() (true when none is recorded). A reader of the state (Get, List) checks Owns
  // AFTER reading: a split moves the span before it deletes the keys that left it, so a
  // read that saw them gone sees the span moved. Any thread.
  void SetSplitDir(std::function<std::string(std::uint64_t range)> dir_of) {
    split_dir_ = std::move(dir_of);
  }
  std::optional<RangeDescriptor> Range() const;
  std::optional<SplitRecord> LastSplit() const;
  bool Owns(std::string_view key) const;
  // Whether this range's span is `d`'s: Range() has d's id, generation, start and end, or
  // none is recorded and `d` is at generation 1 (a range never split). What a split order,
  // a backup and a restore check a descriptor against.
  bool HoldsSpan(const RangeDescriptor& d) const;
  // A split's new range: the voters its group starts with (empty for any other range).
  std::vector<raft::NodeId> SplitVoters() const;
  // The index this range's state starts at: a split's (its history and log begin after
  // it), 0 for a range bootstrapped empty.
  raft::Index OriginIndex() const;
  // The key near the middle of the span's user data by bytes (keys and values), for a
  // split; nullopt with fewer than two keys. Reads the whole span (bounded memory).
  raft::Result<std::optional<std::string>> MiddleKey() const;
  // Splits by load (RocksOptions::track_write_load; docs/multi-raft.md, "Splits by
  // load"): when each of the last WriteLoad::kWindowSeconds seconds applied at least
  // `per_second` client writes (put, set, delete, CAS: an expiry is not a client's) since
  // the span last changed, the key that parts them in halves (WriteLoad::SplitKey);
  // nullopt otherwise or untracked. Any thread.
  std::optional<std::string> LoadSplitKey(std::uint64_t per_second) const;

  // The user keys and values of Range() (all of them with none recorded), in bytes: the
  // table files' estimate of the span, which counts neither the history nor what a split
  // moved out (still in shared table files until compaction), plus the memtables whole
  // (an overestimate by their recent history events). What a split is decided on. 0
  // after Close.
  std::uint64_t SpanSizeBytes() const;
  // SST files plus memtables, in bytes (an estimate; 0 after Close).
  std::uint64_t ApproximateSizeBytes() const;
  // "" while Apply works; otherwise why it stalls (see Apply). Any thread.
  std::string Failure() const;
  // Makes a stalled Apply give up and every later one return without applying: for
  // shutdown, before the runtime joins the apply thread. Any thread; irreversible.
  void Interrupt() { interrupted_.store(true); }

  // Deletes that removed a key, applied since Open (the quota compacts only after some).
  std::uint64_t DeletesApplied() const { return deletes_applied_.load(); }
  // After a split: compacts the user keys outside Range() (what the split deleted, still
  // in the table files the two halves shared), so that ApproximateSizeBytes counts this
  // range's keys only. Cheap when nothing is left there. Any thread; kShutdown after Close.
  raft::Status CompactOutsideSpan();
  // Flushes the memtable and compacts the whole key space down to the last level, so that
  // deleted values stop counting in ApproximateSizeBytes. Blocks while RocksDB works (and
  // a Restore waits for it); any thread. kShutdown after Close.
  raft::Status Compact();

  // Flushes the memtable, closes the DB and releases the directory. Idempotent.
  void Close();

 private:
  RocksStateMachine(std::string dir, const RocksOptions& options, int lock_fd);
  raft::Status OpenLiveDb();
  // Restore and RestoreFiles: clears what an earlier failed restore left, has `receive`
  // fill the restore tmp dir (which does not exist yet), checks that it holds a DB at
  // meta.index, makes it durable as db.new, and swaps it in (SwapIn). On failure before
  // the swap the tmp dir is removed and the old state stays.
  raft::Status Install(const raft::SnapshotMeta& meta,
                       const std::function<raft::Status(const std::string& tmp)>& receive);
  raft::Status SwapIn(raft::Index index);
  raft::Status UpgradeFromFormat1(rocksdb::DB* db, raft::Index applied);
  // Snapshot thread (a deferred PrepareSnapshot's source): the checkpoint at `applied`
  // into `path`, once the flush PrepareSnapshot started is done.
  raft::Result<std::unique_ptr<raft::SnapshotSource>> CheckpointFlushed(const std::string& path,
                                                                        raft::Index applied);
  // Apply thread: adds the history's range deletion to `batch` when a bound is passed;
  // returns the new history start and updates *bytes.
  std::uint64_t PruneHistory(rocksdb::WriteBatch* batch, raft::Index applied, raft::Index before,
                             std::uint64_t* bytes);
  // Apply thread: writes `batch` (the entries after `before` up to `applied`) with the
  // applied index and the history's bounds, stalling on a write error (see Apply). False
  // when interrupted meanwhile (nothing written).
  bool CommitBatch(rocksdb::WriteBatch* batch, raft::Index applied, raft::Index before,
                   std::uint64_t* history_bytes);
  // Apply's stall: records `failure`, waits before attempt `attempt` + 1; false once
  // interrupted.
  bool Stall(int attempt, std::string failure);
  // Apply thread: the split at `index` (docs/state-format.md, "Splits"); "" when applied,
  // else why it changed nothing. The entries before it are written.
  std::string ApplySplit(raft::Index index, const Command& c);
  // The new range's DB of `rec` in `dir` (its steps 2), from a checkpoint of this one.
  raft::Status MakeSplitDb(const std::string& dir, const SplitRecord& rec);
  std::string Path(std::string_view name) const;

  const std::string dir_;
  const RocksOptions options_;
  int lock_fd_;
  std::shared_ptr<rocksdb::Cache> block_cache_;  // outlives every reopen of the DB
  // Guards the db_ pointer (RocksDB itself is thread-safe): shared for every use,
  // exclusive to close or replace it.
  mutable std::shared_mutex mu_;
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<raft::Index> applied_{0};
  std::uint64_t history_start_ = 1;  // apply thread (and OpenLiveDb under mu_)
  std::uint64_t history_bytes_ = 0;  // likewise: the history's keys and values
  std::function<void(raft::Index)> applied_listener_;
  std::function<std::string(std::uint64_t)> split_dir_;
  // The span, the last split, a new range's first voters and origin: written on the
  // apply thread (and by OpenLiveDb) under range_mu_, read by any thread under it.
  mutable std::mutex range_mu_;
  std::vector<raft::NodeId> split_voters_;
  std::optional<RangeDescriptor> range_;
  std::optional<SplitRecord> last_split_;
  raft::Index origin_ = 0;
  // The client writes applied (apply thread) and read by LoadSplitKey (any thread).
  mutable std::mutex load_mu_;
  WriteLoad load_;
  std::atomic<std::uint64_t> deletes_applied_{0};
  std::atomic<bool> interrupted_{false};
  mutable std::mutex failure_mu_;
  std::string failure_;               // guarded by failure_mu_
  std::uint64_t checkpoint_seq_ = 0;  // apply thread only
  // A deferred checkpoint was overtaken: the next PrepareSnapshot checkpoints inline.
  std::atomic<bool> checkpoint_inline_{false};
  // What a deferred snapshot source calls back into; the destructor detaches it (under
  // its mutex, so no call is in flight once this object is gone).
  struct Anchor {
    std::mutex mu;
    RocksStateMachine* sm;
  };
  std::shared_ptr<Anchor> anchor_;
};

}  // namespace kv
