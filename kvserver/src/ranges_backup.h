// Ranges-mode backups (docs/state-format.md, "Ranges backups"): every data range's
// raft::Host::Backup file with its descriptor, in one file. File work only, bounded
// memory (a buffer of 1 MiB, whatever the ranges' sizes); any thread.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "raft/status.h"
#include "raft/types.h"
#include "range_map.h"

namespace kv {

inline constexpr std::string_view kRangesBackupMagic = "kvranges";
inline constexpr std::size_t kRangesBackupMaxParts = 1024;

struct RangesBackupPart {
  RangeDescriptor range;
  std::string file;       // the range's raft::Host::Backup file
  raft::Index index = 0;  // the applied index it holds
};

// Whether the file at `path` begins with kRangesBackupMagic (false when unreadable).
bool IsRangesBackup(const std::string& path);

// Writes a ranges backup part by part (RangesBackupPart's file copied as it is added, so
// that the caller may remove it then): `path`.tmp, fsynced and renamed by Commit; removed
// if the writer is destroyed before. One thread.
class RangesBackupWriter {
 public:
  // `nparts` parts will follow (1 to kRangesBackupMaxParts: kInvalidArgument else).
  static raft::Result<std::unique_ptr<RangesBackupWriter>> Create(const std::string& path,
                                                                  std::size_t nparts);
  ~RangesBackupWriter();
  RangesBackupWriter(const RangesBackupWriter&) = delete;
  RangesBackupWriter& operator=(const RangesBackupWriter&) = delete;
  // Appends range `range`'s backup `file` (kIOError naming what failed).
  raft::Status Add(const RangeDescriptor& range, const std::string& file);
  // Once the announced parts are in, in key order and covering the key space once
  // (kInvalidArgument else): makes the file durable under `path`; returns its size.
  raft::Result<std::uint64_t> Commit();

 private:
  RangesBackupWriter(std::string path, std::size_t nparts)
      : path_(std::move(path)), tmp_(path_ + ".tmp"), nparts_(nparts) {}
  raft::Status Fail(const std::string& what);
  const std::string path_, tmp_;
  const std::size_t nparts_;
  std::ofstream out_;
  std::vector<RangesBackupPart> parts_;  // their descriptors, for Commit's check
  bool committed_ = false;
};

// Writes `parts` (in key order, covering the key space once: kInvalidArgument else) as
// a ranges backup at `path`: `path`.tmp, fsynced, renamed (its directory fsynced). The
// parts' files are copied, not moved. Returns the file's size.
raft::Result<std::uint64_t> WriteRangesBackup(const std::string& path,
                                              const std::vector<RangesBackupPart>& parts);

// Checks the ranges backup at `path` and copies each part's backup to
// `dir`/<range id>.backup (`dir` must exist), each checked end to end
// (raft::VerifyBackupFile, which gives `index`). kCorruption naming `path` and what is
// wrong (see the format's rules), kIOError when a file cannot be read or written.
// `each`, when given, is called with every part once it is copied and checked, in key
// order, and may consume its file (restore it, remove it): then only one part is on disk
// at a time. Its error ends the read. The spans' cover of the key space is checked last,
// after every call.
raft::Result<std::vector<RangesBackupPart>> ExtractRangesBackup(
    const std::string& path, const std::string& dir,
    const std::function<raft::Status(const RangesBackupPart&)>& each = nullptr);

// ExtractRangesBackup into a temporary directory beside `path` (one part at a time),
// removed afterwards: the check of a backup a client downloaded (kvctl snapshot save).
raft::Result<std::vector<RangesBackupPart>> VerifyRangesBackup(const std::string& path);

}  // namespace kv
