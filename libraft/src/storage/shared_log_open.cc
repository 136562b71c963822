// SharedLog: Open and recovery (docs/storage-format.md, "The shared log of a host",
// "Recovery on open").
#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

#include "raft/errno_status.h"
#include "storage/group_codec.h"
#include "storage/shared_log.h"

namespace raft::storage {

namespace {

bool ParseSegmentName(std::string_view name, std::uint64_t* seq) {
  constexpr std::string_view kSuffix = ".seg";
  if (name.size() != kGroupSegmentPrefix.size() + 20 + kSuffix.size()) return false;
  if (!name.starts_with(kGroupSegmentPrefix) || !name.ends_with(kSuffix)) return false;
  std::uint64_t v = 0;
  for (char c : name.substr(kGroupSegmentPrefix.size(), 20)) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  *seq = v;
  return true;
}

// True if a record with a valid CRC starts anywhere in data[from, end).
bool AnyValidGroupRecordFrom(std::string_view data, std::size_t from) {
  for (std::size_t off = from; off + kGroupRecordHeaderBytes <= data.size(); ++off) {
    if (static_cast<std::uint8_t>(data[off + kRecordVersionOffset]) != kGroupRecordVersion)
      continue;
    GroupRecord r;
    const RecordParse p = ParseGroupRecord(data.substr(off), &r);
    if (p == RecordParse::kOk || p == RecordParse::kBadVersion) return true;
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<SharedLog>> SharedLog::Open(const std::string& dir,
                                                   const SharedLogOptions& options) {
  if (options.segment_bytes_target == 0)
    return Status(ErrorCode::kInvalidArgument, "shared log: segment_bytes_target must be > 0");
  std::unique_ptr<SharedLog> log(new SharedLog(dir, options));
  if (Status s = log->Recover(); !s.ok()) return s;
  return log;
}

Status SharedLog::Recover() {
  base::MutexLock l(&mu_);  // nothing can read yet; held for the analysis
  if (int err = fs_->MkdirAll(dir_); err != 0) return raft::ErrnoStatus("mkdir", dir_, err);
  const std::string lock = dir_ + "/LOCK";
  if (int err = fs_->Open(lock, O_RDWR | O_CREAT, 0600, &lock_fd_); err != 0)
    return raft::ErrnoStatus("open", lock, err);
  if (int err = fs_->LockExclusive(lock_fd_); err != 0) {
    if (err == EWOULDBLOCK)
      return Status(ErrorCode::kBusy, "shared log: " + dir_ + " is open in another process");
    return raft::ErrnoStatus("flock", lock, err);
  }
  std::vector<std::string> names;
  if (int err = fs_->ListDir(dir_, &names); err != 0) return raft::ErrnoStatus("list", dir_, err);
  std::vector<std::uint64_t> seqs;
  for (const std::string& name : names) {
    std::uint64_t seq = 0;
    if (ParseSegmentName(name, &seq)) {
      seqs.push_back(seq);
    } else if (name.ends_with(".tmp")) {
      if (int err = fs_->Unlink(dir_ + "/" + name); err != 0)
        return raft::ErrnoStatus("unlink", dir_ + "/" + name, err);
    } else if (name != "LOCK") {
      notes_.push_back("ignored " + name);
    }
  }
  std::sort(seqs.begin(), seqs.end());
  for (std::size_t k = 1; k < seqs.size(); ++k) {
    if (seqs[k] != seqs[k - 1] + 1) {
      return Status(ErrorCode::kCorruption,
                    fmt::format("shared log: {}: segment {} is missing", dir_, seqs[k - 1] + 1));
    }
  }

  GroupLogReplay replay;
  for (std::size_t k = 0; k < seqs.size(); ++k) {
    Segment s;
    s.seq = seqs[k];
    s.path = dir_ + "/" + fmt::format("{}{:020}.seg", kGroupSegmentPrefix, s.seq);
    if (int err = fs_->Open(s.path, O_RDWR, 0600, &s.fd); err != 0)
      return raft::ErrnoStatus("open", s.path, err);
    segments_.push_back(s);
    if (Status st = ScanSegment(segments_.back(), k + 1 == seqs.size(), &replay); !st.ok())
      return st;
  }
  Result<std::map<GroupId, ReplayedGroup>> groups = replay.Finish();
  if (!groups.ok()) return groups.status();
  removed_ = replay.removed();
  for (auto& [g, rg] : *groups) {
    GroupState& gs = groups_[g];
    gs.view = std::make_unique<GroupStorage>(this, g);
    for (const GroupEntryLoc& loc : rg.entries) ++SegmentBySeq(loc.pos.segment)->live_entries;
    const auto latest = scan_latest_.find(g);
    if (latest != scan_latest_.end()) {
      for (int kind = 0; kind < kKinds; ++kind) {
        gs.has_latest[kind] = latest->second.has[kind];
        gs.latest_seq[kind] = latest->second.seq[kind];
      }
    }
    gs.log = std::move(rg);
  }
  scan_latest_.clear();

  if (segments_.empty()) {
    if (Status s = CreateSegment(1); !s.ok()) return s;
  }
  // Everything served from now on must be durable: a previous process may have crashed
  // with writes in the page cache. Then a mark after the last record, as Sync writes.
  Segment& last = segments_.back();
  // What we scanned is the page cache's view, which after a failed fdatasync may be on
  // no disk (a previous process's writes, or recovery's truncation of a torn tail, whose
  // sync failed): written again before the sync, so that the disk holds what we serve
  // (storage-format.md, "Recovery on open", rule 8; found by the simulator over hosts,
  // seed 114951 of `raft_nodesim --hosts 4`). Only the last segment: a roll syncs the
  // closed one first, and a failed sync fails the log before the next segment exists.
  if (int err = fs_->RewriteAsRead(last.fd, last.bytes); err != 0)
    return Fail("rewrite", last.path, err);
  if (int err = fs_->Fdatasync(last.fd); err != 0) return Fail("fdatasync", last.path, err);
  if (int err = fs_->SyncDir(dir_); err != 0) return Fail("fsync", dir_, err);
  dir_dirty_ = false;
  if (!scan_last_is_mark_ && last.bytes > 0) {
    std::string mark;
    EncodeGroupSyncMark(&mark);
    if (int err = fs_->PwriteAll(last.fd, mark.data(), mark.size(), last.bytes); err != 0)
      return Fail("write", last.path, err);
    last.bytes += mark.size();
    mark_unsynced_ = true;
  }
  return Status::Ok();
}

Status SharedLog::ScanSegment(Segment& seg, bool is_last, GroupLogReplay* replay) {
  std::uint64_t size = 0;
  if (int err = fs_->FileSize(seg.fd, &size); err != 0)
    return raft::ErrnoStatus("stat", seg.path, err);
  std::string data(size, '\0');
  if (size > 0) {
    if (int err = fs_->PreadAll(seg.fd, data.data(), size, 0); err != 0)
      return raft::ErrnoStatus("read", seg.path, err);
  }
  std::size_t off = 0;
  scan_last_is_mark_ = false;
  while (off < data.size()) {
    GroupRecord r;
    const RecordParse p = ParseGroupRecord(std::string_view(data).substr(off), &r);
    if (p != RecordParse::kOk) {
      const bool torn =
          is_last && p != RecordParse::kBadVersion && !AnyValidGroupRecordFrom(data, off + 1);
      if (!torn) {
        return Status(ErrorCode::kCorruption, fmt::format("{}: bad record at byte offset {}: {}",
                                                          seg.path, off, RecordParseName(p)));
      }
      if (int err = fs_->Ftruncate(seg.fd, off); err != 0) return Fail("ftruncate", seg.path, err);
      if (int err = fs_->Fdatasync(seg.fd); err != 0) return Fail("fdatasync", seg.path, err);
      notes_.push_back(fmt::format("{}: dropped a torn tail of {} bytes at offset {}", seg.path,
                                   data.size() - off, off));
      data.resize(off);
      break;
    }
    if (Status s = replay->Add(r, {seg.seq, off}); !s.ok()) return s;
    // Where each group's latest non-entry records are, by the replay's rules.
    if (!r.entry() && r.type != GroupRecordType::kSyncMark && r.type != GroupRecordType::kRemoved) {
      ScanLatest& l = scan_latest_[r.group];
      auto note = [&](Kind k, bool newer) {
        if (newer) {
          l.has[k] = true;
          l.seq[k] = seg.seq;
        }
      };
      if (r.type == GroupRecordType::kHardState) note(kHardState, true);
      if (r.type == GroupRecordType::kSnapshot || r.type == GroupRecordType::kInstall) {
        note(kSnapshot, r.index >= l.snapshot_index);
        l.snapshot_index = std::max(l.snapshot_index, r.index);
      }
      if (r.type == GroupRecordType::kCompact || r.type == GroupRecordType::kInstall) {
        note(kFloor, r.index >= l.floor_index);
        l.floor_index = std::max(l.floor_index, r.index);
      }
    }
    scan_last_is_mark_ = r.type == GroupRecordType::kSyncMark;
    off += r.bytes;
  }
  seg.bytes = data.size();
  return Status::Ok();
}

}  // namespace raft::storage
