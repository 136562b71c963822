// Linked snapshots: a directory of a state machine's immutable files plus a manifest,
// read as the bytes of the equivalent .snap file (docs/runtime.md, "Linked snapshots").
// Internal to SnapshotStore (snapshot_store.cc, snapshot_linked.cc).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/mutex.h"
#include "base/thread_annotations.h"
#include "raft/status.h"
#include "runtime/snapshot_store.h"

namespace raft::base {
class FileSystem;
}  // namespace raft::base

namespace raft::runtime {

// The .snap format's pieces, shared by both forms (defined in snapshot_store.cc).
namespace snapfmt {
// header := "RSNP" version pad meta_len meta meta_crc, for `h`.
std::string EncodeHead(const SnapshotHeader& h);
// Checks and decodes exactly one header; errors name `path`.
Status ParseHead(std::string_view head, const std::string& path, SnapshotHeader* h);
// trailer := body_len:u64 body_crc:u32 "RSNE".
std::string EncodeTrailer(std::uint64_t body_len, std::uint32_t body_crc);
}  // namespace snapfmt

// Removes `path`: a file, or a directory with the files in it (not deeper). 0 or errno;
// ENOENT when there is nothing to remove.
int RemoveTree(base::FileSystem* fs, const std::string& path);

struct Manifest {
  struct Piece {
    bool file = false;       // a whole file of the directory, else literal bytes
    std::string data;        // the bytes, or the file's name
    std::uint64_t size = 0;  // bytes in the body
  };
  std::string head;  // the .snap header, byte for byte
  SnapshotHeader header;
  std::vector<Piece> pieces;
  std::uint64_t body_len = 0;
  std::uint32_t body_crc = 0;
};

std::string EncodeManifest(const Manifest& m);
// Checks the CRC, the grammar, the head, the names and that the sizes add up to body_len.
Status DecodeManifest(std::string_view in, const std::string& path, Manifest* m);
// A plain name a piece may have: 1..255 bytes, no '/' or NUL, not ".", "..", "manifest".
bool ValidPieceName(std::string_view name);

// The pins of linked snapshot directories: shared by the store and every LinkedFile, so
// that whichever of them lets go last removes a directory Cleanup has doomed. Thread-safe.
struct LinkedPins {
  explicit LinkedPins(base::FileSystem* f) : fs(f) {}
  // False if `dir` is doomed (being or to be removed): treat it as gone.
  bool Pin(const std::string& dir);
  // The last unpin of a doomed directory removes it.
  void Unpin(const std::string& dir);
  // Removes `dir` now if unpinned, else when its last pin goes.
  void RemoveOrDoom(const std::string& dir);

  // The CRC32C of each file of the newest linked snapshot, by FileSystem::FileKey, so
  // that the next one reads only its new files (a RocksDB checkpoint shares most of its
  // SSTs with the previous one). Valid only while that snapshot's directory exists: its
  // links keep those inodes from being reused, so a key found while it is not doomed
  // names the same bytes. Cleared when it is doomed.
  bool CachedCrc(const std::string& key, std::uint32_t* crc);
  void SetCrcs(const std::string& dir, std::map<std::string, std::uint32_t> crcs);

  base::FileSystem* const fs;
  base::Mutex mu;
  std::map<std::string, int> refs RAFT_GUARDED_BY(mu);
  std::set<std::string> doomed RAFT_GUARDED_BY(mu);
  std::string crcs_dir RAFT_GUARDED_BY(mu);
  std::map<std::string, std::uint32_t> crcs RAFT_GUARDED_BY(mu);
};

// An open linked snapshot: the virtual .snap file head + body pieces + trailer. Opens one
// piece's file at a time, as reads reach it; holds a pin on the directory for its whole
// life. One thread at a time.
class LinkedFile {
 public:
  // `dir` must be pinned already; the destructor unpins it.
  LinkedFile(std::shared_ptr<LinkedPins> pins, std::string dir, Manifest m);
  ~LinkedFile();
  LinkedFile(const LinkedFile&) = delete;
  LinkedFile& operator=(const LinkedFile&) = delete;

  const SnapshotHeader& header() const { return header_; }
  std::uint64_t size() const { return size_; }
  std::uint64_t body_start() const { return body_start_; }
  std::uint64_t body_len() const { return body_len_; }
  std::uint32_t body_crc() const { return body_crc_; }
  const std::string& dir() const { return dir_; }
  // Up to n bytes at `offset` into p; *got is less than n only where the virtual file
  // ends. A file shorter or longer than its manifest says is kCorruption.
  Status ReadAt(std::uint64_t offset, char* p, std::size_t n, std::size_t* got);

 private:
  struct Segment {
    std::uint64_t start = 0, size = 0;
    std::string bytes;  // literal
    std::string file;   // else: a file of dir_
  };
  Status OpenSegmentFile(std::size_t seg);

  std::shared_ptr<LinkedPins> pins_;
  std::string dir_;
  SnapshotHeader header_;
  std::vector<Segment> segs_;  // head, pieces, trailer; by start
  std::uint64_t size_ = 0, body_start_ = 0, body_len_ = 0;
  std::uint32_t body_crc_ = 0;
  int fd_ = -1;
  std::size_t fd_seg_ = 0;  // the segment fd_ belongs to (when fd_ >= 0)
};

}  // namespace raft::runtime
