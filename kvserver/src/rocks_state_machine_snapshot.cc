#include "rocks_state_machine_snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>
#include <system_error>
#include <vector>

#include "raft/coding.h"
#include "raft/errno_status.h"
#include "rocks_state_machine_fs.h"

namespace kv {
namespace {

constexpr std::size_t kMaxNameBytes = 255;

raft::Status Corrupt(const std::string& what) {
  return raft::Status(raft::ErrorCode::kCorruption, "kv snapshot: " + what);
}

bool ValidName(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameBytes && name != "." && name != ".." &&
         name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

// Closes a descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error close(2) may carry.
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

// Where ReceiveBody reads a body from: a byte stream (StreamIn) or the pieces of a
// linked snapshot (PiecesIn). Every method fails with kCorruption when the body ends
// early or does not have the shape asked for.
class BodyIn {
 public:
  virtual ~BodyIn() = default;
  // Exactly n bytes into dst (n is small: header fields).
  virtual raft::Status ReadExact(char* dst, std::size_t n) = 0;
  // The bytes of file `name`, declared `size` bytes long, when they come as a whole
  // file: puts that file at `path` (which does not exist) and returns the outcome.
  // nullopt: they come as the next `size` bytes of the body, for CopyTo.
  virtual std::optional<raft::Status> PlaceFile(const std::string& name, std::uint64_t size,
                                                const std::string& path) = 0;
  // Writes the next n bytes of the body to `fd` (the file at `path`).
  virtual raft::Status CopyTo(int fd, std::uint64_t n, const std::string& path) = 0;
  // Succeeds only if the body has nothing left.
  virtual raft::Status ExpectEnd() = 0;
};

// A buffered reader over a SnapshotReader. Holds at most kSnapshotBufferBytes.
class StreamIn final : public BodyIn {
 public:
  explicit StreamIn(raft::SnapshotReader* in)
      : in_(in), buf_(std::make_unique<char[]>(kSnapshotBufferBytes)) {}

  raft::Status ReadExact(char* dst, std::size_t n) override {
    while (n > 0) {
      if (raft::Status s = FillIfEmpty(); !s.ok()) return s;
      std::size_t take = std::min(n, len_ - pos_);
      std::memcpy(dst, buf_.get() + pos_, take);
      pos_ += take;
      dst += take;
      n -= take;
    }
    return raft::Status::Ok();
  }

  // A stream holds every file as bytes.
  std::optional<raft::Status> PlaceFile(const std::string&, std::uint64_t,
                                        const std::string&) override {
    return std::nullopt;
  }

  // Exactly n bytes of the stream written to `fd`, straight from the buffer, starting
  // the writeback of every 8 MiB as it goes (sync_file_range: a hint, no durability), so
  // the caller's fsync has little left and the extraction does not hold the disk at each
  // file's end.
  raft::Status CopyTo(int fd, std::uint64_t n, const std::string& path) override {
    constexpr std::uint64_t kWritebackBytes = 8u << 20;
    std::uint64_t written = 0, written_back = 0;
    while (n > 0) {
      if (raft::Status s = FillIfEmpty(); !s.ok()) return s;
      std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, len_ - pos_));
      if (raft::Status s = fs::WriteAll(fd, buf_.get() + pos_, take, path); !s.ok()) return s;
      pos_ += take;
      n -= take;
      written += take;
      if (written - written_back >= kWritebackBytes) {
        (void)::sync_file_range(fd, static_cast<off64_t>(written_back),
                                static_cast<off64_t>(written - written_back),
                                SYNC_FILE_RANGE_WRITE);
        written_back = written;
      }
    }
    return raft::Status::Ok();
  }

  // The final Read is where the runtime's reader checks its CRC.
  raft::Status ExpectEnd() override {
    if (pos_ < len_) return Corrupt("bytes after the end marker");
    auto n = in_->Read(buf_.get(), kSnapshotBufferBytes);
    if (!n.ok()) return n.status();
    if (*n != 0) return Corrupt("bytes after the end marker");
    return raft::Status::Ok();
  }

 private:
  raft::Status FillIfEmpty() {
    if (pos_ < len_) return raft::Status::Ok();
    auto n = in_->Read(buf_.get(), kSnapshotBufferBytes);
    if (!n.ok()) return n.status();
    if (*n == 0) return Corrupt("stream ends early");
    pos_ = 0;
    len_ = *n;
    return raft::Status::Ok();
  }

  raft::SnapshotReader* in_;
  std::unique_ptr<char[]> buf_;
  std::size_t pos_ = 0, len_ = 0;
};

// True for the files of a DB that RocksDB never writes again once they exist (table and
// blob files), which a restore may share with the snapshot by a hard link. It may
// rewrite or append to the others (MANIFEST, CURRENT, OPTIONS, logs) when it opens.
bool Immutable(std::string_view name) { return name.ends_with(".sst") || name.ends_with(".blob"); }

// The body of a linked snapshot: the literal pieces' bytes read as one stream, where a
// file piece may stand for the bytes of exactly one file (see BodyIn::PlaceFile). The
// files are only read or linked, never changed.
class PiecesIn final : public BodyIn {
 public:
  explicit PiecesIn(const raft::SnapshotFiles& files) : files_(files) {}

  raft::Status ReadExact(char* dst, std::size_t n) override {
    return Literal(n, [&](const char* p, std::size_t take) {
      std::memcpy(dst, p, take);
      dst += take;
      return raft::Status::Ok();
    });
  }

  // The file piece that comes next: it must name `name` and hold `size` bytes. Table and
  // blob files are linked (copied only where links are refused), the others copied.
  std::optional<raft::Status> PlaceFile(const std::string& name, std::uint64_t size,
                                        const std::string& path) override {
    const raft::SnapshotFiles::Piece* piece = Next();
    if (piece == nullptr || piece->file.empty()) return std::nullopt;
    if (piece->file != name)
      return Corrupt("file piece " + piece->file + " where the bytes of " + name + " belong");
    ++index_;
    const std::string from = files_.dir + "/" + name;
    struct stat st;
    if (::lstat(from.c_str(), &st) != 0) return raft::ErrnoStatus("stat", from, errno);
    if (!S_ISREG(st.st_mode)) return Corrupt(from + " is not a regular file");
    if (static_cast<std::uint64_t>(st.st_size) != size)
      return Corrupt(from + " holds " + std::to_string(st.st_size) + " bytes, its header says " +
                     std::to_string(size));
    return Immutable(name) ? fs::LinkOrCopy(from, path) : fs::CopyFile(from, path);
  }

  // A file given as literal bytes is written out (it cannot be linked).
  raft::Status CopyTo(int fd, std::uint64_t n, const std::string& path) override {
    return Literal(
        n, [&](const char* p, std::size_t take) { return fs::WriteAll(fd, p, take, path); });
  }

  raft::Status ExpectEnd() override {
    if (Next() != nullptr) return Corrupt("pieces after the end marker");
    return raft::Status::Ok();
  }

 private:
  // The piece holding the next byte or file (nullptr: none left), past empty pieces.
  const raft::SnapshotFiles::Piece* Next() {
    for (; index_ < files_.pieces.size(); ++index_, offset_ = 0) {
      const auto& piece = files_.pieces[index_];
      if (!piece.file.empty() || offset_ < piece.bytes.size()) return &piece;
    }
    return nullptr;
  }

  // Passes the next n literal bytes to `sink(p, len)`, a run at a time.
  template <typename Sink>
  raft::Status Literal(std::uint64_t n, Sink sink) {
    while (n > 0) {
      const raft::SnapshotFiles::Piece* piece = Next();
      if (piece == nullptr) return Corrupt("pieces end early");
      if (!piece->file.empty())
        return Corrupt("file piece " + piece->file + " where literal bytes belong");
      std::size_t take =
          static_cast<std::size_t>(std::min<std::uint64_t>(n, piece->bytes.size() - offset_));
      if (raft::Status s = sink(piece->bytes.data() + offset_, take); !s.ok()) return s;
      offset_ += take;
      n -= take;
    }
    return raft::Status::Ok();
  }

  const raft::SnapshotFiles& files_;
  std::size_t index_ = 0;   // the piece being read
  std::size_t offset_ = 0;  // bytes of it already read
};

// The checkpoint's regular files, sorted by name, with their sizes.
raft::Result<std::vector<std::pair<std::string, std::uint64_t>>> ListFiles(const std::string& dir) {
  std::vector<std::pair<std::string, std::uint64_t>> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec))
      return raft::Status(raft::ErrorCode::kIOError,
                          "kv snapshot: unexpected entry " + it->path().string());
    const std::uint64_t size = it->file_size(ec);
    if (ec) break;
    files.emplace_back(it->path().filename().string(), size);
  }
  if (ec) return raft::ErrnoStatus("list", dir, ec.value());
  std::sort(files.begin(), files.end());
  if (files.size() > kMaxSnapshotFiles)
    return raft::Status(raft::ErrorCode::kIOError, "kv snapshot: too many files in " + dir);
  return files;
}

std::string EncodeHeader(raft::Index applied, std::size_t file_count) {
  std::string header(kSnapshotMagic, sizeof(kSnapshotMagic));
  raft::ByteWriter hw(&header);
  hw.U8(kSnapshotVersion);
  hw.U64(applied);
  hw.U32(static_cast<std::uint32_t>(file_count));
  return header;
}

std::string EncodeFileHeader(const std::string& name, std::uint64_t size) {
  std::string file_header;
  raft::ByteWriter fw(&file_header);
  fw.U16(static_cast<std::uint16_t>(name.size()));  // <= NAME_MAX (255)
  fw.Raw(name);
  fw.U64(size);
  return file_header;
}

raft::Status ReceiveFile(BodyIn* in, const std::string& dir) {
  char len_buf[2];
  if (raft::Status s = in->ReadExact(len_buf, 2); !s.ok()) return s;
  std::size_t name_len = raft::DecodeFixed16(len_buf);
  if (name_len == 0 || name_len > kMaxNameBytes) return Corrupt("bad file name length");
  std::string name(name_len, '\0');
  if (raft::Status s = in->ReadExact(name.data(), name_len); !s.ok()) return s;
  if (!ValidName(name)) return Corrupt("bad file name");
  char size_buf[8];
  if (raft::Status s = in->ReadExact(size_buf, 8); !s.ok()) return s;
  std::uint64_t size = raft::DecodeFixed64(size_buf);

  std::string path = dir + "/" + name;
  if (fs::Exists(path)) return Corrupt("file " + name + " appears twice");
  if (auto placed = in->PlaceFile(name, size, path); placed.has_value()) return *placed;
  // O_EXCL: a name repeated in the stream is refused instead of overwriting.
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    if (errno == EEXIST) return Corrupt("file " + name + " appears twice");
    return raft::ErrnoStatus("create", path, errno);
  }
  if (raft::Status s = in->CopyTo(fd.get(), size, path); !s.ok()) return s;
  if (::fsync(fd.get()) != 0) return raft::ErrnoStatus("fsync", path, errno);
  if (int err = fd.Close(); err != 0) return raft::ErrnoStatus("close", path, err);
  return raft::Status::Ok();
}

}  // namespace

CheckpointSource::CheckpointSource(std::string checkpoint_dir, raft::Index applied_index)
    : dir_(std::move(checkpoint_dir)), applied_index_(applied_index) {}

CheckpointSource::~CheckpointSource() {
  if (!dir_.empty()) (void)fs::RemoveAll(dir_);
}

raft::Status CheckpointSource::WriteTo(raft::SnapshotWriter* out) {
  if (dir_.empty())
    return raft::Status(raft::ErrorCode::kInvalidArgument, "kv snapshot: WriteTo called twice");
  raft::Status s = Stream(out);
  raft::Status removed = fs::RemoveAll(dir_);
  dir_.clear();
  return s.ok() ? removed : s;
}

std::optional<raft::SnapshotFiles> CheckpointSource::ReleaseFiles() {
  if (dir_.empty()) return std::nullopt;
  auto files = ListFiles(dir_);
  if (!files.ok()) return std::nullopt;  // WriteTo reports the error
  // The same bytes as Stream writes: the header, each file's header and bytes, the end.
  raft::SnapshotFiles out;
  out.dir = dir_;
  out.pieces.push_back({EncodeHeader(applied_index_, files->size()), ""});
  for (const auto& [name, size] : *files) {
    out.pieces.push_back({EncodeFileHeader(name, size), ""});
    out.pieces.push_back({"", name});
  }
  out.pieces.push_back({std::string(kSnapshotEndMagic, sizeof(kSnapshotEndMagic)), ""});
  dir_.clear();  // the runtime's now
  return out;
}

raft::Status CheckpointSource::Stream(raft::SnapshotWriter* out) {
  auto files = ListFiles(dir_);
  if (!files.ok()) return files.status();
  if (raft::Status s = out->Write(EncodeHeader(applied_index_, files->size())); !s.ok()) return s;

  auto buf = std::make_unique<char[]>(kSnapshotBufferBytes);
  for (const auto& [name, size] : *files) {
    std::string path = dir_ + "/" + name;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return raft::ErrnoStatus("open", path, errno);
    if (raft::Status s = out->Write(EncodeFileHeader(name, size)); !s.ok()) return s;
    for (std::uint64_t left = size; left > 0;) {
      std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(left, kSnapshotBufferBytes));
      ssize_t n = ::read(fd.get(), buf.get(), want);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return raft::ErrnoStatus("read", path, errno);
      if (n == 0)
        return raft::Status(raft::ErrorCode::kIOError, "kv snapshot: " + path + " shrank");
      if (raft::Status s = out->Write(std::string_view(buf.get(), static_cast<std::size_t>(n)));
          !s.ok())
        return s;
      left -= static_cast<std::uint64_t>(n);
    }
  }
  return out->Write(std::string_view(kSnapshotEndMagic, sizeof(kSnapshotEndMagic)));
}

namespace {

// The grammar, whatever the body comes from: see ReceiveSnapshot.
raft::Status ReceiveBody(BodyIn* in, const std::string& dir, raft::Index expected_index) {
  if (::mkdir(dir.c_str(), 0700) != 0) return raft::ErrnoStatus("mkdir", dir, errno);
  char header[4 + 1 + 8 + 4];
  if (raft::Status s = in->ReadExact(header, sizeof(header)); !s.ok()) return s;
  if (std::memcmp(header, kSnapshotMagic, 4) != 0) return Corrupt("bad magic");
  if (static_cast<std::uint8_t>(header[4]) != kSnapshotVersion)
    return Corrupt("unsupported version " + std::to_string(static_cast<unsigned char>(header[4])));
  raft::Index applied = raft::DecodeFixed64(header + 5);
  if (applied != expected_index)
    return Corrupt("snapshot of index " + std::to_string(applied) + ", expected " +
                   std::to_string(expected_index));
  std::uint64_t count = raft::DecodeFixed32(header + 13);
  if (count > kMaxSnapshotFiles) return Corrupt("too many files");

  for (std::uint64_t i = 0; i < count; ++i)
    if (raft::Status s = ReceiveFile(in, dir); !s.ok()) return s;
  char end[4];
  if (raft::Status s = in->ReadExact(end, 4); !s.ok()) return s;
  if (std::memcmp(end, kSnapshotEndMagic, 4) != 0) return Corrupt("bad end marker");
  if (raft::Status s = in->ExpectEnd(); !s.ok()) return s;
  return fs::FsyncPath(dir);
}

}  // namespace

raft::Status ReceiveSnapshot(raft::SnapshotReader* reader, const std::string& dir,
                             raft::Index expected_index) {
  StreamIn in(reader);
  return ReceiveBody(&in, dir, expected_index);
}

raft::Status ReceiveSnapshotFiles(const raft::SnapshotFiles& files, const std::string& dir,
                                  raft::Index expected_index) {
  PiecesIn in(files);
  return ReceiveBody(&in, dir, expected_index);
}

}  // namespace kv
