// DiskStorage: public forwarding, error helpers and the read path.
#include "raft/disk_storage.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/assert.h"
#include "raft/errno_status.h"
#include "storage/codec.h"
#include "storage/disk_storage_impl.h"

namespace raft {

using storage::RecordParse;
using storage::RecordView;

Result<std::unique_ptr<DiskStorage>> DiskStorage::Open(const std::string& dir,
                                                       const DiskStorageOptions& options) {
  if (options.segment_bytes_target == 0)
    return Status(ErrorCode::kInvalidArgument, "segment_bytes_target must be > 0");
  if (dir.empty()) return Status(ErrorCode::kInvalidArgument, "storage directory is empty");
  auto impl = std::make_unique<Impl>(dir, options);
  Status s = impl->Recover();
  if (!s.ok()) return s;
  return std::unique_ptr<DiskStorage>(new DiskStorage(std::move(impl)));
}

DiskStorage::DiskStorage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DiskStorage::~DiskStorage() = default;

HardState DiskStorage::InitialHardState() const { return impl_->hard_state(); }
Result<std::vector<Entry>> DiskStorage::Entries(Index lo, Index hi, std::uint64_t max_bytes) const {
  return impl_->Entries(lo, hi, max_bytes);
}
Result<Term> DiskStorage::TermAt(Index i) const { return impl_->TermAt(i); }
Index DiskStorage::FirstIndex() const { return impl_->FirstIndex(); }
Index DiskStorage::LastIndex() const { return impl_->LastIndex(); }
Result<SnapshotMeta> DiskStorage::Snapshot() const { return impl_->snapshot(); }
Status DiskStorage::Append(const std::vector<Entry>& entries) { return impl_->Append(entries); }
Status DiskStorage::SetHardState(const HardState& hs) { return impl_->SetHardState(hs); }
Status DiskStorage::Sync() { return impl_->Sync(); }
Result<SnapshotMeta> DiskStorage::CreateSnapshot(Index index, const ConfState& conf) {
  return impl_->CreateSnapshot(index, conf);
}
Status DiskStorage::ApplySnapshot(const SnapshotMeta& meta) { return impl_->ApplySnapshot(meta); }
Status DiskStorage::Compact(Index index) { return impl_->Compact(index); }
const std::vector<std::string>& DiskStorage::recovery_notes() const { return impl_->notes(); }
const Status& DiskStorage::failure() const { return impl_->failure(); }
std::size_t DiskStorage::SegmentCount() const { return impl_->segment_count(); }
Index DiskStorage::FirstIndexWithin(std::uint64_t max_bytes) const {
  return impl_->FirstIndexWithin(max_bytes);
}

DiskStorage::Impl::Impl(std::string dir, const DiskStorageOptions& options)
    : dir_(std::move(dir)),
      options_(options),
      fs_(options.file_system != nullptr ? options.file_system : base::PosixFileSystem()) {}

DiskStorage::Impl::~Impl() {
  base::MutexLock l(&mu_);  // for the analysis: nothing else runs now
  for (Segment& seg : segments_) fs_->Close(seg.fd);
  for (int fd : {hard_state_fd_, dir_fd_, lock_fd_}) {
    if (fd >= 0) fs_->Close(fd);
  }
}

std::string DiskStorage::Impl::PathOf(std::string_view name) const {
  return fmt::format("{}/{}", dir_, name);
}

Status DiskStorage::Impl::Fail(const char* op, const std::string& path, int err) {
  Status s = raft::ErrnoStatus(op, path, err);
  if (s.code() == ErrorCode::kNoSpace) {  // the failed state is sticky: say how to leave it
    s = Status(s.code(), s.message() + "; free space, then reopen the storage");
  }
  return Fail(std::move(s));
}

Status DiskStorage::Impl::Fail(Status s) {
  if (failure_.ok()) {
    failure_ = Status(s.code(), s.message() + " (storage failed: reopen to recover)");
  }
  return failure_;
}

HardState DiskStorage::Impl::hard_state() const {
  base::MutexLock l(&mu_);
  return hard_state_;
}

Index DiskStorage::Impl::FirstIndex() const {
  base::MutexLock l(&mu_);
  return first_index_;
}

Index DiskStorage::Impl::LastIndex() const {
  base::MutexLock l(&mu_);
  return LastIndexLocked();
}

SnapshotMeta DiskStorage::Impl::snapshot() const {
  base::MutexLock l(&mu_);
  return snapshot_;
}

std::size_t DiskStorage::Impl::segment_count() const {
  base::MutexLock l(&mu_);
  return segments_.size();
}

Index DiskStorage::Impl::FirstIndexWithin(std::uint64_t max_bytes) const {
  base::MutexLock l(&mu_);
  std::uint64_t sum = 0;
  // Whole segments while they fit (their file size: records and sync marks), then
  // record by record inside the one that does not.
  for (auto seg = segments_.rbegin(); seg != segments_.rend(); ++seg) {
    if (sum + seg->bytes <= max_bytes) {
      sum += seg->bytes;
      continue;
    }
    for (std::size_t k = seg->records.size(); k-- > 0;) {
      sum += seg->records[k].bytes;
      if (sum > max_bytes) return std::max<Index>(seg->first + k + 1, first_index_);
    }
  }
  return first_index_;
}

Result<Term> DiskStorage::Impl::TermAt(Index i) const {
  base::MutexLock l(&mu_);
  return TermAtLocked(i);
}

Result<Term> DiskStorage::Impl::TermAtLocked(Index i) const {
  if (i + 1 < first_index_) return Status(ErrorCode::kCompacted, "index compacted");
  if (i > LastIndexLocked()) return Status(ErrorCode::kUnavailable, "index beyond last");
  if (i == snapshot_.index) return snapshot_.term;  // also i == 0 with no snapshot
  // The position before the first entry is not in any segment. Its term is kept apart:
  // a later snapshot replaces snapshot_ but not first_index_ (found by the full-node
  // simulator, issue 13: TermAt(first - 1) and TermAt(0) aborted on the segment lookup).
  if (i + 1 == first_index_) return before_first_term_;
  const Segment& seg = segments_[SegmentOf(i)];
  return seg.records[i - seg.first].term;
}

std::size_t DiskStorage::Impl::SegmentOf(Index i) const {
  // Last() is non-decreasing over the contiguous segments: the first segment whose
  // last index reaches i holds i.
  auto it = std::partition_point(segments_.begin(), segments_.end(),
                                 [i](const Segment& s) { return s.Last() < i; });
  RAFT_ASSERT(it != segments_.end() && it->first <= i);
  return static_cast<std::size_t>(it - segments_.begin());
}

Result<std::vector<Entry>> DiskStorage::Impl::Entries(Index lo, Index hi,
                                                      std::uint64_t max_bytes) const {
  // Held across the preads too: the writer cannot close a descriptor or cut the bytes
  // of a record in the index meanwhile. It may wait for this read, never the reverse.
  base::MutexLock l(&mu_);
  if (lo < first_index_) return Status(ErrorCode::kCompacted, "entries compacted");
  if (hi > LastIndexLocked() + 1) return Status(ErrorCode::kUnavailable, "entries beyond last");
  std::vector<Entry> out;
  if (lo >= hi) return out;
  // Decide the range from the index alone, then read each segment's part with one pread.
  std::uint64_t bytes = 0;
  Index end = lo;
  for (Index i = lo; i < hi; ++i) {
    const Segment& seg = segments_[SegmentOf(i)];
    bytes +=
        EntrySizeBytes(Entry{}) + (seg.records[i - seg.first].bytes - storage::kRecordHeaderBytes);
    if (i > lo && bytes > max_bytes) break;
    end = i + 1;
  }
  out.reserve(end - lo);
  for (Index i = lo; i < end;) {
    const Segment& seg = segments_[SegmentOf(i)];
    Index seg_end = std::min<Index>(end, seg.Last() + 1);
    Status s = ReadRecords(seg, i - seg.first, seg_end - seg.first, &out);
    if (!s.ok()) return s;
    i = seg_end;
  }
  return out;
}

Status DiskStorage::Impl::ReadRecords(const Segment& seg, std::size_t k0, std::size_t k1,
                                      std::vector<Entry>* out) const {
  const std::uint64_t begin = seg.records[k0].offset;
  const std::uint64_t end = seg.records[k1 - 1].offset + seg.records[k1 - 1].bytes;
  std::string buf(end - begin, '\0');
  if (int err = fs_->PreadAll(seg.fd, buf.data(), buf.size(), begin); err != 0)
    return raft::ErrnoStatus("read", seg.path, err);
  for (std::size_t k = k0; k < k1; ++k) {
    const RecordLoc& loc = seg.records[k];
    RecordView v;
    RecordParse p =
        storage::ParseRecord(std::string_view(buf).substr(loc.offset - begin, loc.bytes), &v);
    const Index want = seg.first + k;
    if (p != RecordParse::kOk || v.sync_mark || v.bytes != loc.bytes || v.index != want ||
        v.term != loc.term) {
      return Status(ErrorCode::kCorruption,
                    fmt::format("{}: record for index {} at byte offset {} changed on disk: {}",
                                seg.path, want, loc.offset,
                                p != RecordParse::kOk ? storage::RecordParseName(p)
                                                      : "index, term or size differ"));
    }
    out->push_back(Entry{v.term, v.index, v.type, std::string(v.payload)});
  }
  return Status::Ok();
}

}  // namespace raft
