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
inline constexpr std::size_t kHeadFixedBytes = 4 + 1 + 3 + 4;  // magic version pad meta_len
inline constexpr std::size_t kTrailerBytes = 8 + 4 + 4;
// The whole header's length, from its first kHeadFixedBytes (magic and version checked).
Result<std::size_t> HeadBytes(std::string_view fixed, const std::string& path);
// Exactly kTrailerBytes; kCorruption naming `path` when the magic is wrong.
Status ParseTrailer(std::string_view trailer, const std::string& path, std::uint64_t* body_len,
                    std::uint32_t* body_crc);
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

// Makes the linked snapshot in `tmp` (its files complete and fsynced) durable under
// `final_dir`: writes and fsyncs `m` as its manifest, fsyncs `tmp`, renames it and
// fsyncs `store_dir`. On failure `tmp` is left for the caller to remove.
Status CommitLinkedDir(base::FileSystem* fs, const std::string& tmp, const std::string& final_dir,
                       const std::string& store_dir, const Manifest& m);

// The layout form of a linked snapshot's stream (docs/runtime.md, "Linked snapshots";
// wire protocol version 3): the layout, then the bytes of the equivalent .snap file.
//
//   layout := "RSLY" len:u32 layout_body[len] crc:u32        crc: CRC32C of layout_body
//   layout_body := version:u8(=1) pieces_n:u32 piece{pieces_n}
//   piece  := kind:u8 size:u64 (name_len:u32 name[name_len] when kind = 1)
//
// It names the body's pieces in order (0: literal bytes, 1: a whole file of that name),
// so that a receiver writes each file of the body to a file of its own and keeps the
// snapshot linked: no second copy when the state machine restores from it.
std::string EncodeLayout(const Manifest& m);
inline constexpr std::size_t kLayoutFixedBytes = 8;  // magic len

// A receive in layout form: the file pieces go to files of their own in `dir` (an
// empty directory the caller made), everything else (layout, header, literal pieces,
// trailer) is held in memory, bounded by the manifest limit. Errors are returned at the
// first byte that breaks the grammar. One thread at a time.
class LayoutReceive {
 public:
  LayoutReceive(base::FileSystem* fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}
  ~LayoutReceive();
  LayoutReceive(const LayoutReceive&) = delete;
  LayoutReceive& operator=(const LayoutReceive&) = delete;

  // The stream's next bytes, in order.
  Status Write(std::string_view bytes);
  // After the last byte: checks that the stream ended with the trailer, that the body's
  // length and CRC match it and that the header names (index, term); fsyncs every file.
  // Fills the manifest of the received snapshot and each file's CRC by FileKey (for
  // LinkedPins::SetCrcs).
  Status Finish(Index index, Term term, Manifest* m, std::map<std::string, std::uint32_t>* crcs);

 private:
  enum class Stage { kLayoutFixed, kLayout, kHead, kBody, kTrailer, kDone };
  // Appends to buf_ up to need_ bytes; true when buf_ holds them all.
  bool Gather(std::string_view* bytes);
  Status ParseLayout();
  Status BodyBytes(std::string_view* bytes);
  void EndPiece();  // closes a file piece, folds its CRC into the body's
  Status Fail(const std::string& what) const;

  base::FileSystem* const fs_;
  const std::string dir_;
  Stage stage_ = Stage::kLayoutFixed;
  std::string buf_;  // the part being gathered (layout, header or trailer)
  std::size_t need_ = kLayoutFixedBytes;
  std::string head_;                     // the .snap header, byte for byte
  std::vector<Manifest::Piece> pieces_;  // literal data filled as it arrives
  std::vector<std::uint32_t> crcs_;      // each file piece's CRC32C
  std::uint64_t body_len_ = 0;
  std::uint32_t body_crc_ = 0;
  std::size_t cur_ = 0;  // the piece being received
  std::uint64_t cur_off_ = 0;
  std::uint32_t cur_crc_ = 0;
  int fd_ = -1;  // the current file piece's
  std::uint64_t written_back_ = 0;
};

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
  // `dir` must be pinned already; the destructor unpins it. `layout`: the virtual file
  // starts with the layout (EncodeLayout), for a stream in layout form.
  LinkedFile(std::shared_ptr<LinkedPins> pins, std::string dir, Manifest m, bool layout = false);
  ~LinkedFile();
  LinkedFile(const LinkedFile&) = delete;
  LinkedFile& operator=(const LinkedFile&) = delete;

  const SnapshotHeader& header() const { return header_; }
  std::uint64_t size() const { return size_; }
  std::uint64_t body_start() const { return body_start_; }
  std::uint64_t body_len() const { return body_len_; }
  std::uint32_t body_crc() const { return body_crc_; }
  const std::string& dir() const { return dir_; }
  bool layout() const { return layout_; }
  // The body's pieces: the directory and its files, the literal bytes.
  SnapshotFiles Files() const;
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
  std::vector<Segment> segs_;  // [layout], head, pieces, trailer; by start
  std::size_t body_segs_begin_ = 0, body_segs_end_ = 0;  // the pieces' range in segs_
  bool layout_ = false;
  std::uint64_t size_ = 0, body_start_ = 0, body_len_ = 0;
  std::uint32_t body_crc_ = 0;
  int fd_ = -1;
  std::size_t fd_seg_ = 0;  // the segment fd_ belongs to (when fd_ >= 0)
};

}  // namespace raft::runtime
