// The application's side of the runtime: a deterministic state machine fed with
// committed entries, able to save and restore itself as a byte stream.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raft/status.h"
#include "raft/types.h"

namespace raft {

// Byte sink for saving a snapshot. Bytes are streamed to a file as they come: a state
// machine of any size is saved with bounded memory.
class SnapshotWriter {
 public:
  virtual ~SnapshotWriter() = default;
  virtual Status Write(std::string_view bytes) = 0;
};

// Byte source for restoring a snapshot. Read fills up to `n` bytes and returns how many
// it read; 0 means the end of the snapshot.
class SnapshotReader {
 public:
  virtual ~SnapshotReader() = default;
  virtual Result<std::size_t> Read(char* buf, std::size_t n) = 0;
};

// A snapshot body made of literal bytes and whole immutable files: see
// SnapshotSource::ReleaseFiles.
struct SnapshotFiles {
  struct Piece {
    std::string bytes;  // literal bytes, when `file` is empty
    std::string file;   // else: the whole file of this plain name in `dir`
  };
  std::string dir;  // holds the files (and nothing the pieces do not name)
  std::vector<Piece> pieces;
};

// A frozen view of the state at one applied index, produced on the apply thread and
// written out later on a background thread while Apply goes on (RocksDB: a checkpoint).
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  virtual Status WriteTo(SnapshotWriter* out) = 0;

  // The zero-copy path, optional. A source whose body is mostly whole files that nothing
  // will change again (RocksDB: a checkpoint's hard links to SST files) returns them
  // here, and gives up the directory: the runtime renames it into its snapshot store and
  // keeps the files as the snapshot, so a snapshot costs no second copy of the state.
  // The body is the pieces' bytes in order and must equal what WriteTo would write (a
  // peer receives it as one stream and Restore reads it back the same way). `dir` must
  // be on the file system of the node's data directory (else the runtime copies the
  // bytes). Called at most once, instead of WriteTo, on the snapshot thread; nullopt
  // (the default): the runtime calls WriteTo and stores the bytes it writes.
  virtual std::optional<SnapshotFiles> ReleaseFiles() { return std::nullopt; }
};

// Thread safety: the runtime calls Apply, PrepareSnapshot, Restore, RestoreFiles and
// AppliedIndex on its single apply thread, never concurrently. SnapshotSource::WriteTo
// runs on another thread, concurrently with Apply.
class StateMachine {
 public:
  virtual ~StateMachine() = default;

  // Applies committed entries in log order. Every entry is passed, so the state machine
  // can record the applied index: a leader's term-start no-op (kNormal, empty data) and
  // kConfChange entries (membership is the runtime's business) carry no command.
  // `results` must receive one value per entry: it completes the matching proposal.
  virtual void Apply(const std::vector<Entry>& entries, std::vector<std::string>* results) = 0;

  // The highest index whose effects are durable in the state machine (0 for a purely
  // in-memory one). On restart the runtime replays committed entries after it.
  virtual Index AppliedIndex() = 0;

  // Freezes the current state (as of the last applied entry) for a snapshot.
  virtual Result<std::unique_ptr<SnapshotSource>> PrepareSnapshot() = 0;

  // Replaces the whole state by the snapshot read from `in`, taken at `meta.index`.
  virtual Status Restore(SnapshotReader* in, const SnapshotMeta& meta) = 0;

  // The zero-copy restore, optional: the counterpart of SnapshotSource::ReleaseFiles.
  // When the snapshot to install is linked (a directory of whole files plus literal
  // pieces: one this node took, or one received from a peer whose state machine released
  // its files), the runtime offers its pieces here first. The body is the pieces' bytes
  // in order, the same bytes Restore would read; their CRC was checked when the snapshot
  // was received or taken (it is not read again). The files stay the runtime's and must
  // not change: the state machine may hard-link them into its own directory (they are
  // durable and nothing writes to them again; RocksDB: the SST files) or read them, but
  // never write, rename or delete them. Returns nullopt (the default) to have the runtime
  // call Restore with a reader instead; a value is the outcome, as for Restore.
  virtual std::optional<Status> RestoreFiles(const SnapshotFiles& files, const SnapshotMeta& meta) {
    (void)files;
    (void)meta;
    return std::nullopt;
  }
};

}  // namespace raft
