// Snapshots of hosted groups (docs/multi-raft.md, "Group snapshots"): the policy and the
// freezing on the apply lane, the writing on the snapshot lane, the record, compaction
// and reclamation on the disk lane, the streams to and from peers on the io lane, the
// restore of a received or recovered snapshot on the apply lane.
#include <cerrno>
#include <limits>

#include "base/assert.h"
#include "base/file_system.h"
#include "core/mutation.h"
#include "raft/errno_status.h"
#include "runtime/backup_done.h"
#include "runtime/host_impl.h"

namespace raft {

namespace {

std::string GroupDir(const std::string& data_dir, GroupId g) {
  return data_dir + "/groups/" + std::to_string(g);
}

}  // namespace

Result<std::shared_ptr<runtime::SnapshotStore>> Host::Impl::OpenStore(GroupId g) {
  base::FileSystem* fs = env_->file_system();
  const std::string groups = opts_.data_dir + "/groups";
  // Each directory made durable in its parent when created (a crash must not lose the
  // store a recorded snapshot lives in: found by host_nodesim_test).
  for (const auto& [dir, parent] :
       {std::pair{groups, opts_.data_dir}, std::pair{GroupDir(opts_.data_dir, g), groups}}) {
    const int err = fs->Mkdir(dir);
    if (err == EEXIST) continue;  // a restart
    if (err != 0) return ErrnoStatus("mkdir", dir, err);
    if (mutation::Active(mutation::Kind::kSkipSnapshotDirSync)) continue;
    if (int e = fs->SyncDir(parent); e != 0) return ErrnoStatus("fsync", parent, e);
  }
  auto store = runtime::SnapshotStore::Open(GroupDir(opts_.data_dir, g) + "/snap", fs);
  if (!store.ok()) return store.status();
  return std::shared_ptr<runtime::SnapshotStore>(std::move(store).value());
}

void Host::Impl::RemoveStore(Group& group) {
  base::FileSystem* fs = env_->file_system();
  // Every snapshot below "infinity": all of them (views already open keep their files).
  group.snaps->Cleanup(std::numeric_limits<Index>::max(), 0);
  (void)fs->Rmdir(group.snaps->dir());  // fails harmlessly if a receive left a file
  (void)fs->Rmdir(GroupDir(opts_.data_dir, group.id));
}

// ---------------------------------------------------------------- apply lane

Result<Index> Host::Impl::RecoverGroup(Group& group) {
  Index sm_applied = group.sm->AppliedIndex();
  const storage::GroupStorage* log = log_->Group(group.id);
  if (log == nullptr) return sm_applied;  // new to this process: nothing to recover
  auto snap = log->Snapshot();
  if (!snap.ok()) return snap.status();
  group.applied_conf = snap->conf;
  group.applied_term = snap->term;
  group.last_snapshot_index = snap->index;
  if (snap->index > sm_applied) {
    if (Status s = RestoreStateMachine(group, *snap); !s.ok())
      return Status(ErrorCode::kCorruption,
                    "group " + std::to_string(group.id) + ": restoring the log's snapshot " +
                        std::to_string(snap->index) + " failed: " + s.ToString());
    sm_applied = snap->index;
    Log(LogLevel::kInfo, "state machine restored from snapshot",
        {{"group", std::to_string(group.id)}, {"index", std::to_string(snap->index)}});
  }
  // The term and membership as of sm_applied: the committed entries up to it, which the
  // state machine will not see again.
  const Index last = std::min(sm_applied, log->LastIndex());
  for (Index lo = snap->index + 1; lo <= last;) {
    auto ents = log->Entries(lo, last + 1, 16 << 20);
    if (!ents.ok()) return ents.status();
    RAFT_ASSERT(!ents->empty());
    for (const Entry& e : *ents) TrackApplied(group, e);
    lo += ents->size();
  }
  return sm_applied;
}

void Host::Impl::TrackApplied(Group& group, const Entry& e) {
  group.applied_term = e.term;
  ConfChange cc;
  if (e.type != EntryType::kConfChange || !DecodeConfChange(e.data, &cc)) return;
  auto next = ApplyConfChange(group.applied_conf, cc);
  if (next.ok()) group.applied_conf = std::move(next).value();
}

Status Host::Impl::RestoreStateMachine(Group& group, const SnapshotMeta& meta) {
  auto reader = group.snaps->OpenReader(meta.index, meta.term);
  if (!reader.ok()) return reader.status();
  if (auto files = (*reader)->Files())
    if (std::optional<Status> s = group.sm->RestoreFiles(*files, meta)) return *s;
  return group.sm->Restore(reader->get(), meta);
}

void Host::Impl::RestoreGroup(Group& group, const SnapshotMeta& meta) {
  const auto start = env_->Now();
  Status s = mutation::Active(mutation::Kind::kSkipRestore) ? Status::Ok()
                                                            : RestoreStateMachine(group, meta);
  if (!s.ok()) {
    // The state machine is in an unknown state: nothing may be applied on top of it.
    Log(LogLevel::kError, "snapshot restore failed; aborting",
        {{"group", std::to_string(group.id)}, {"error", s.ToString()}});
    std::abort();
  }
  group.applied = meta.index;
  group.applied_term = meta.term;
  group.applied_conf = meta.conf;
  group.last_snapshot_index = meta.index;
  group.snapshot_index = meta.index;
  // The installed snapshot is the log's now: older files, and receives never installed,
  // go (SnapshotStore::Cleanup never removes the log's own).
  group.snaps->Cleanup(meta.index, meta.term);
  std::vector<runtime::SharedCallback> lost;
  {
    base::MutexLock l(&group.pending_mu);
    for (auto it = group.proposals.begin();
         it != group.proposals.end() && it->first <= meta.index;) {
      lost.push_back(it->second.cb);
      it = group.proposals.erase(it);
    }
  }
  for (auto& cb : lost)
    cb->Run(Status(ErrorCode::kTimeout, "state replaced by a snapshot; the outcome is unknown"));
  {
    base::MutexLock l(&status_mu_);
    ++metrics_.snapshots_installed;
  }
  Log(LogLevel::kInfo, "snapshot installed",
      {{"group", std::to_string(group.id)},
       {"index", std::to_string(meta.index)},
       {"ms",
        std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(env_->Now() - start).count())}});
}

void Host::Impl::MaybeSnapshot(const std::shared_ptr<Group>& group) {
  const Index applied = group->applied.load();
  if (opts_.snapshot_entries == 0 || group->snapshot_running.load() ||
      applied < group->last_snapshot_index + opts_.snapshot_entries)
    return;
  auto src = group->sm->PrepareSnapshot();
  if (!src.ok()) {
    Log(LogLevel::kError, "cannot prepare snapshot",
        {{"group", std::to_string(group->id)}, {"error", src.status().ToString()}});
    // Tried again after another snapshot_entries, not at every apply meanwhile.
    group->last_snapshot_index = applied;
    return;
  }
  const SnapshotMeta meta{applied, group->applied_term, group->applied_conf};
  group->snapshot_running = true;
  group->last_snapshot_index = applied;
  auto job = std::make_shared<std::unique_ptr<SnapshotSource>>(std::move(src).value());
  env_->Post(runtime::Lane::kSnapshot, [this, group, meta, job] {
    snap_checker_.Check();
    SnapshotJob(group, meta, std::move(*job));
  });
}

void Host::Impl::Backup(GroupId g, std::string path, std::function<void(Result<BackupInfo>)> done) {
  auto holder = std::make_shared<runtime::BackupDone>(std::move(done));
  if (stopping_) return holder->Run(Status(ErrorCode::kShutdown, "the host is stopping"));
  env_->Post(runtime::Lane::kIo, [this, g, path = std::move(path), holder]() mutable {
    io_checker_.Check();
    std::shared_ptr<Group> group = Find(g);
    if (group == nullptr)
      return holder->Run(
          Status(ErrorCode::kInvalidArgument, "group " + std::to_string(g) + " is not hosted"));
    env_->Post(runtime::Lane::kApply, [this, group, path = std::move(path), holder]() mutable {
      apply_checker_.Check();
      // Here, between two apply tasks, the state machine holds exactly `applied`.
      const Index applied = group->applied.load();
      if (group->removed) return holder->Run(Status(ErrorCode::kShutdown, "the group was removed"));
      if (applied == 0)
        return holder->Run(Status(ErrorCode::kUnavailable, "nothing applied yet to back up"));
      auto src = group->sm->PrepareSnapshot();
      if (!src.ok()) return holder->Run(src.status());
      runtime::SnapshotHeader header{
          SnapshotMeta{applied, group->applied_term, group->applied_conf}, {}};
      auto job = std::make_shared<std::unique_ptr<SnapshotSource>>(std::move(src).value());
      env_->Post(runtime::Lane::kSnapshot, [this, g = group->id, path = std::move(path),
                                            header = std::move(header), job, holder] {
        snap_checker_.Check();
        auto bytes = runtime::WriteBackupFile(path, header, job.get(), env_->file_system());
        if (!bytes.ok()) {
          Log(LogLevel::kError, "backup failed",
              {{"group", std::to_string(g)}, {"path", path}, {"error", bytes.status().ToString()}});
          return holder->Run(bytes.status());
        }
        Log(LogLevel::kInfo, "backup written",
            {{"group", std::to_string(g)},
             {"path", path},
             {"index", std::to_string(header.meta.index)},
             {"bytes", std::to_string(*bytes)}});
        holder->Run(BackupInfo{header.meta, {}, *bytes});
      });
    });
  });
}

// ---------------------------------------------------------------- snapshot lane

void Host::Impl::SnapshotJob(const std::shared_ptr<Group>& group, const SnapshotMeta& meta,
                             std::unique_ptr<SnapshotSource> src) {
  const auto start = env_->Now();
  Status s = group->removed ? Status(ErrorCode::kShutdown, "the group was removed")
                            : WriteSnapshot(*group, meta, std::move(src));
  if (!s.ok()) {
    if (!group->removed)
      Log(LogLevel::kError, "snapshot failed",
          {{"group", std::to_string(group->id)},
           {"index", std::to_string(meta.index)},
           {"error", s.ToString()}});
    group->snapshot_running = false;
    return;
  }
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(env_->Now() - start).count());
  env_->Post(runtime::Lane::kDisk, [this, group, meta, ms] {
    disk_checker_.Check();
    RecordSnapshot(group, meta, ms);
  });
}

Status Host::Impl::WriteSnapshot(Group& group, const SnapshotMeta& meta,
                                 std::unique_ptr<SnapshotSource> src) {
  // A host's snapshots name no members: its members are processes, known by their ids.
  runtime::SnapshotHeader header{meta, {}};
  // The source's files become the snapshot: no copy of the state (docs/runtime.md,
  // "Linked snapshots").
  if (std::optional<SnapshotFiles> files = src->ReleaseFiles())
    return group.snaps->CreateLinked(header, std::move(*files));
  auto writer = group.snaps->Create(header);
  if (!writer.ok()) return writer.status();
  if (Status s = src->WriteTo(writer->get()); !s.ok()) return s;
  return (*writer)->Commit();
}

// ---------------------------------------------------------------- disk lane

void Host::Impl::RecordSnapshot(const std::shared_ptr<Group>& group, const SnapshotMeta& meta,
                                std::uint64_t ms) {
  // Removed meanwhile: its records are gone from the log (RemoveGroup ran on this lane
  // before), and RemoveStore took its files.
  const storage::GroupStorage* log = group->removed ? nullptr : log_->Group(group->id);
  if (log == nullptr || !log_->failure().ok()) {
    group->snapshot_running = false;
    return;
  }
  // The log may hold a newer snapshot already (an install overtook this one): then only
  // the files change, and Cleanup below sorts them out.
  auto current = log->Snapshot();
  const bool recorded = current.ok() && current->index >= meta.index;
  auto r = recorded ? std::move(current) : log_->CreateSnapshot(group->id, meta.index, meta.conf);
  Status s = r.status();
  const Index keep = opts_.snapshot_trailing_entries;
  const Index compact_to = meta.index > keep ? meta.index - keep : 0;
  if (s.ok() && compact_to + 1 > log->FirstIndex()) s = log_->Compact(group->id, compact_to);
  Result<std::size_t> reclaimed = std::size_t{0};
  if (s.ok()) reclaimed = log_->Reclaim();
  if (s.ok()) s = reclaimed.status();
  if (!s.ok()) {
    // The log's write errors are sticky: every group is stuck, as after a failed round.
    env_->Post(runtime::Lane::kIo, [this, s] {
      io_checker_.Check();
      Fail(s);
    });
    group->snapshot_running = false;
    return;
  }
  group->snaps->Cleanup(r->index, r->term);
  group->snapshot_index = r->index;
  Log(LogLevel::kInfo, "snapshot taken",
      {{"group", std::to_string(group->id)},
       {"index", std::to_string(meta.index)},
       {"compacted_to", std::to_string(compact_to)},
       {"segments_reclaimed", std::to_string(*reclaimed)},
       {"ms", std::to_string(ms)}});
  {
    base::MutexLock l(&status_mu_);
    ++metrics_.snapshots_taken;
    metrics_.segments_reclaimed += *reclaimed;
  }
  group->snapshot_running = false;
}

// ---------------------------------------------------------------- io lane

void Host::Impl::SendSnapshot(const wire::GroupMessage& gm) {
  std::shared_ptr<Group> group = Find(gm.group);
  if (group == nullptr) return;  // removed since the core produced it
  transport_->SendGroupSnapshot(gm.group, gm.message, group->snaps.get());
}

void Host::Impl::OnGroupSnapshotSent(NodeId peer, std::uint64_t group, bool ok) {
  io_checker_.Check();
  if (ok) {
    base::MutexLock l(&status_mu_);
    ++metrics_.snapshots_sent;
  }
  if (stopping_ || failed_) return;
  // A failed stream puts the follower back to probing: its core offers the snapshot
  // again once the follower answers.
  (void)core_.With(group, [&](RawNode& core) { core.ReportSnapshot(peer, ok); });
  SchedulePump();
}

Result<runtime::SnapshotStore*> Host::Impl::AcceptGroupSnapshot(NodeId peer, std::uint64_t g) {
  io_checker_.Check();
  if (stopping_ || failed_) return Status(ErrorCode::kShutdown, "the host is stopping");
  std::shared_ptr<Group> group = Find(g);
  const RawNode* core = core_.Get(g);
  if (group == nullptr || core == nullptr)
    return Status(ErrorCode::kInvalidArgument,
                  "a snapshot of group " + std::to_string(g) + ", not hosted here");
  // Only from the leader this replica follows (security review F-1 d, as a Node): a
  // leader sends a snapshot to a follower that answered its appends, so it is known.
  if (core->leader() != peer)
    return Status(ErrorCode::kInvalidArgument,
                  "a snapshot of group " + std::to_string(g) + " from " + std::to_string(peer) +
                      ", which is not the leader this replica follows");
  return group->snaps.get();
}

}  // namespace raft
