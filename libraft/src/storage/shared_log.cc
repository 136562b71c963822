// SharedLog: writes, reads and reclamation. Open and recovery: shared_log_open.cc.
#include "storage/shared_log.h"

#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>

#include "raft/errno_status.h"
#include "storage/group_codec.h"

namespace raft::storage {

// --- GroupStorage: raft::Storage of one group

HardState GroupStorage::InitialHardState() const {
  base::MutexLock l(&log_->mu_);
  const SharedLog::GroupState* gs = log_->Find(group_);
  return gs != nullptr && gs->log.hard_state ? *gs->log.hard_state : HardState{};
}

Result<std::vector<Entry>> GroupStorage::Entries(Index lo, Index hi,
                                                 std::uint64_t max_bytes) const {
  base::MutexLock l(&log_->mu_);
  const SharedLog::GroupState* gs = log_->Find(group_);
  if (gs == nullptr) return Status(ErrorCode::kUnavailable, "shared log: no such group");
  return log_->ReadEntries(*gs, lo, hi, max_bytes);
}

Result<Term> GroupStorage::TermAt(Index i) const {
  base::MutexLock l(&log_->mu_);
  const SharedLog::GroupState* gs = log_->Find(group_);
  if (gs == nullptr) {
    if (i == 0) return Term{0};
    return Status(ErrorCode::kUnavailable, "shared log: no such group");
  }
  const ReplayedGroup& g = gs->log;
  if (i + 1 < g.first) return Status(ErrorCode::kCompacted, fmt::format("index {} compacted", i));
  if (i > g.last()) return Status(ErrorCode::kUnavailable, fmt::format("index {} not yet", i));
  if (i + 1 == g.first) return g.floor_term;
  return g.entries[i - g.first].term;
}

Index GroupStorage::FirstIndex() const {
  base::MutexLock l(&log_->mu_);
  const SharedLog::GroupState* gs = log_->Find(group_);
  return gs == nullptr ? 1 : gs->log.first;
}

Index GroupStorage::LastIndex() const {
  base::MutexLock l(&log_->mu_);
  const SharedLog::GroupState* gs = log_->Find(group_);
  return gs == nullptr ? 0 : gs->log.last();
}

Result<SnapshotMeta> GroupStorage::Snapshot() const {
  base::MutexLock l(&log_->mu_);
  const SharedLog::GroupState* gs = log_->Find(group_);
  return gs != nullptr && gs->log.snapshot ? *gs->log.snapshot : SnapshotMeta{};
}

// --- SharedLog

SharedLog::SharedLog(std::string dir, const SharedLogOptions& options)
    : dir_(std::move(dir)),
      options_(options),
      fs_(options.file_system != nullptr ? options.file_system : base::PosixFileSystem()) {}

SharedLog::~SharedLog() {
  base::MutexLock l(&mu_);
  for (Segment& s : segments_) {
    if (s.fd >= 0) (void)fs_->Close(s.fd);
  }
  if (lock_fd_ >= 0) (void)fs_->Close(lock_fd_);
}

Status SharedLog::Fail(const char* op, const std::string& path, int err) {
  if (failure_.ok()) failure_ = raft::ErrnoStatus(op, path, err);
  return failure_;
}

SharedLog::GroupState* SharedLog::Find(GroupId g) {
  auto it = groups_.find(g);
  return it == groups_.end() ? nullptr : &it->second;
}

const SharedLog::GroupState* SharedLog::Find(GroupId g) const {
  auto it = groups_.find(g);
  return it == groups_.end() ? nullptr : &it->second;
}

SharedLog::Segment* SharedLog::SegmentBySeq(std::uint64_t seq) {
  if (segments_.empty() || seq < segments_.front().seq) return nullptr;
  const std::uint64_t k = seq - segments_.front().seq;
  return k < segments_.size() ? &segments_[k] : nullptr;
}

std::vector<GroupId> SharedLog::Groups() const {
  base::MutexLock l(&mu_);
  std::vector<GroupId> out;
  for (const auto& [g, gs] : groups_) out.push_back(g);
  return out;
}

GroupStorage* SharedLog::Group(GroupId g) {
  base::MutexLock l(&mu_);
  GroupState* gs = Find(g);
  return gs == nullptr ? nullptr : gs->view.get();
}

Status SharedLog::AddGroup(GroupId g) {
  base::MutexLock l(&mu_);
  return AddGroupLocked(g);
}

Status SharedLog::AddGroupLocked(GroupId g) {
  if (g == 0) return Status(ErrorCode::kInvalidArgument, "shared log: group 0 is reserved");
  if (removed_.count(g))
    return Status(ErrorCode::kInvalidArgument, fmt::format("shared log: group {} was removed", g));
  if (groups_.count(g)) return Status::Ok();
  GroupState& gs = groups_[g];
  gs.view = std::make_unique<GroupStorage>(this, g);
  return Status::Ok();
}

void SharedLog::DropEntriesFrom(GroupState& gs, std::size_t k) {
  for (std::size_t j = k; j < gs.log.entries.size(); ++j) {
    if (Segment* s = SegmentBySeq(gs.log.entries[j].pos.segment)) --s->live_entries;
  }
  if (k < gs.log.entries.size()) gs.log.entries.resize(k);
}

void SharedLog::NoteLatest(GroupState& gs, Kind kind, std::uint64_t seq) {
  gs.latest_seq[kind] = seq;
  gs.has_latest[kind] = true;
}

Status SharedLog::CreateSegment(std::uint64_t seq) {
  Segment s;
  s.seq = seq;
  s.path = dir_ + "/" + fmt::format("{}{:020}.seg", kGroupSegmentPrefix, seq);
  int fd = -1;
  if (int err = Unlocked([&] { return fs_->Open(s.path, O_RDWR | O_CREAT | O_EXCL, 0600, &fd); });
      err != 0)
    return Fail("create", s.path, err);
  s.fd = fd;
  segments_.push_back(s);
  dir_dirty_ = true;
  return Status::Ok();
}

Status SharedLog::WriteRecords(const std::string& records, std::uint64_t* offset) {
  if (!failure_.ok()) return failure_;
  {
    const Segment& open = segments_.back();
    if (open.bytes > 0 && open.bytes + records.size() > options_.segment_bytes_target) {
      // Closed segments are complete on disk before the next one exists (recovery
      // treats a bad record in a closed segment as corruption).
      const int fd = open.fd;
      const std::string path = open.path;
      const std::uint64_t next = open.seq + 1;
      if (dirty_ || mark_unsynced_) {
        if (int err = Unlocked([&] { return fs_->Fdatasync(fd); }); err != 0)
          return Fail("fdatasync", path, err);
        ++syncs_;
        dirty_ = false;
        mark_unsynced_ = false;
      }
      if (Status s = CreateSegment(next); !s.ok()) return s;
    }
  }
  const int fd = segments_.back().fd;
  const std::uint64_t at = segments_.back().bytes;
  const std::string path = segments_.back().path;
  if (int err = Unlocked([&] { return fs_->PwriteAll(fd, records.data(), records.size(), at); });
      err != 0)
    return Fail("write", path, err);
  // Only the writer changes segments_, so the open segment is still the last.
  *offset = at;
  segments_.back().bytes = at + records.size();
  dirty_ = true;
  return Status::Ok();
}

Status SharedLog::Sync() {
  base::MutexLock l(&mu_);
  return SyncLocked();
}

Status SharedLog::SyncLocked() {
  if (!failure_.ok()) return failure_;
  const int fd = segments_.back().fd;
  const std::string path = segments_.back().path;
  if (dirty_) {
    if (int err = Unlocked([&] { return fs_->Fdatasync(fd); }); err != 0)
      return Fail("fdatasync", path, err);
    ++syncs_;
    dirty_ = false;
    // The mark: every record before it is durable (recovery rule 4). Made durable by
    // the next fdatasync of this segment (the next Sync's, or the roll's).
    std::string mark;
    EncodeGroupSyncMark(&mark);
    const std::uint64_t at = segments_.back().bytes;
    if (int err = Unlocked([&] { return fs_->PwriteAll(fd, mark.data(), mark.size(), at); });
        err != 0)
      return Fail("write", path, err);
    segments_.back().bytes = at + mark.size();
    mark_unsynced_ = true;
  }
  if (dir_dirty_) {
    if (int err = Unlocked([&] { return fs_->SyncDir(dir_); }); err != 0)
      return Fail("fsync", dir_, err);
    dir_dirty_ = false;
  }
  return Status::Ok();
}

Status SharedLog::WriteAndSync(const std::string& records) {
  std::uint64_t offset = 0;
  if (Status s = WriteRecords(records, &offset); !s.ok()) return s;
  return SyncLocked();
}

Status SharedLog::Append(GroupId g, const std::vector<Entry>& entries) {
  base::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  if (entries.empty()) return Status::Ok();
  if (Status s = AddGroupLocked(g); !s.ok()) return s;
  GroupState& gs = groups_.at(g);
  ReplayedGroup& log = gs.log;
  // Entries below the first index are skipped, as MemoryStorage and DiskStorage do.
  std::size_t skip = 0;
  while (skip < entries.size() && entries[skip].index < log.first) ++skip;
  if (skip == entries.size()) return Status::Ok();
  const Index from = entries[skip].index;
  if (from > log.last() + 1) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("shared log: group {}: append at {} leaves a gap after {}", g, from,
                              log.last()));
  }
  Term before = from == log.first ? log.floor_term : log.entries[from - 1 - log.first].term;
  std::string buf;
  std::vector<std::uint32_t> sizes;
  for (std::size_t k = skip; k < entries.size(); ++k) {
    const Entry& e = entries[k];
    if (e.index != from + (k - skip) || e.term < before || e.data.size() > kRecordPayloadBytesMax) {
      return Status(ErrorCode::kInvalidArgument,
                    fmt::format("shared log: group {}: entry {} (term {}, {} bytes) does not "
                                "follow its predecessor or is too large",
                                g, e.index, e.term, e.data.size()));
    }
    before = e.term;
    const std::size_t start = buf.size();
    EncodeGroupEntry(g, e, &buf);
    sizes.push_back(static_cast<std::uint32_t>(buf.size() - start));
  }
  std::uint64_t offset = 0;
  if (Status s = WriteRecords(buf, &offset); !s.ok()) return s;
  // Indexed only now that its bytes are written: a reader never sees an entry it cannot
  // read back.
  Segment& seg = segments_.back();
  DropEntriesFrom(gs, from - log.first);  // an overwrite replaces the suffix
  for (std::size_t k = skip; k < entries.size(); ++k) {
    const std::uint32_t bytes = sizes[k - skip];
    log.entries.push_back({entries[k].index, entries[k].term, {seg.seq, offset}, bytes});
    ++seg.live_entries;
    offset += bytes;
  }
  return Status::Ok();
}

Status SharedLog::SetHardState(GroupId g, const HardState& hs) {
  base::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  if (Status s = AddGroupLocked(g); !s.ok()) return s;
  std::string buf;
  EncodeGroupHardState(g, hs, &buf);
  std::uint64_t offset = 0;
  if (Status s = WriteRecords(buf, &offset); !s.ok()) return s;
  GroupState& gs = groups_.at(g);
  gs.log.hard_state = hs;
  NoteLatest(gs, kHardState, segments_.back().seq);
  return Status::Ok();
}

Result<SnapshotMeta> SharedLog::CreateSnapshot(GroupId g, Index index, const ConfState& conf) {
  base::MutexLock l(&mu_);
  GroupState* gs = Find(g);
  if (gs == nullptr) return Status(ErrorCode::kInvalidArgument, "shared log: no such group");
  const ReplayedGroup& log = gs->log;
  if (index + 1 < log.first || index > log.last()) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("shared log: group {}: no entry {} to snapshot at", g, index));
  }
  SnapshotMeta meta;
  meta.index = index;
  meta.term = index + 1 == log.first ? log.floor_term : log.entries[index - log.first].term;
  meta.conf = conf;
  std::string buf;
  EncodeGroupSnapshot(g, meta, /*install=*/false, &buf);
  if (Status s = WriteAndSync(buf); !s.ok()) return s;
  if (!gs->log.snapshot || meta.index >= gs->log.snapshot->index) gs->log.snapshot = meta;
  NoteLatest(*gs, kSnapshot, segments_.back().seq);
  return meta;
}

Status SharedLog::ApplySnapshot(GroupId g, const SnapshotMeta& meta) {
  base::MutexLock l(&mu_);
  if (Status s = AddGroupLocked(g); !s.ok()) return s;
  GroupState& gs = groups_.at(g);
  if (gs.log.snapshot && meta.index < gs.log.snapshot->index) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("shared log: group {}: snapshot {} is older than {}", g, meta.index,
                              gs.log.snapshot->index));
  }
  std::string buf;
  EncodeGroupSnapshot(g, meta, /*install=*/true, &buf);
  if (Status s = WriteAndSync(buf); !s.ok()) return s;
  DropEntriesFrom(gs, 0);
  gs.log.first = meta.index + 1;
  gs.log.floor_term = meta.term;
  gs.log.snapshot = meta;
  NoteLatest(gs, kSnapshot, segments_.back().seq);
  NoteLatest(gs, kFloor, segments_.back().seq);
  return Status::Ok();
}

Status SharedLog::Compact(GroupId g, Index index) {
  base::MutexLock l(&mu_);
  GroupState* gs = Find(g);
  if (gs == nullptr) return Status(ErrorCode::kInvalidArgument, "shared log: no such group");
  ReplayedGroup& log = gs->log;
  if (index + 1 <= log.first) return Status::Ok();
  const Index snap = log.snapshot ? log.snapshot->index : 0;
  if (index > snap || index > log.last()) {
    return Status(ErrorCode::kInvalidArgument,
                  fmt::format("shared log: group {}: compaction to {} beyond the snapshot ({}) "
                              "or the last index ({})",
                              g, index, snap, log.last()));
  }
  const Term term = log.entries[index - log.first].term;
  std::string buf;
  EncodeGroupCompact(g, index, term, &buf);
  if (Status s = WriteAndSync(buf); !s.ok()) return s;
  const std::size_t n = index - log.first + 1;
  for (std::size_t j = 0; j < n; ++j) {
    if (Segment* s = SegmentBySeq(log.entries[j].pos.segment)) --s->live_entries;
  }
  log.entries.erase(log.entries.begin(), log.entries.begin() + static_cast<std::ptrdiff_t>(n));
  log.first = index + 1;
  log.floor_term = term;
  NoteLatest(*gs, kFloor, segments_.back().seq);
  return Status::Ok();
}

Status SharedLog::RemoveGroup(GroupId g) {
  base::MutexLock l(&mu_);
  GroupState* gs = Find(g);
  if (gs == nullptr) return Status(ErrorCode::kInvalidArgument, "shared log: no such group");
  std::string buf;
  EncodeGroupRemoved(g, &buf);
  if (Status s = WriteAndSync(buf); !s.ok()) return s;
  DropEntriesFrom(*gs, 0);
  groups_.erase(g);
  removed_.insert(g);
  return Status::Ok();
}

Result<std::size_t> SharedLog::Reclaim() {
  base::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  std::size_t deleted = 0;
  while (segments_.size() > 1 && segments_.front().live_entries == 0) {
    const std::uint64_t oldest = segments_.front().seq;
    // Live non-entry records in it are written again (order-free in replay); an
    // install's meaning is kept by a snapshot and a compact record.
    std::string buf;
    std::vector<std::pair<GroupState*, Kind>> moved;
    for (auto& [g, gs] : groups_) {
      for (int k = 0; k < kKinds; ++k) {
        if (!gs.has_latest[k] || gs.latest_seq[k] != oldest) continue;
        if (k == kHardState) {
          EncodeGroupHardState(g, *gs.log.hard_state, &buf);
        } else if (k == kSnapshot) {
          EncodeGroupSnapshot(g, *gs.log.snapshot, /*install=*/false, &buf);
        } else {
          EncodeGroupCompact(g, gs.log.first - 1, gs.log.floor_term, &buf);
        }
        moved.emplace_back(&gs, static_cast<Kind>(k));
      }
    }
    if (!buf.empty()) {
      if (Status s = WriteAndSync(buf); !s.ok()) return s;
      for (auto& [gs, k] : moved) NoteLatest(*gs, k, segments_.back().seq);
    }
    // Out of the index first: no reader can reach it (nothing live is in it), then the
    // file goes without the lock.
    const Segment victim = segments_.front();
    segments_.erase(segments_.begin());
    if (int err = Unlocked([&] { return fs_->Close(victim.fd); }); err != 0)
      return Fail("close", victim.path, err);
    if (int err = Unlocked([&] { return fs_->Unlink(victim.path); }); err != 0)
      return Fail("unlink", victim.path, err);
    dir_dirty_ = true;
    ++deleted;
  }
  if (dir_dirty_) {
    if (int err = Unlocked([&] { return fs_->SyncDir(dir_); }); err != 0)
      return Fail("fsync", dir_, err);
    dir_dirty_ = false;
  }
  return deleted;
}

Result<std::vector<Entry>> SharedLog::ReadEntries(const GroupState& gs, Index lo, Index hi,
                                                  std::uint64_t max_bytes) const {
  const ReplayedGroup& log = gs.log;
  if (lo < log.first) return Status(ErrorCode::kCompacted, fmt::format("index {} compacted", lo));
  if (hi > log.last() + 1)
    return Status(ErrorCode::kUnavailable, fmt::format("index {} not yet", hi - 1));
  std::vector<Entry> out;
  std::uint64_t total = 0;
  std::string buf;
  for (Index i = lo; i < hi; ++i) {
    const GroupEntryLoc& loc = log.entries[i - log.first];
    const std::uint64_t k = loc.pos.segment - segments_.front().seq;
    const Segment& seg = segments_[k];
    buf.resize(loc.bytes);
    if (int err = fs_->PreadAll(seg.fd, buf.data(), loc.bytes, loc.pos.offset); err != 0)
      return raft::ErrnoStatus("read", seg.path, err);
    GroupRecord r;
    const RecordParse p = ParseGroupRecord(buf, &r);
    if (p != RecordParse::kOk || !r.entry() || r.index != i || r.term != loc.term) {
      return Status(
          ErrorCode::kCorruption,
          fmt::format("{}: bad record at byte offset {}: {}", seg.path, loc.pos.offset,
                      p != RecordParse::kOk ? RecordParseName(p) : "not the entry indexed"));
    }
    Entry e;
    e.index = r.index;
    e.term = r.term;
    e.type =
        r.type == GroupRecordType::kEntryConfChange ? EntryType::kConfChange : EntryType::kNormal;
    e.data.assign(r.payload);
    total += EntrySizeBytes(e);
    if (!out.empty() && total > max_bytes) break;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace raft::storage
