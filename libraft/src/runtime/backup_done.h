// What Node::Backup and Host::Backup share: BackupDone, the completion run exactly once,
// and WriteBackupFile, the file written on the snapshot lane.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "raft/node.h"
#include "runtime/snapshot_store.h"

namespace raft::runtime {

// Runs `done` once: with the result, or with kShutdown when every copy of the holder is
// destroyed first (a lane that stopped drops the work posted to it, never running it).
class BackupDone {
 public:
  explicit BackupDone(std::function<void(Result<BackupInfo>)> done) : done_(std::move(done)) {}
  ~BackupDone() {
    if (done_) done_(Status(ErrorCode::kShutdown, "stopped before the backup was written"));
  }
  BackupDone(const BackupDone&) = delete;
  BackupDone& operator=(const BackupDone&) = delete;
  void Run(Result<BackupInfo> r) {
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(r));
  }

 private:
  std::function<void(Result<BackupInfo>)> done_;
};

// Writes `*src` (then released) as a backup file at `path` with `header`
// (SnapshotStore::CreateAt: `path`.tmp, fsynced, renamed; removed on failure). Returns
// the file's size. The snapshot lane.
Result<std::uint64_t> WriteBackupFile(const std::string& path, const SnapshotHeader& header,
                                      std::unique_ptr<SnapshotSource>* src, base::FileSystem* fs);

}  // namespace raft::runtime
