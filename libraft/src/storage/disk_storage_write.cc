// DiskStorage's write path. Every syscall failure goes through Fail(), which makes the
// storage refuse all later writes (no retry after a failed write or fsync).
//
// Each public write holds mu_ except inside Unlocked(...), around every file-system call
// that writes or syncs: readers on other threads never wait for those (disk_storage_impl.h
// gives the order in which the index changes relative to the bytes).
#include <fcntl.h>
#include <fmt/format.h>

#include "base/assert.h"
#include "storage/codec.h"
#include "storage/disk_storage_impl.h"

namespace raft {

Status DiskStorage::Impl::SyncDir() {
  const int fd = dir_fd_;
  if (int err = Unlocked([&] { return fs_->Fsync(fd); }); err != 0) return Fail("fsync", dir_, err);
  dir_dirty_ = false;
  return Status::Ok();
}

Status DiskStorage::Impl::WriteFileAtomically(std::string_view name, const std::string& contents) {
  const std::string path = PathOf(name);
  const std::string tmp = path + std::string(storage::kTempSuffix);
  const char* op = "create";
  int err = Unlocked([&] {
    int fd = -1;
    if (int e = fs_->Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600, &fd); e != 0) return e;
    op = "write";
    int e = fs_->PwriteAll(fd, contents.data(), contents.size(), 0);
    if (e == 0) {
      op = "fsync";
      e = fs_->Fsync(fd);
    }
    fs_->Close(fd);
    return e;
  });
  if (err != 0) return Fail(op, tmp, err);
  if (err = Unlocked([&] { return fs_->Rename(tmp, path); }); err != 0)
    return Fail("rename", tmp, err);
  return SyncDir();
}

Status DiskStorage::Impl::CreateSegment(Index first) {
  Segment seg;
  seg.first = first;
  seg.path = PathOf(storage::SegmentFileName(first));
  if (int err =
          Unlocked([&] { return fs_->Open(seg.path, O_RDWR | O_CREAT | O_EXCL, 0600, &seg.fd); });
      err != 0)
    return Fail("create", seg.path, err);
  segments_.push_back(std::move(seg));
  dir_dirty_ = true;
  return Status::Ok();
}

Status DiskStorage::Impl::RemoveNewestSegment() {
  // Out of the index first: no reader can use the descriptor once it is closed.
  Segment seg = std::move(segments_.back());
  segments_.pop_back();
  // The dirty segment, if any, is gone; the new back() was synced, mark included, when it
  // was closed.
  log_dirty_ = false;
  mark_unsynced_ = false;
  if (int err = Unlocked([&] {
        fs_->Close(seg.fd);
        return fs_->Unlink(seg.path);
      });
      err != 0)
    return Fail("unlink", seg.path, err);
  // One directory fsync per unlink: a crash leaves a prefix of the segments, never a gap.
  return SyncDir();
}

Status DiskStorage::Impl::TruncateFrom(Index i) {
  RAFT_ASSERT(i >= first_index_ && i <= LastIndexLocked());
  while (segments_.size() > 1 && segments_.back().first >= i) {
    if (Status s = RemoveNewestSegment(); !s.ok()) return s;
  }
  Segment& seg = segments_.back();
  RAFT_ASSERT(seg.first <= i);
  if (i > seg.Last()) return Status::Ok();  // i started the segments just removed
  // Out of the index before the bytes are cut.
  const std::uint64_t off = seg.records[i - seg.first].offset;
  seg.records.resize(i - seg.first);
  seg.bytes = off;
  const int fd = seg.fd;
  const char* op = "ftruncate";
  if (int err = Unlocked([&] {
        if (int e = fs_->Ftruncate(fd, off); e != 0) return e;
        op = "fdatasync";
        return fs_->Fdatasync(fd);
      });
      err != 0)
    return Fail(op, seg.path, err);
  log_dirty_ = false;
  mark_unsynced_ = false;  // cut off with the records after `off`, or synced
  return Status::Ok();
}

Status DiskStorage::Impl::FlushWriteBuffer(std::vector<RecordLoc>* pending) {
  if (write_buf_.empty()) return Status::Ok();
  Segment& seg = segments_.back();
  const int fd = seg.fd;
  const std::uint64_t at = seg.bytes;
  // Into the index only once written.
  if (int err =
          Unlocked([&] { return fs_->PwriteAll(fd, write_buf_.data(), write_buf_.size(), at); });
      err != 0)
    return Fail("write", seg.path, err);
  seg.records.insert(seg.records.end(), pending->begin(), pending->end());
  seg.bytes += write_buf_.size();
  log_dirty_ = true;
  write_buf_.clear();
  pending->clear();
  return Status::Ok();
}

Status DiskStorage::Impl::WriteSyncMark() {
  Segment& seg = segments_.back();
  if (seg.records.empty()) return Status::Ok();
  std::string mark;
  storage::EncodeSyncMark(seg.Last(), seg.records.back().term, &mark);
  const int fd = seg.fd;
  const std::uint64_t at = seg.bytes;
  // Not synced: the next fdatasync of this segment covers it, the one of the next Sync or
  // the one of the roll that closes the segment (mark_unsynced_: a closed segment's tail,
  // mark included, is durable before the next segment exists).
  if (int err = Unlocked([&] { return fs_->PwriteAll(fd, mark.data(), mark.size(), at); });
      err != 0)
    return Fail("write", seg.path, err);
  seg.bytes += mark.size();
  mark_unsynced_ = true;
  return Status::Ok();
}

Status DiskStorage::Impl::Append(const std::vector<Entry>& entries) {
  base::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  if (entries.empty()) return Status::Ok();
  for (std::size_t k = 0; k < entries.size(); ++k) {
    if (entries[k].index != entries[0].index + k)
      return Status(ErrorCode::kInvalidArgument, "append: indexes are not consecutive");
    if (k > 0 && entries[k].term < entries[k - 1].term)
      return Status(ErrorCode::kInvalidArgument, "append: terms decrease");
    if (entries[k].data.size() > storage::kRecordPayloadBytesMax)
      return Status(
          ErrorCode::kInvalidArgument,
          fmt::format("append: entry {} is {} bytes, above the {} byte limit", entries[k].index,
                      entries[k].data.size(), storage::kRecordPayloadBytesMax));
  }
  if (entries.back().index < first_index_) return Status::Ok();  // all compacted
  const std::size_t skip =
      entries.front().index < first_index_ ? first_index_ - entries.front().index : 0;
  const Index start = entries[skip].index;
  if (start > LastIndexLocked() + 1)
    return Status(
        ErrorCode::kInvalidArgument,
        fmt::format("append at index {} leaves a gap after {}", start, LastIndexLocked()));
  Result<Term> prev_term = TermAtLocked(start - 1);
  RAFT_ASSERT(prev_term.ok());
  if (entries[skip].term < *prev_term)
    return Status(ErrorCode::kInvalidArgument, "append: term below the preceding entry's");
  if (start <= LastIndexLocked()) {
    if (Status s = TruncateFrom(start); !s.ok()) return s;
  }
  std::vector<RecordLoc> pending;
  pending.reserve(entries.size() - skip);
  write_buf_.clear();
  for (std::size_t k = skip; k < entries.size(); ++k) {
    const Entry& e = entries[k];
    const std::size_t rec_bytes = storage::RecordBytes(e.data.size());
    const std::uint64_t used = segments_.back().bytes + write_buf_.size();
    if (used > 0 && used + rec_bytes > options_.segment_bytes_target) {
      // Roll: the closing segment becomes durable before the next one exists, so a
      // closed segment never has a torn tail.
      if (Status s = FlushWriteBuffer(&pending); !s.ok()) return s;
      if (log_dirty_ || mark_unsynced_) {
        const int fd = segments_.back().fd;
        if (int err = Unlocked([&] { return fs_->Fdatasync(fd); }); err != 0)
          return Fail("fdatasync", segments_.back().path, err);
        log_dirty_ = false;
        mark_unsynced_ = false;
      }
      if (Status s = CreateSegment(e.index); !s.ok()) return s;
    }
    pending.push_back({segments_.back().bytes + write_buf_.size(),
                       static_cast<std::uint32_t>(rec_bytes), e.term});
    storage::EncodeRecord(e, &write_buf_);
  }
  return FlushWriteBuffer(&pending);
}

Status DiskStorage::Impl::SetHardState(const HardState& hs) {
  base::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  hard_state_ = hs;
  return Status::Ok();
}

Status DiskStorage::Impl::Sync() {
  base::MutexLock l(&mu_);
  return SyncLocked();
}

Status DiskStorage::Impl::SyncLocked() {
  if (!failure_.ok()) return failure_;
  // Log before hard state: a durable commit index never points past the durable log.
  if (log_dirty_) {
    const int fd = segments_.back().fd;
    if (int err = Unlocked([&] { return fs_->Fdatasync(fd); }); err != 0)
      return Fail("fdatasync", segments_.back().path, err);
    log_dirty_ = false;
    mark_unsynced_ = false;
    if (Status s = WriteSyncMark(); !s.ok()) return s;
  }
  if (dir_dirty_) {
    if (Status s = SyncDir(); !s.ok()) return s;
  }
  if (hard_state_ != durable_hard_state_) {
    // Overwrite the older slot only; the newer one stays valid if this write tears.
    const std::uint64_t seq = hard_state_seq_ + 1;
    const HardState hs = hard_state_;
    char slot[storage::kHardStateSlotBytes];
    storage::EncodeHardStateSlot(seq, hs, slot);
    const int fd = hard_state_fd_;
    const char* op = "write";
    if (int err = Unlocked([&] {
          if (int e =
                  fs_->PwriteAll(fd, slot, sizeof(slot), (seq % 2) * storage::kHardStateSlotStride);
              e != 0)
            return e;
          op = "fdatasync";
          return fs_->Fdatasync(fd);
        });
        err != 0)
      return Fail(op, PathOf(storage::kHardStateFile), err);
    hard_state_seq_ = seq;
    durable_hard_state_ = hs;
  }
  return Status::Ok();
}

Result<SnapshotMeta> DiskStorage::Impl::CreateSnapshot(Index index, const ConfState& conf) {
  base::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  if (index <= snapshot_.index)
    return Status(ErrorCode::kInvalidArgument, "snapshot index not beyond the current one");
  if (index > LastIndexLocked()) return Status(ErrorCode::kInvalidArgument, "snapshot beyond last");
  Result<Term> term = TermAtLocked(index);
  if (!term.ok()) return term.status();
  // The snapshot must never be durable ahead of the entries it covers.
  if (Status s = SyncLocked(); !s.ok()) return s;
  SnapshotMeta meta{index, *term, conf};
  if (Status s = WriteFileAtomically(storage::kSnapshotMetaFile, storage::EncodeSnapshotMeta(meta));
      !s.ok())
    return s;
  snapshot_ = meta;
  return snapshot_;
}

Status DiskStorage::Impl::ApplySnapshot(const SnapshotMeta& meta) {
  base::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  if (meta.index < snapshot_.index)
    return Status(ErrorCode::kInvalidArgument, "snapshot older than the current one");
  // Order matters for recovery: meta first; then segments newest first (each unlink
  // fsynced, so a crash leaves a prefix); recovery finishes the job when the remaining
  // log does not contain the snapshot (docs/storage-format.md, rule 6).
  if (Status s = WriteFileAtomically(storage::kSnapshotMetaFile, storage::EncodeSnapshotMeta(meta));
      !s.ok())
    return s;
  snapshot_ = meta;
  first_index_ = meta.index + 1;
  before_first_term_ = meta.term;
  while (!segments_.empty()) {
    if (Status s = RemoveNewestSegment(); !s.ok()) return s;
  }
  if (Status s = CreateSegment(meta.index + 1); !s.ok()) return s;
  return SyncDir();
}

Status DiskStorage::Impl::Compact(Index index) {
  base::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  if (index + 1 <= first_index_) return Status::Ok();
  if (index > LastIndexLocked()) return Status(ErrorCode::kInvalidArgument, "compact beyond last");
  if (index > snapshot_.index)
    return Status(ErrorCode::kInvalidArgument, "compact beyond the latest snapshot");
  Result<Term> before_first = TermAtLocked(index);
  RAFT_ASSERT(before_first.ok());  // first_index_ - 1 <= index <= LastIndex
  first_index_ = index + 1;
  before_first_term_ = *before_first;
  // Remove closed segments whose entries all lie below the new first index (keeping the
  // one holding `index` unless the snapshot answers TermAt(index)). Oldest first; any
  // subset surviving a crash is covered by the snapshot, and Open removes it. Out of the
  // index first, then closed and unlinked.
  std::size_t n = 0;
  while (n + 1 < segments_.size()) {
    const Segment& seg = segments_[n];
    if (!(seg.Last() < index || (seg.Last() == index && index == snapshot_.index))) break;
    ++n;
  }
  if (n == 0) return Status::Ok();
  std::vector<Segment> gone(
      std::make_move_iterator(segments_.begin()),
      std::make_move_iterator(segments_.begin() + static_cast<std::ptrdiff_t>(n)));
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(n));
  std::string failed;
  if (int err = Unlocked([&] {
        int first_err = 0;
        for (const Segment& seg : gone) {
          fs_->Close(seg.fd);
          if (first_err != 0) continue;  // closed, left on disk: Open removes it
          if (int e = fs_->Unlink(seg.path); e != 0) {
            first_err = e;
            failed = seg.path;
          }
        }
        return first_err;
      });
      err != 0)
    return Fail("unlink", failed, err);
  return SyncDir();
}

}  // namespace raft
