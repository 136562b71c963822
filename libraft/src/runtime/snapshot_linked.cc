#include "runtime/snapshot_linked.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <limits>

#include "base/crc32c.h"
#include "base/file_system.h"
#include "raft/coding.h"
#include "raft/errno_status.h"

namespace raft::runtime {
namespace {

constexpr std::string_view kManifestMagic("RSNL", 4);
constexpr std::uint8_t kManifestVersion = 1;
constexpr std::uint32_t kManifestBytesMax = 64u << 20;
constexpr std::size_t kNameBytesMax = 255;
constexpr std::size_t kCopyBufferBytes = 1 << 20;
constexpr char kManifestName[] = "manifest";

Status Corrupt(const std::string& path, const std::string& what) {
  return Status(ErrorCode::kCorruption, path + ": " + what);
}

// Reads the file at `path` in order through `buf`, handing each chunk to `fn`, then
// fsyncs it when `sync`. Returns its size.
Result<std::uint64_t> StreamFile(base::FileSystem* fs, const std::string& path, std::string* buf,
                                 bool sync, const std::function<Status(std::string_view)>& fn) {
  int fd = -1;
  if (int err = fs->Open(path, O_RDONLY, 0, &fd); err != 0) return ErrnoStatus("open", path, err);
  Status s;
  std::uint64_t off = 0;
  for (;;) {
    std::size_t got = 0;
    if (int err = fs->Pread(fd, buf->data(), buf->size(), off, &got); err != 0) {
      s = ErrnoStatus("read", path, err);
      break;
    }
    if (got == 0) break;
    if (s = fn(std::string_view(buf->data(), got)); !s.ok()) break;
    off += got;
  }
  if (s.ok() && sync)
    if (int err = fs->Fsync(fd); err != 0) s = ErrnoStatus("fsync", path, err);
  fs->Close(fd);
  if (!s.ok()) return s;
  return off;
}

Status BadName(const std::string& name) {
  return Status(ErrorCode::kInvalidArgument, "snapshot piece has a bad file name: " + name);
}

}  // namespace

int RemoveTree(base::FileSystem* fs, const std::string& path) {
  int err = fs->Unlink(path);
  if (err != EISDIR && err != EPERM) return err;
  std::vector<std::string> names;
  if (int e = fs->ListDir(path, &names); e != 0) return e;
  for (const std::string& name : names) {
    if (int e = fs->Unlink(path + "/" + name); e != 0 && e != ENOENT) return e;
  }
  return fs->Rmdir(path);
}

bool ValidPieceName(std::string_view name) {
  return !name.empty() && name.size() <= kNameBytesMax && name != "." && name != ".." &&
         name != kManifestName && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

std::string EncodeManifest(const Manifest& m) {
  std::string out;
  raft::ByteWriter w(&out);
  w.Raw(kManifestMagic);
  w.U8(kManifestVersion);
  w.Raw(std::string_view("\0\0\0", 3));
  w.Bytes(m.head);
  w.U32(static_cast<std::uint32_t>(m.pieces.size()));
  for (const Manifest::Piece& p : m.pieces) {
    w.U8(p.file ? 1 : 0);
    w.Bytes(p.data);
    w.U64(p.size);
  }
  w.U64(m.body_len);
  w.U32(m.body_crc);
  w.U32(base::Crc32c(out));
  return out;
}

Status DecodeManifest(std::string_view in, const std::string& path, Manifest* m) {
  if (in.size() < 4 ||
      base::Crc32c(in.substr(0, in.size() - 4)) != raft::DecodeFixed32(in.data() + in.size() - 4))
    return Corrupt(path, "manifest checksum");
  raft::ByteReader r(in.substr(0, in.size() - 4), "snapshot_manifest");
  const std::string_view magic = r.Raw("magic", kManifestMagic.size());
  const std::uint8_t version = r.U8("version");
  r.Raw("pad", 3);
  if (r.ok() && magic != kManifestMagic) return Corrupt(path, "not a snapshot manifest");
  if (r.ok() && version != kManifestVersion) return Corrupt(path, "unsupported manifest version");
  m->head = r.Bytes("head", kManifestBytesMax);
  const std::uint32_t n = r.Count("pieces_n", std::numeric_limits<std::uint32_t>::max(), 13);
  std::uint64_t sum = 0;
  std::set<std::string> names;
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    Manifest::Piece p;
    const std::uint8_t kind = r.U8("kind");
    p.data = r.Bytes("data", kManifestBytesMax);
    p.size = r.U64("size");
    if (!r.ok()) break;
    if (kind > 1) r.Fail("unknown piece kind " + std::to_string(kind));
    p.file = kind == 1;
    if (!p.file && p.size != p.data.size()) r.Fail("literal piece size differs from its length");
    if (p.file && (!ValidPieceName(p.data) || !names.insert(p.data).second))
      r.Fail("bad or repeated file name");
    if (p.size > std::numeric_limits<std::uint64_t>::max() - sum) r.Fail("sizes overflow");
    sum += p.size;
    m->pieces.push_back(std::move(p));
  }
  m->body_len = r.U64("body_len");
  m->body_crc = r.U32("body_crc");
  if (Status s = r.Finish(); !s.ok()) return Corrupt(path, s.message());
  if (sum != m->body_len) return Corrupt(path, "pieces do not add up to body_len");
  return snapfmt::ParseHead(m->head, path, &m->header);
}

// ---- LinkedPins ----

bool LinkedPins::Pin(const std::string& dir) {
  base::MutexLock l(&mu);
  if (doomed.count(dir) != 0) return false;
  ++refs[dir];
  return true;
}

void LinkedPins::Unpin(const std::string& dir) {
  {
    base::MutexLock l(&mu);
    auto it = refs.find(dir);
    RAFT_ASSERT(it != refs.end(), "unpin of a directory that is not pinned");
    if (--it->second > 0) return;
    refs.erase(it);
    if (doomed.count(dir) == 0) return;
  }
  // Doomed stays set while the files go: a Pin meanwhile sees the snapshot as gone.
  (void)RemoveTree(fs, dir);
  base::MutexLock l(&mu);
  doomed.erase(dir);
}

bool LinkedPins::CachedCrc(const std::string& key, std::uint32_t* crc) {
  base::MutexLock l(&mu);
  if (crcs_dir.empty() || doomed.count(crcs_dir) != 0) return false;
  auto it = crcs.find(key);
  if (it == crcs.end()) return false;
  *crc = it->second;
  return true;
}

void LinkedPins::SetCrcs(const std::string& dir, std::map<std::string, std::uint32_t> c) {
  base::MutexLock l(&mu);
  crcs_dir = dir;
  crcs = std::move(c);
}

void LinkedPins::RemoveOrDoom(const std::string& dir) {
  {
    base::MutexLock l(&mu);
    if (dir == crcs_dir) {
      crcs_dir.clear();
      crcs.clear();
    }
    if (!doomed.insert(dir).second) return;  // already going
    if (refs.count(dir) != 0) return;        // the last Unpin removes it
  }
  (void)RemoveTree(fs, dir);
  base::MutexLock l(&mu);
  doomed.erase(dir);
}

// ---- LinkedFile ----

LinkedFile::LinkedFile(std::shared_ptr<LinkedPins> pins, std::string dir, Manifest m, bool layout)
    : pins_(std::move(pins)), dir_(std::move(dir)), header_(std::move(m.header)), layout_(layout) {
  auto add = [this](std::string bytes, std::string file, std::uint64_t size) {
    segs_.push_back(Segment{size_, size, std::move(bytes), std::move(file)});
    size_ += size;
  };
  if (layout) {
    std::string l = EncodeLayout(m);
    const std::uint64_t n = l.size();
    add(std::move(l), "", n);
  }
  add(m.head, "", m.head.size());
  body_start_ = size_;
  body_segs_begin_ = segs_.size();
  for (Manifest::Piece& p : m.pieces) {
    if (p.file) {
      add("", std::move(p.data), p.size);
    } else {
      const std::uint64_t n = p.data.size();
      add(std::move(p.data), "", n);
    }
  }
  body_segs_end_ = segs_.size();
  body_len_ = m.body_len;
  body_crc_ = m.body_crc;
  const std::string trailer = snapfmt::EncodeTrailer(m.body_len, m.body_crc);
  add(trailer, "", trailer.size());
}

LinkedFile::~LinkedFile() {
  if (fd_ >= 0) pins_->fs->Close(fd_);
  pins_->Unpin(dir_);
}

SnapshotFiles LinkedFile::Files() const {
  SnapshotFiles f;
  f.dir = dir_;
  for (std::size_t i = body_segs_begin_; i < body_segs_end_; ++i)
    f.pieces.push_back(SnapshotFiles::Piece{segs_[i].bytes, segs_[i].file});
  return f;
}

Status LinkedFile::OpenSegmentFile(std::size_t seg) {
  if (fd_ >= 0 && fd_seg_ == seg) return Status::Ok();
  if (fd_ >= 0) pins_->fs->Close(fd_);
  fd_ = -1;
  const std::string path = dir_ + "/" + segs_[seg].file;
  if (int err = pins_->fs->Open(path, O_RDONLY, 0, &fd_); err != 0)
    return ErrnoStatus("open", path, err);
  fd_seg_ = seg;
  std::uint64_t size = 0;
  if (int err = pins_->fs->FileSize(fd_, &size); err != 0) return ErrnoStatus("stat", path, err);
  if (size != segs_[seg].size)
    return Corrupt(path, "size " + std::to_string(size) + ", the manifest says " +
                             std::to_string(segs_[seg].size));
  return Status::Ok();
}

Status LinkedFile::ReadAt(std::uint64_t offset, char* p, std::size_t n, std::size_t* got) {
  *got = 0;
  // The segment holding `offset`: the last one starting at or before it.
  auto it = std::upper_bound(segs_.begin(), segs_.end(), offset,
                             [](std::uint64_t off, const Segment& s) { return off < s.start; });
  std::size_t seg = static_cast<std::size_t>(it - segs_.begin());
  seg = seg == 0 ? 0 : seg - 1;
  while (*got < n && offset < size_) {
    while (seg < segs_.size() && offset >= segs_[seg].start + segs_[seg].size) ++seg;
    if (seg == segs_.size()) break;
    const Segment& s = segs_[seg];
    const std::uint64_t within = offset - s.start;
    const std::size_t take =
        static_cast<std::size_t>(std::min<std::uint64_t>(n - *got, s.size - within));
    if (s.file.empty()) {
      std::memcpy(p + *got, s.bytes.data() + within, take);
    } else {
      if (Status st = OpenSegmentFile(seg); !st.ok()) return st;
      std::size_t read = 0;
      const std::string path = dir_ + "/" + s.file;
      if (int err = pins_->fs->Pread(fd_, p + *got, take, within, &read); err != 0)
        return ErrnoStatus("read", path, err);
      if (read != take) return Corrupt(path, "shorter than the manifest says");
    }
    *got += take;
    offset += take;
  }
  return Status::Ok();
}

// ---- SnapshotStore: the linked form ----

Result<std::unique_ptr<LinkedFile>> SnapshotStore::OpenLinked(Index index, Term term,
                                                              bool layout) const {
  const std::string dir = LinkedPathOf(index, term);
  if (!pins_->Pin(dir)) return std::unique_ptr<LinkedFile>();  // being removed
  // From here the pin must be released on every path: a LinkedFile does it.
  Manifest m;
  const std::string path = dir + "/" + kManifestName;
  int fd = -1;
  if (int err = fs_->Open(path, O_RDONLY, 0, &fd); err != 0) {
    pins_->Unpin(dir);
    if (err == ENOENT || err == ENOTDIR) return std::unique_ptr<LinkedFile>();
    return ErrnoStatus("open", path, err);
  }
  std::uint64_t size = 0;
  std::string bytes;
  Status s;
  if (int err = fs_->FileSize(fd, &size); err != 0) {
    s = ErrnoStatus("stat", path, err);
  } else if (size > kManifestBytesMax) {
    s = Corrupt(path, "manifest too large");
  } else {
    bytes.resize(static_cast<std::size_t>(size));
    if (int err = fs_->PreadAll(fd, bytes.data(), bytes.size(), 0); err != 0)
      s = ErrnoStatus("read", path, err);
  }
  fs_->Close(fd);
  if (s.ok()) s = DecodeManifest(bytes, path, &m);
  if (s.ok() && (m.header.meta.index != index || m.header.meta.term != term))
    s = Corrupt(path, "manifest names another index/term");
  if (!s.ok()) {
    pins_->Unpin(dir);
    return s;
  }
  return std::make_unique<LinkedFile>(pins_, dir, std::move(m), layout);
}

Status SnapshotStore::CreateLinked(const SnapshotHeader& header, SnapshotFiles files) {
  const std::string final_dir = LinkedPathOf(header.meta.index, header.meta.term);
  const std::string tmp = final_dir + ".tmp";
  (void)RemoveTree(fs_, tmp);  // a leftover of a failed attempt
  if (int err = fs_->Rename(files.dir, tmp); err != 0) {
    Status s = err == EXDEV ? CopyLinked(header, files) : ErrnoStatus("rename", files.dir, err);
    (void)RemoveTree(fs_, files.dir);
    return s;
  }
  Manifest m;
  m.head = snapfmt::EncodeHead(header);
  std::uint32_t crc = 0;
  std::uint64_t len = 0;
  std::string buf(kCopyBufferBytes, '\0');
  // Every file new since the previous linked snapshot is read once: its CRC, its size,
  // and an fsync so that the snapshot's durability does not rest on how the state
  // machine wrote it. A file the previous one holds too (same FileKey) is not read
  // again: its CRC is combined in (LinkedPins::CachedCrc).
  std::map<std::string, std::uint32_t> crcs;  // for the next snapshot
  auto add_file = [&](const std::string& name, Manifest::Piece* p) -> Status {
    if (!ValidPieceName(name)) return BadName(name);
    const std::string path = tmp + "/" + name;
    int fd = -1;
    if (int err = fs_->Open(path, O_RDONLY, 0, &fd); err != 0)
      return ErrnoStatus("open", path, err);
    std::string key;
    std::uint64_t size = 0;
    std::uint32_t file_crc = 0;
    const bool keyed = fs_->FileKey(fd, &key) == 0;
    const bool cached = keyed && pins_->CachedCrc(key, &file_crc) && fs_->FileSize(fd, &size) == 0;
    fs_->Close(fd);  // the directory's link keeps it while we read
    if (!cached) {
      file_crc = 0;
      auto n = StreamFile(fs_, path, &buf, /*sync=*/true, [&](std::string_view b) {
        file_crc = base::Crc32cExtend(file_crc, b.data(), b.size());
        return Status::Ok();
      });
      if (!n.ok()) return n.status();
      size = *n;
    }
    if (keyed) crcs[key] = file_crc;
    crc = base::Crc32cCombine(crc, file_crc, size);
    p->size = size;
    return Status::Ok();
  };
  Status s;
  std::set<std::string> seen;
  for (SnapshotFiles::Piece& piece : files.pieces) {
    Manifest::Piece p;
    if (piece.file.empty()) {
      crc = base::Crc32cExtend(crc, piece.bytes.data(), piece.bytes.size());
      p.size = piece.bytes.size();
      p.data = std::move(piece.bytes);
    } else {
      p.file = true;
      if (!seen.insert(piece.file).second) {
        s = Status(ErrorCode::kInvalidArgument, "snapshot piece file repeated: " + piece.file);
        break;
      }
      s = add_file(piece.file, &p);
      if (!s.ok()) break;
      p.data = std::move(piece.file);
    }
    len += p.size;
    m.pieces.push_back(std::move(p));
  }
  m.body_len = len;
  m.body_crc = crc;
  if (s.ok()) s = CommitLinkedDir(fs_, tmp, final_dir, dir_, m);
  if (!s.ok()) {
    (void)RemoveTree(fs_, tmp);
    return s;
  }
  pins_->SetCrcs(final_dir, std::move(crcs));
  return Status::Ok();
}

Status CommitLinkedDir(base::FileSystem* fs, const std::string& tmp, const std::string& final_dir,
                       const std::string& store_dir, const Manifest& m) {
  const std::string bytes = EncodeManifest(m);
  if (bytes.size() > kManifestBytesMax)
    return Status(ErrorCode::kInvalidArgument, tmp + ": the snapshot's manifest would exceed " +
                                                   std::to_string(kManifestBytesMax) + " bytes");
  const std::string manifest_path = tmp + "/" + kManifestName;
  int fd = -1;
  if (int err = fs->Open(manifest_path, O_WRONLY | O_CREAT | O_EXCL, 0600, &fd); err != 0)
    return ErrnoStatus("create", manifest_path, err);
  Status s;
  if (int err = fs->PwriteAll(fd, bytes.data(), bytes.size(), 0); err != 0)
    s = ErrnoStatus("write", manifest_path, err);
  else if (int e = fs->Fsync(fd); e != 0)
    s = ErrnoStatus("fsync", manifest_path, e);
  fs->Close(fd);
  if (!s.ok()) return s;
  if (int err = fs->SyncDir(tmp); err != 0) return ErrnoStatus("fsync", tmp, err);
  if (int err = fs->Rename(tmp, final_dir); err != 0) return ErrnoStatus("rename", tmp, err);
  if (int err = fs->SyncDir(store_dir); err != 0) return ErrnoStatus("fsync", store_dir, err);
  return Status::Ok();
}

Status SnapshotStore::CopyLinked(const SnapshotHeader& header, const SnapshotFiles& files) {
  auto writer = Create(header);
  if (!writer.ok()) return writer.status();
  std::string buf(kCopyBufferBytes, '\0');
  for (const SnapshotFiles::Piece& piece : files.pieces) {
    if (piece.file.empty()) {
      if (Status s = (*writer)->Write(piece.bytes); !s.ok()) return s;
      continue;
    }
    if (!ValidPieceName(piece.file)) return BadName(piece.file);
    auto size = StreamFile(fs_, files.dir + "/" + piece.file, &buf, /*sync=*/false,
                           [&](std::string_view b) { return (*writer)->Write(b); });
    if (!size.ok()) return size.status();
  }
  return (*writer)->Commit();
}

}  // namespace raft::runtime
