// LockedStorage: the core's view of the node's DiskStorage, safe to read from the io
// thread while the disk thread writes.
//
// The disk thread holds the node's storage mutex for a whole persist, fsync included
// (and fsyncs stall for seconds when a large snapshot is being written to the same
// disk). The io thread must never wait for that: it sends the heartbeats. So it never
// takes the storage mutex. The disk thread publishes, after each durable write, what the
// io thread reads on its hot paths, and those reads are served from this cache under
// its own short lock:
//   - bounds, hard state and snapshot metadata (Publish);
//   - the last kRecentMax entries (PublishAppended): their terms always, their payloads
//     while they fit in kPayloadBytesMax. That covers committed entries handed to apply
//     and appends to followers up to that far behind.
// Reads beyond that (a follower lagging further, the leader walking back a reject hint,
// a restart replaying the log) go to DiskStorage's reads, which run concurrently with
// the writer and never wait for its writes or fsyncs (raft/disk_storage.h): a cold read
// costs a pread, not an fsync. They are bounded by the published bounds, so they never
// return entries that are written but not yet durable (those are kUnavailable here until
// Publish). Entries a persist in flight replaces are not read: the core reads storage
// only below its unstable part, which holds their replacements.
//
// Thread safety: the Storage methods from any thread; Publish* from the disk thread with
// the storage mutex held (asserted). Lock order: storage mutex -> cache_mu_ ->
// DiskStorage's internal lock (a leaf).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "base/mutex.h"
#include "raft/disk_storage.h"
#include "raft/storage.h"

namespace raft {

class LockedStorage final : public Storage {
 public:
  // `mu` is the storage mutex the writer of `disk` holds; both are borrowed and outlive
  // this.
  LockedStorage(base::Mutex* mu, const DiskStorage* disk) : mu_(mu), disk_(disk) {}
  HardState InitialHardState() const override;
  Result<std::vector<Entry>> Entries(Index lo, Index hi, std::uint64_t max_bytes) const override;
  Result<Term> TermAt(Index i) const override;
  Index FirstIndex() const override;
  Index LastIndex() const override;
  Result<SnapshotMeta> Snapshot() const override;

  // Disk thread, with the storage mutex held, after each successful write.
  // Each asserts at run time that the caller holds the storage mutex (not annotated
  // RAFT_REQUIRES(mu_): the analysis cannot tie mu_ to the caller's own mutex field).
  void PublishAppended(const std::vector<Entry>& entries);  // now durable
  void PublishReset();  // after a snapshot install: forget the recent entries
  void Publish();       // bounds, hard state and snapshot meta from the disk

  static constexpr std::size_t kRecentMax = 8192;
  static constexpr std::uint64_t kPayloadBytesMax = 32ull << 20;

 private:
  void TrimLocked() RAFT_REQUIRES(cache_mu_);

  base::Mutex* const mu_;  // the storage mutex
  // Only its reads, which are thread-safe (raft/disk_storage.h); Publish* read it too,
  // on the writer's thread.
  const DiskStorage* const disk_;
  mutable base::Mutex cache_mu_ RAFT_ACQUIRED_AFTER(mu_);
  Index first_ RAFT_GUARDED_BY(cache_mu_) = 1;
  Index last_ RAFT_GUARDED_BY(cache_mu_) = 0;
  HardState hard_state_ RAFT_GUARDED_BY(cache_mu_);
  SnapshotMeta snapshot_ RAFT_GUARDED_BY(cache_mu_);
  // Entries [recent_first_, recent_first_ + recent_.size()); those below payload_first_
  // had their payload released (only the index and term are kept).
  Index recent_first_ RAFT_GUARDED_BY(cache_mu_) = 0;
  Index payload_first_ RAFT_GUARDED_BY(cache_mu_) = 0;
  std::uint64_t payload_bytes_ RAFT_GUARDED_BY(cache_mu_) = 0;
  std::deque<Entry> recent_ RAFT_GUARDED_BY(cache_mu_);
};

}  // namespace raft
