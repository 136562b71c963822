// BackupDone: the completion of a backup (Node::Backup, Host::Backup), run exactly once.
#pragma once

#include <functional>
#include <utility>

#include "raft/node.h"

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

}  // namespace raft::runtime
