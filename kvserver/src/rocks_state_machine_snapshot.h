// The snapshot stream of RocksStateMachine: the files of a RocksDB checkpoint, framed.
// Both directions move the files through one fixed 1 MiB buffer, so a state of any size
// passes with bounded memory (no file is ever held whole in RAM). A linked snapshot
// (ReleaseFiles, ReceiveSnapshotFiles) has the same bytes, its files kept whole.
//
// Grammar (all integers little-endian):
//
//   body      := header file{file_count} end
//   header    := "RKVS" version:u8(=1) applied_index:u64 file_count:u32
//   file      := name_len:u16 name[name_len] size:u64 byte[size]
//   end       := "RKVE"
//
// `name` is a plain file name: 1..255 bytes, no '/', no NUL, not "." or "..", unique in
// the snapshot. file_count <= kMaxSnapshotFiles. Nothing follows `end`: the receiver
// reads on until the runtime's reader reports the end of the stream, which is where the
// runtime verifies the CRC of the whole body (raft::SnapshotReader), so a corrupted
// stream is refused before anything is swapped in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "raft/state_machine.h"
#include "raft/types.h"

namespace kv {

inline constexpr char kSnapshotMagic[4] = {'R', 'K', 'V', 'S'};
inline constexpr char kSnapshotEndMagic[4] = {'R', 'K', 'V', 'E'};
inline constexpr std::uint8_t kSnapshotVersion = 1;
inline constexpr std::uint32_t kMaxSnapshotFiles = 1000000;
inline constexpr std::size_t kSnapshotBufferBytes = 1 << 20;

// A SnapshotSource over a checkpoint directory that this object owns: the directory is
// removed after WriteTo (successful or not) and by the destructor if WriteTo never ran.
// The checkpoint's files are immutable (hard links to SSTs, copies of the rest), so
// WriteTo may run on any thread while the live DB goes on changing, and may outlive the
// state machine that made it. WriteTo may be called once. ReleaseFiles hands the
// directory to the runtime instead (a linked snapshot: the stream's bytes are the same,
// the SST files are not copied).
class CheckpointSource final : public raft::SnapshotSource {
 public:
  CheckpointSource(std::string checkpoint_dir, raft::Index applied_index);
  ~CheckpointSource() override;
  CheckpointSource(const CheckpointSource&) = delete;
  CheckpointSource& operator=(const CheckpointSource&) = delete;

  raft::Status WriteTo(raft::SnapshotWriter* out) override;
  std::optional<raft::SnapshotFiles> ReleaseFiles() override;

 private:
  raft::Status Stream(raft::SnapshotWriter* out);

  std::string dir_;
  raft::Index applied_index_;
};

// Reads a whole snapshot body from `in` into `dir` (which must not exist; it is created),
// then fsyncs every file and the directory. Fails with kCorruption on any grammar error or
// when the header's applied index differs from `expected_index`. On failure `dir` may hold
// a partial state: the caller removes it.
raft::Status ReceiveSnapshot(raft::SnapshotReader* in, const std::string& dir,
                             raft::Index expected_index);

// The same for a linked snapshot (raft::SnapshotFiles, as CheckpointSource::ReleaseFiles
// makes them): the body is the pieces' bytes in order, parsed as one stream, where a file
// piece stands for the bytes of the file it names, at a file's place only: it must be the
// file whose header precedes it, and the file in files.dir must be a regular file of the
// declared size (else kCorruption). A file's bytes come either as exactly one file piece
// or as literal bytes (written out like a streamed file); split between both, kCorruption.
// Table and blob files (*.sst, *.blob: RocksDB never writes them again) are hard-linked
// into `dir` (copied where the file system refuses the link), every other file copied,
// so that opening the DB in `dir` cannot change the snapshot's files: those are only
// read or linked, never written, renamed or removed. Then every copy and `dir` are
// fsynced. On failure `dir` may hold a partial state: the caller removes it.
raft::Status ReceiveSnapshotFiles(const raft::SnapshotFiles& files, const std::string& dir,
                                  raft::Index expected_index);

}  // namespace kv
