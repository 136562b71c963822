// The narrow read interface through which the consensus core sees durable state,
// and an in-memory implementation for tests and embedding.
//
// Ranges are half-open: Entries(lo, hi) returns indexes [lo, hi).
// Valid indexes are FirstIndex() .. LastIndex(); Term() additionally answers for
// FirstIndex() - 1 (the index of the latest snapshot, or 0).
#pragma once

#include <cstdint>
#include <vector>

#include "raft/export.h"
#include "raft/status.h"
#include "raft/types.h"

namespace raft {

class Storage {
 public:
  virtual ~Storage() = default;

  // Hard state as last persisted.
  virtual HardState InitialHardState() const = 0;

  // Entries in [lo, hi), at most max_bytes of EntrySizeBytes (but at least one entry
  // when lo < hi). Errors: kCompacted if lo < FirstIndex(); kUnavailable if
  // hi > LastIndex() + 1; kIOError/kCorruption from disk implementations.
  virtual Result<std::vector<Entry>> Entries(Index lo, Index hi, std::uint64_t max_bytes) const = 0;

  // Term of entry i for FirstIndex()-1 <= i <= LastIndex(). kCompacted below, kUnavailable above.
  virtual Result<Term> TermAt(Index i) const = 0;

  virtual Index FirstIndex() const = 0;
  virtual Index LastIndex() const = 0;

  // Metadata of the latest snapshot (index 0 when there is none). kUnavailable when a
  // snapshot is being produced and the caller should retry later.
  virtual Result<SnapshotMeta> Snapshot() const = 0;
};

// MemoryStorage keeps everything in memory. Not thread-safe: callers serialize access.
// Writers (the application, after a Ready) use Append/SetHardState/ApplySnapshot/
// Compact; the core only reads.
class RAFT_EXPORT MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  HardState InitialHardState() const override { return hard_state_; }
  Result<std::vector<Entry>> Entries(Index lo, Index hi, std::uint64_t max_bytes) const override;
  Result<Term> TermAt(Index i) const override;
  Index FirstIndex() const override;
  Index LastIndex() const override;
  Result<SnapshotMeta> Snapshot() const override { return snapshot_; }

  void SetHardState(const HardState& hs) { hard_state_ = hs; }

  // Appends entries; entries at indexes already present replace that suffix.
  // The first entry's index must be <= LastIndex() + 1. Entries below FirstIndex() are skipped.
  Status Append(const std::vector<Entry>& entries);

  // Replaces the whole log by the snapshot. kInvalidArgument if older than the current one.
  Status ApplySnapshot(const SnapshotMeta& meta);

  // Records a snapshot at `index` (<= LastIndex()) with membership `conf`, without
  // discarding entries. Returns its metadata.
  Result<SnapshotMeta> CreateSnapshot(Index index, const ConfState& conf);

  // Discards entries <= index. index must be <= the latest snapshot's index and
  // <= LastIndex(); compacting at or below FirstIndex()-1 is a no-op.
  Status Compact(Index index);

  // Writes the initial configuration of a brand-new cluster: one kConfChange entry per
  // voter at term 1, all committed. Every founding member must be bootstrapped identically.
  Status Bootstrap(const std::vector<NodeId>& voters);

 private:
  HardState hard_state_;
  SnapshotMeta snapshot_;
  // ents_[0] is a dummy entry at snapshot_.index with snapshot_.term.
  std::vector<Entry> ents_;
};

// The entries Bootstrap writes; storage implementations share it.
RAFT_EXPORT std::vector<Entry> BootstrapEntries(const std::vector<NodeId>& voters);

}  // namespace raft
