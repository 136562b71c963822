// Backups (Node::Backup; restoring one is an Open step, node_open.cc RestoreIfAsked), and
// restoring one into a state machine outside a Node (RestoreBackup, for a Host's group).
// A backup is a snapshot file (docs/storage-format.md, "Snapshot files") written outside
// the snapshot store: the log, its snapshots and compaction never see it.
#include <fmt/format.h>

#include <filesystem>

#include "runtime/backup_done.h"
#include "runtime/node_impl.h"

namespace raft {

using runtime::BackupDone;

Result<BackupInfo> VerifyBackupFile(const std::string& path) {
  auto header = runtime::SnapshotStore::Validate(path);
  if (!header.ok())
    return Status(header.status().code(),
                  "backup " + path + " is not intact: " + header.status().message());
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  if (ec) return Status(ErrorCode::kIOError, "backup " + path + ": " + ec.message());
  return BackupInfo{header->meta, header->members, bytes};
}

Result<std::uint64_t> runtime::WriteBackupFile(const std::string& path,
                                               const SnapshotHeader& header,
                                               std::unique_ptr<SnapshotSource>* src,
                                               base::FileSystem* fs) {
  auto writer = SnapshotStore::CreateAt(path, header, fs);
  Status s = writer.ok() ? (*src)->WriteTo(writer->get()) : writer.status();
  if (s.ok()) s = (*writer)->Commit();
  src->reset();
  if (!s.ok()) return s;
  return (*writer)->bytes_written();
}

Result<SnapshotMeta> RestoreBackup(const std::string& path, StateMachine* sm) {
  if (auto verified = VerifyBackupFile(path); !verified.ok()) return verified.status();
  auto in = runtime::SnapshotStore::OpenPath(path);
  if (!in.ok()) return Status(in.status().code(), "backup " + path + ": " + in.status().message());
  const SnapshotMeta meta = (*in)->header().meta;
  if (meta.index == 0)
    return Status(ErrorCode::kCorruption, "backup " + path + " names no applied index");
  std::optional<Status> linked;
  if (auto files = (*in)->Files()) linked = sm->RestoreFiles(*files, meta);
  if (Status s = linked ? *linked : sm->Restore(in->get(), meta); !s.ok()) return s;
  return meta;
}

void Node::Impl::Backup(std::string path, std::function<void(Result<BackupInfo>)> done) {
  auto holder = std::make_shared<BackupDone>(std::move(done));
  if (stopping_) return holder->Run(Status(ErrorCode::kShutdown, "node is shutting down"));
  env_->Post(runtime::Lane::kApply, [this, path = std::move(path), holder]() mutable {
    apply_checker_.Check();
    // Here, between two apply tasks, the state machine holds exactly applied_.
    const Index applied = applied_.load();
    if (applied == 0)
      return holder->Run(Status(ErrorCode::kUnavailable, "nothing applied yet to back up"));
    auto src = sm_->PrepareSnapshot();
    if (!src.ok()) return holder->Run(src.status());
    runtime::SnapshotHeader header{SnapshotMeta{applied, applied_term_, applied_conf_}, {}};
    for (const auto& [id, m] : applied_members_) header.members.push_back(m);
    auto job = std::make_shared<std::unique_ptr<SnapshotSource>>(std::move(src).value());
    env_->Post(runtime::Lane::kSnapshot, [this, path = std::move(path), header = std::move(header),
                                          job, holder]() mutable {
      snap_checker_.Check();
      auto start = env_->Now();
      auto bytes = runtime::WriteBackupFile(path, header, job.get(), env_->file_system());
      if (!bytes.ok()) {
        Log(LogLevel::kError, "backup failed",
            {{"path", path}, {"error", bytes.status().ToString()}});
        return holder->Run(bytes.status());
      }
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(env_->Now() - start);
      Log(LogLevel::kInfo, "backup written",
          {{"path", path},
           {"index", std::to_string(header.meta.index)},
           {"bytes", std::to_string(*bytes)},
           {"ms", std::to_string(ms.count())}});
      holder->Run(BackupInfo{header.meta, header.members, *bytes});
    });
  });
}

}  // namespace raft
