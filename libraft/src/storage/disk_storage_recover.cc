// DiskStorage::Open's recovery (docs/storage-format.md, "Recovery on open").
#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

#include "base/assert.h"
#include "raft/errno_status.h"
#include "storage/codec.h"
#include "storage/disk_storage_impl.h"

namespace raft {

using storage::RecordParse;
using storage::RecordView;

namespace {

Status Corruption(std::string message) {
  return Status(ErrorCode::kCorruption, std::move(message));
}

}  // namespace

Status DiskStorage::Impl::Recover() {
  base::MutexLock l(&mu_);  // nothing can read yet: held across the file-system calls too
  std::vector<Index> firsts;
  bool has_hard_state = false;
  bool has_snapshot = false;
  if (Status s = LockAndList(&firsts, &has_hard_state, &has_snapshot); !s.ok()) return s;
  if (has_snapshot) {
    if (Status s = LoadSnapshotMeta(); !s.ok()) return s;
  }
  if (Status s = LoadOrCreateHardState(has_hard_state, !firsts.empty() || has_snapshot); !s.ok())
    return s;

  // Segments entirely covered by the snapshot (the next segment starts at or below
  // snapshot index + 1) are leftovers of a Compact and are removed without reading them.
  std::sort(firsts.begin(), firsts.end());
  bool removed = false;
  while (firsts.size() >= 2 && firsts[1] <= snapshot_.index + 1) {
    std::string path = PathOf(storage::SegmentFileName(firsts.front()));
    if (int err = fs_->Unlink(path); err != 0) return raft::ErrnoStatus("unlink", path, err);
    firsts.erase(firsts.begin());
    removed = true;
  }
  if (removed) {
    if (Status s = SyncDir(); !s.ok()) return s;
  }
  for (std::size_t k = 0; k < firsts.size(); ++k) {
    if (Status s = ScanSegment(firsts[k], k + 1 == firsts.size()); !s.ok()) return s;
  }
  if (Status s = ReconcileWithSnapshot(); !s.ok()) return s;

  // What the previous process wrote may still sit only in the page cache; make it
  // durable before serving it (the core may acknowledge it).
  //
  // And what we read is the page cache's view, which after a failed fdatasync may be on
  // no disk: a previous process of this boot whose sync failed (of its writes, its hard
  // state, or recovery's truncation of a torn tail) may have left bytes we read that no
  // sync will write, or a torn tail a crash would bring back into a segment closed
  // later. So the last segment and the newest hard-state slot are written again before
  // the syncs below (storage-format.md, "Recovery on open", rule 8). Only the last
  // segment: a roll syncs the closed one first, and a failed sync fails the store before
  // the next segment exists. Only the newest slot: a torn rewrite of it leaves the other.
  {
    const Segment& last = segments_.back();
    if (int err = fs_->RewriteAsRead(last.fd, last.bytes); err != 0)
      return raft::ErrnoStatus("rewrite", last.path, err);
    char slot[storage::kHardStateSlotBytes];
    storage::EncodeHardStateSlot(hard_state_seq_, hard_state_, slot);
    if (int err = fs_->PwriteAll(hard_state_fd_, slot, sizeof(slot),
                                 (hard_state_seq_ % 2) * storage::kHardStateSlotStride);
        err != 0)
      return raft::ErrnoStatus("write", PathOf(storage::kHardStateFile), err);
  }
  if (int err = fs_->Fdatasync(segments_.back().fd); err != 0)
    return raft::ErrnoStatus("fdatasync", segments_.back().path, err);
  if (int err = fs_->Fdatasync(hard_state_fd_); err != 0)
    return raft::ErrnoStatus("fdatasync", PathOf(storage::kHardStateFile), err);
  if (Status s = SyncDir(); !s.ok()) return s;
  // The tail is durable now; if no sync mark says so (a crash before the mark, or a
  // version-1 log), write one, as Sync does.
  const Segment& last = segments_.back();
  if (!last.records.empty() && last.records.back().offset + last.records.back().bytes == last.bytes)
    return WriteSyncMark();
  return Status::Ok();
}

Status DiskStorage::Impl::LockAndList(std::vector<Index>* segment_firsts, bool* has_hard_state,
                                      bool* has_snapshot) {
  if (options_.create_if_missing) {
    int err = fs_->Mkdir(dir_);
    if (err != 0 && err != EEXIST) return raft::ErrnoStatus("mkdir", dir_, err);
    if (err == 0) {  // make the new directory's name durable in its parent
      std::string parent = dir_.find('/') == std::string::npos
                               ? std::string(".")
                               : dir_.substr(0, std::max<std::size_t>(dir_.rfind('/'), 1));
      if (err = fs_->SyncDir(parent); err != 0) return raft::ErrnoStatus("fsync", parent, err);
    }
  }
  if (int err = fs_->Open(dir_, O_RDONLY | O_DIRECTORY, 0, &dir_fd_); err != 0) {
    if (err == ENOENT)
      return Status(ErrorCode::kInvalidArgument, fmt::format("{}: no such directory", dir_));
    return raft::ErrnoStatus("open", dir_, err);
  }
  std::string lock_path = PathOf(storage::kLockFile);
  if (int err = fs_->Open(lock_path, O_RDWR | O_CREAT, 0600, &lock_fd_); err != 0)
    return raft::ErrnoStatus("open", lock_path, err);
  if (int err = fs_->LockExclusive(lock_fd_); err != 0) {
    if (err == EWOULDBLOCK)
      return Status(ErrorCode::kBusy, fmt::format("{}: in use by another open storage", dir_));
    return raft::ErrnoStatus("flock", lock_path, err);
  }
  std::vector<std::string> names;
  if (int err = fs_->ListDir(dir_, &names); err != 0) return raft::ErrnoStatus("list", dir_, err);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    Index first = 0;
    if (storage::ParseSegmentFileName(name, &first)) {
      segment_firsts->push_back(first);
    } else if (name == storage::kHardStateFile) {
      *has_hard_state = true;
    } else if (name == storage::kSnapshotMetaFile) {
      *has_snapshot = true;
    } else if (name.ends_with(storage::kTempSuffix)) {
      if (int err = fs_->Unlink(PathOf(name)); err != 0)
        return raft::ErrnoStatus("unlink", PathOf(name), err);
      notes_.push_back(fmt::format("{}: removed leftover of an interrupted replace", name));
    } else if (name != storage::kLockFile) {
      notes_.push_back(fmt::format("{}: unknown file ignored", name));
    }
  }
  return Status::Ok();
}

Status DiskStorage::Impl::LoadSnapshotMeta() {
  std::string path = PathOf(storage::kSnapshotMetaFile);
  int fd = -1;
  if (int err = fs_->Open(path, O_RDONLY, 0, &fd); err != 0)
    return raft::ErrnoStatus("open", path, err);
  std::uint64_t size = 0;
  int err = fs_->FileSize(fd, &size);
  std::string data;
  if (err == 0 && size <= (std::uint64_t{1} << 24)) {
    data.resize(size);
    err = fs_->PreadAll(fd, data.data(), data.size(), 0);
  }
  fs_->Close(fd);
  if (err != 0) return raft::ErrnoStatus("read", path, err);
  if (!storage::DecodeSnapshotMeta(data, &snapshot_))
    return Corruption(fmt::format("{}: bad checksum or format ({} bytes)", path, size));
  return Status::Ok();
}

Status DiskStorage::Impl::LoadOrCreateHardState(bool exists, bool log_exists) {
  std::string path = PathOf(storage::kHardStateFile);
  if (!exists) {
    if (log_exists) return Corruption(fmt::format("{}: missing but the log exists", path));
    std::string contents(storage::kHardStateFileBytes, '\0');
    storage::EncodeHardStateSlot(0, HardState{}, contents.data());  // seq 0 in slot 0
    if (Status s = WriteFileAtomically(storage::kHardStateFile, contents); !s.ok()) return s;
  }
  if (int err = fs_->Open(path, O_RDWR, 0, &hard_state_fd_); err != 0)
    return raft::ErrnoStatus("open", path, err);
  std::uint64_t size = 0;
  if (int err = fs_->FileSize(hard_state_fd_, &size); err != 0)
    return raft::ErrnoStatus("stat", path, err);
  std::string data(storage::kHardStateFileBytes, '\0');
  if (int err =
          fs_->PreadAll(hard_state_fd_, data.data(), std::min<std::uint64_t>(size, data.size()), 0);
      err != 0)
    return raft::ErrnoStatus("read", path, err);
  bool found = false;
  for (std::size_t slot = 0; slot < 2; ++slot) {
    std::uint64_t seq = 0;
    HardState hs;
    // A slot is valid only where its sequence number says it belongs (seq % 2).
    if (storage::DecodeHardStateSlot(data.data() + slot * storage::kHardStateSlotStride, &seq,
                                     &hs) &&
        seq % 2 == slot && (!found || seq > hard_state_seq_)) {
      found = true;
      hard_state_seq_ = seq;
      hard_state_ = hs;
    }
  }
  if (!found) return Corruption(fmt::format("{}: no slot with a valid checksum", path));
  durable_hard_state_ = hard_state_;
  return Status::Ok();
}

Status DiskStorage::Impl::ScanSegment(Index first, bool is_last) {
  Segment seg;
  seg.first = first;
  seg.path = PathOf(storage::SegmentFileName(first));
  if (!segments_.empty() && segments_.back().Last() + 1 != first) {
    return Corruption(fmt::format("{}: starts at index {} but the previous segment ends at {}",
                                  seg.path, first, segments_.back().Last()));
  }
  if (int err = fs_->Open(seg.path, O_RDWR, 0, &seg.fd); err != 0)
    return raft::ErrnoStatus("open", seg.path, err);
  segments_.push_back(seg);  // owns the fd from here on (closed by ~Impl)
  Segment& s = segments_.back();
  std::uint64_t size = 0;
  if (int err = fs_->FileSize(s.fd, &size); err != 0) return raft::ErrnoStatus("stat", s.path, err);
  std::string data(size, '\0');
  if (int err = fs_->PreadAll(s.fd, data.data(), size, 0); err != 0)
    return raft::ErrnoStatus("read", s.path, err);
  Term prev_term = segments_.size() >= 2 && !segments_[segments_.size() - 2].records.empty()
                       ? segments_[segments_.size() - 2].records.back().term
                       : 0;
  std::uint64_t off = 0;
  while (off < size) {
    RecordView v;
    RecordParse p = storage::ParseRecord(std::string_view(data).substr(off), &v);
    if (p == RecordParse::kOk && v.sync_mark) {
      // Says the entry records before it were synced; it must follow the last one.
      if (v.index != s.Last() || (!s.records.empty() && v.term != s.records.back().term)) {
        return Corruption(fmt::format(
            "{}: sync mark at byte offset {} names (index {}, term {}), but the entry before it "
            "is index {}: misplaced or stale record",
            s.path, off, v.index, v.term, s.Last()));
      }
      off += v.bytes;
      continue;
    }
    if (p == RecordParse::kOk) {
      if (v.index != s.Last() + 1 || v.term < prev_term) {
        return Corruption(fmt::format(
            "{}: record at byte offset {} is (index {}, term {}), expected index {} and term "
            ">= {}: misplaced or stale record",
            s.path, off, v.index, v.term, s.Last() + 1, prev_term));
      }
      s.records.push_back({off, static_cast<std::uint32_t>(v.bytes), v.term});
      prev_term = v.term;
      off += v.bytes;
      continue;
    }
    std::string where = fmt::format("{}: bad record at byte offset {} (index {}): {}", s.path, off,
                                    s.Last() + 1, storage::RecordParseName(p));
    if (p == RecordParse::kBadVersion) return Corruption(where);
    if (!is_last) return Corruption(where + " in a closed segment");
    // Every fdatasync of new records is followed by a sync mark, so a record that was
    // synced has a valid record after it: damage to synced (perhaps acknowledged) data.
    if (storage::AnyValidRecordFrom(data, off + 1))
      return Corruption(where + "; a valid record follows, so this is not a torn write");
    // Torn tail: the last write before a crash, never synced. Drop it, durably.
    if (int err = fs_->Ftruncate(s.fd, off); err != 0)
      return raft::ErrnoStatus("ftruncate", s.path, err);
    if (int err = fs_->Fdatasync(s.fd); err != 0)
      return raft::ErrnoStatus("fdatasync", s.path, err);
    notes_.push_back(fmt::format("{}: torn write at byte offset {} ({}): truncated {} bytes",
                                 s.path, off, storage::RecordParseName(p), size - off));
    size = off;
  }
  s.bytes = size;
  return Status::Ok();
}

Status DiskStorage::Impl::ReconcileWithSnapshot() {
  const Index s_index = snapshot_.index;
  if (segments_.empty()) {  // a new store, or every segment was covered by the snapshot
    first_index_ = s_index + 1;
    before_first_term_ = snapshot_.term;
    if (Status s = CreateSegment(s_index + 1); !s.ok()) return s;
    return SyncDir();
  }
  const Index phys_first = segments_.front().first;
  if (s_index == 0) {
    if (phys_first != 1)
      return Corruption(fmt::format("{}: log starts at index {} but there is no snapshot",
                                    segments_.front().path, phys_first));
    first_index_ = 1;
    before_first_term_ = 0;
    return Status::Ok();
  }
  if (phys_first > s_index + 1) {
    return Corruption(fmt::format("{}: log starts at index {}, after the snapshot at index {}",
                                  segments_.front().path, phys_first, s_index));
  }
  first_index_ = s_index + 1;
  before_first_term_ = snapshot_.term;
  bool consistent = phys_first == s_index + 1;
  if (!consistent && s_index <= LastIndexLocked()) {
    const Segment& seg = segments_[SegmentOf(s_index)];
    consistent = seg.records[s_index - seg.first].term == snapshot_.term;
  }
  if (consistent) return Status::Ok();
  // An ApplySnapshot was interrupted after snapshot.meta was written: finish it.
  notes_.push_back(fmt::format(
      "log (indexes {}..{}) does not contain the snapshot (index {}, term {}): replaced by "
      "the snapshot, finishing an interrupted ApplySnapshot",
      phys_first, LastIndexLocked(), s_index, snapshot_.term));
  while (!segments_.empty()) {
    if (Status s = RemoveNewestSegment(); !s.ok()) return s;
  }
  if (Status s = CreateSegment(s_index + 1); !s.ok()) return s;
  return SyncDir();
}

}  // namespace raft
