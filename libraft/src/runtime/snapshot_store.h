// SnapshotStore: snapshot files in <data>/snap, written and read as streams so that a
// state of any size passes through bounded memory. Format: docs/storage-format.md,
// section "Snapshot files":
//
//   file    := header body trailer
//   header  := "RSNP" version:u8(=1) pad:u8[3] meta_len:u32 meta[meta_len] meta_crc:u32
//   meta    := index:u64 term:u64 voters_n:u32 u64* learners_n:u32 u64*
//              members_n:u32 (len:u32 member_info[len])*
//   trailer := body_len:u64 body_crc:u32 "RSNE"
//
// Files are named snap-<index:20>-<term:20>.snap; they are written as *.tmp (a receive:
// <name>.<stream number>.recv.tmp, one file per stream, created O_EXCL), fsynced,
// renamed and the directory fsynced, so a visible .snap file is always complete. The
// directory itself is made durable in its parent when Open creates it.
//
// A linked snapshot (CreateLinked) is a directory snap-<index:20>-<term:20>.snapd of a
// state machine's immutable files plus a manifest (docs/runtime.md, "Linked snapshots"):
// no copy of the state. Readers and views see exactly the bytes of the equivalent .snap
// file. They pin the directory: Cleanup removes a pinned one only when the last of them
// closes.
// Every file operation goes through a base::FileSystem (the POSIX one unless the
// caller passes another, e.g. a fault-injecting or simulated one).
// Thread safety: the store's methods may be called from several threads (if its
// FileSystem allows that, as the POSIX one does); each writer/reader object belongs to
// one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/node.h"
#include "raft/state_machine.h"
#include "raft/status.h"
#include "raft/types.h"

namespace raft::base {
class FileSystem;
}  // namespace raft::base

namespace raft::runtime {

class LayoutReceive;
class LinkedFile;
struct LinkedPins;

struct SnapshotHeader {
  SnapshotMeta meta;
  std::vector<MemberInfo> members;
};

// Writes a new snapshot: the state machine streams its body through Write().
class SnapshotFileWriter final : public SnapshotWriter {
 public:
  ~SnapshotFileWriter() override;  // abandons (unlinks the .tmp) unless committed
  Status Write(std::string_view bytes) override;
  // Appends the trailer, fsyncs, renames into place, fsyncs the directory.
  Status Commit();
  // Bytes written so far: the whole file's size once committed.
  std::uint64_t bytes_written() const { return offset_; }

 private:
  friend class SnapshotStore;
  SnapshotFileWriter() = default;
  base::FileSystem* fs_ = nullptr;
  int fd_ = -1;
  std::string tmp_path_, final_path_, dir_;
  std::uint64_t body_len_ = 0;
  std::uint32_t body_crc_ = 0;
  std::uint64_t offset_ = 0;
  bool committed_ = false;
};

// Reads a snapshot's body as a SnapshotReader. The body CRC is verified when the end is
// reached: the last Read returns kCorruption if it does not match.
class SnapshotFileReader final : public SnapshotReader {
 public:
  ~SnapshotFileReader() override;
  Result<std::size_t> Read(char* buf, std::size_t n) override;
  const SnapshotHeader& header() const { return header_; }
  // A linked snapshot's pieces (for StateMachine::RestoreFiles); nullopt for a .snap file.
  // The directory stays pinned while this reader lives.
  std::optional<SnapshotFiles> Files() const;
  bool linked() const { return linked_ != nullptr; }

 private:
  friend class SnapshotStore;
  SnapshotFileReader() = default;
  base::FileSystem* fs_ = nullptr;
  int fd_ = -1;
  std::unique_ptr<LinkedFile> linked_;  // instead of fd_, for a linked snapshot
  std::string path_;
  SnapshotHeader header_;
  std::uint64_t body_start_ = 0, body_len_ = 0, pos_ = 0;
  std::uint32_t expected_crc_ = 0, crc_ = 0;
};

// Receives a snapshot file's raw bytes from the network, in order: into a .snap file,
// or, for a stream in layout form, into a linked snapshot (its files written as they
// come, no copy later; docs/runtime.md, "Linked snapshots").
class SnapshotReceiver {
 public:
  ~SnapshotReceiver();  // abandons unless finished
  // `offset` must equal bytes_received().
  Status Write(std::uint64_t offset, std::string_view bytes);
  // Validates the file (header checksum and grammar, body length and CRC, index and
  // term as announced), fsyncs it and renames it into place. The checks were computed
  // from the bytes as they came (no second read of the file), and the bytes went to the
  // disk as they came (StartWriteback every kWritebackBytes), so the end of a 2 GiB
  // stream costs neither a 2 GiB read nor a fsync that stalls the node's log fsyncs.
  Status Finish();
  static constexpr std::uint64_t kWritebackBytes = 8u << 20;
  std::uint64_t bytes_received() const { return offset_; }
  Index index() const { return index_; }
  Term term() const { return term_; }
  bool layout() const { return layout_ != nullptr; }

 private:
  friend class SnapshotStore;
  SnapshotReceiver() = default;
  void Check(std::string_view bytes);
  Status FinishLinked();
  base::FileSystem* fs_ = nullptr;
  std::shared_ptr<LinkedPins> pins_;
  std::unique_ptr<LayoutReceive> layout_;  // a receive in layout form (tmp_path_: a directory)
  std::string dir_;
  int fd_ = -1;
  std::string tmp_path_, final_path_;
  std::uint64_t offset_ = 0;
  std::uint64_t written_back_ = 0;  // bytes handed to StartWriteback (kWritebackBytes steps)
  // The running checks: the header's bytes until it is whole, then the body's CRC over
  // every byte but the last 16 received, which are held back (the trailer, if the stream
  // ends there). body_start_ is 0 until the header is whole.
  std::string head_;
  std::uint64_t body_start_ = 0;
  std::uint32_t body_crc_ = 0;
  std::string held_back_;
  Status check_;                 // the first grammar error (the header); Finish reports it
  std::uint64_t bytes_max_ = 0;  // 0: no limit
  Index index_ = 0;
  Term term_ = 0;
  bool finished_ = false;
};

// An open snapshot file, for streaming its raw bytes to a peer. The view holds the file
// open, so its bytes stay readable for the view's whole life even if Cleanup removes the
// file's name meanwhile (FileSystem::Unlink): a stream depends on the name only when it
// starts. A view of a linked snapshot pins its directory instead (Cleanup defers its
// removal to the last reader or view). One thread at a time.
class SnapshotView {
 public:
  ~SnapshotView();
  SnapshotView(const SnapshotView&) = delete;
  SnapshotView& operator=(const SnapshotView&) = delete;
  Index index() const { return index_; }
  Term term() const { return term_; }
  // The whole file's size in bytes (a visible snapshot file never changes).
  std::uint64_t size() const { return size_; }
  // Up to n bytes at `offset`, fewer only where the file ends.
  Result<std::string> ReadAt(std::uint64_t offset, std::size_t n) const;
  // The same into p[0, n); *got is the count.
  Status ReadInto(std::uint64_t offset, char* p, std::size_t n, std::size_t* got) const;
  bool linked() const { return linked_ != nullptr; }
  // The bytes are a stream in layout form (OpenView with layout, of a linked snapshot).
  bool layout() const;

 private:
  friend class SnapshotStore;
  SnapshotView() = default;
  base::FileSystem* fs_ = nullptr;
  int fd_ = -1;
  std::unique_ptr<LinkedFile> linked_;  // instead of fd_, for a linked snapshot
  std::string path_;
  Index index_ = 0;
  Term term_ = 0;
  std::uint64_t size_ = 0;
};

class SnapshotStore {
 public:
  // Creates the directory if needed (durably: its parent is synced) and removes leftover
  // *.tmp files. `fs` is not owned and must outlive the store and every object it
  // returns; nullptr: the POSIX calls.
  static Result<std::unique_ptr<SnapshotStore>> Open(const std::string& dir,
                                                     base::FileSystem* fs = nullptr);

  Result<std::unique_ptr<SnapshotFileWriter>> Create(const SnapshotHeader& header);
  // A linked snapshot of `files` (a state machine's, SnapshotSource::ReleaseFiles): the
  // directory is renamed into the store, every file checksummed and fsynced, the
  // manifest written; durable on return. The store owns files.dir from the call on,
  // whatever the outcome (it is removed on failure). Where files.dir is on another file
  // system (EXDEV), the pieces are copied into an ordinary .snap file instead.
  Status CreateLinked(const SnapshotHeader& header, SnapshotFiles files);
  Result<std::unique_ptr<SnapshotFileReader>> OpenReader(Index index, Term term) const;
  // A receive into a file of its own (<final name>.<n>.recv.tmp, created with O_EXCL):
  // streams of the same snapshot, e.g. a stale one and its restart, never share bytes,
  // and Finish validates exactly what this receiver wrote. A Write beyond `bytes_max`
  // bytes in all fails (kInvalidArgument), writing nothing; 0: no limit. `layout`: the
  // stream is in layout form, received into a directory of its own
  // (<linked name>.<n>.recv.tmp, made with mkdir) that Finish turns into a linked
  // snapshot.
  Result<std::unique_ptr<SnapshotReceiver>> Receive(Index index, Term term,
                                                    std::uint64_t bytes_max = 0,
                                                    bool layout = false);

  // The file's raw bytes (a linked snapshot's: those of the equivalent file), for
  // streaming it to a peer; kIOError if there is no such snapshot. `layout`: a linked
  // snapshot's stream in layout form (the view's layout() says whether it is: a .snap
  // file has none).
  Result<std::unique_ptr<SnapshotView>> OpenView(Index index, Term term, bool layout = false) const;

  // A .snap file or a linked snapshot of this index and term.
  bool Exists(Index index, Term term) const;
  // Deletes the files the node no longer needs, given the log's snapshot (`index`,
  // `term`, as DiskStorage::Snapshot() names it): every snapshot below `index` (or at it
  // with another term), complete or a receive still in progress (the core would refuse
  // to install it: the log is already past it). Never the log's own file, and none above
  // it: one of those may be a received snapshot whose install is on its way to the log.
  // Received files the core ignored (orphans) go once a later local snapshot passes
  // them. Readers and views already open are unaffected; a receive in progress below
  // `index` fails when it finishes.
  void Cleanup(Index index, Term term);
  // The .snap file's path (a linked snapshot's directory: LinkedPathOf).
  std::string PathOf(Index index, Term term) const;
  std::string LinkedPathOf(Index index, Term term) const;
  const std::string& dir() const { return dir_; }

  // Reads and checks the header and the body CRC of a file (bounded memory). `fs` as
  // for Open.
  static Result<SnapshotHeader> Validate(const std::string& path, base::FileSystem* fs = nullptr);
  // A file of the same format outside any store (Node::Backup, NodeOptions::restore_from):
  // CreateAt writes `path` as `path`.tmp and Commit renames it into place; OpenPath
  // reads one (header and trailer checked at open, the body CRC at its end).
  static Result<std::unique_ptr<SnapshotFileWriter>> CreateAt(const std::string& path,
                                                              const SnapshotHeader& header,
                                                              base::FileSystem* fs = nullptr);
  static Result<std::unique_ptr<SnapshotFileReader>> OpenPath(const std::string& path,
                                                              base::FileSystem* fs = nullptr);

 private:
  SnapshotStore(std::string dir, base::FileSystem* fs);
  // A reader or view of the linked snapshot (index, term), if there is one: nullptr
  // when there is none (the caller tries the .snap file), an error when it is damaged.
  // `layout`: its stream in layout form.
  Result<std::unique_ptr<LinkedFile>> OpenLinked(Index index, Term term, bool layout = false) const;
  // CreateLinked's fallback: the pieces' bytes into an ordinary .snap file.
  Status CopyLinked(const SnapshotHeader& header, const SnapshotFiles& files);
  // A writer of `path` through `path` + tmp_suffix; Commit syncs `dir` after the rename.
  static Result<std::unique_ptr<SnapshotFileWriter>> NewWriter(const std::string& path,
                                                               std::string_view tmp_suffix,
                                                               const std::string& dir,
                                                               const SnapshotHeader& header,
                                                               base::FileSystem* fs);
  std::string dir_;
  base::FileSystem* fs_;
  std::shared_ptr<LinkedPins> pins_;           // shared with every LinkedFile
  std::atomic<std::uint64_t> receive_seq_{0};  // numbers each receive's file name
};

}  // namespace raft::runtime
