#include "runtime/snapshot_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "wire/crc32c.h"

namespace raft::runtime {
namespace {

constexpr char kHeadMagic[4] = {'R', 'S', 'N', 'P'};
constexpr char kTailMagic[4] = {'R', 'S', 'N', 'E'};
constexpr std::uint8_t kSnapshotVersion = 1;
constexpr std::size_t kTrailerBytes = 8 + 4 + 4;
constexpr std::uint32_t kMetaBytesMax = 64u << 20;

Status Errno(const char* op, const std::string& path, int err) {
  std::string msg = std::string(op) + " " + path + ": " + std::strerror(err);
  return Status(err == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIOError, msg);
}

void PutU32(std::string* o, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) o->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* o, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) o->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t GetLE(const char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

std::string EncodeMeta(const SnapshotHeader& h) {
  std::string m;
  PutU64(&m, h.meta.index);
  PutU64(&m, h.meta.term);
  PutU32(&m, static_cast<std::uint32_t>(h.meta.conf.voters.size()));
  for (NodeId id : h.meta.conf.voters) PutU64(&m, id);
  PutU32(&m, static_cast<std::uint32_t>(h.meta.conf.learners.size()));
  for (NodeId id : h.meta.conf.learners) PutU64(&m, id);
  PutU32(&m, static_cast<std::uint32_t>(h.members.size()));
  for (const auto& mi : h.members) {
    std::string e = EncodeMemberInfo(mi);
    PutU32(&m, static_cast<std::uint32_t>(e.size()));
    m += e;
  }
  return m;
}

bool DecodeMeta(std::string_view in, SnapshotHeader* h) {
  auto take = [&](int n, std::uint64_t* v) {
    if (in.size() < static_cast<std::size_t>(n)) return false;
    *v = GetLE(in.data(), n);
    in.remove_prefix(static_cast<std::size_t>(n));
    return true;
  };
  std::uint64_t n = 0, v = 0;
  if (!take(8, &h->meta.index) || !take(8, &h->meta.term)) return false;
  for (auto* set : {&h->meta.conf.voters, &h->meta.conf.learners}) {
    if (!take(4, &n) || n > in.size() / 8) return false;
    for (std::uint64_t i = 0; i < n; ++i) {
      take(8, &v);
      set->insert(v);
    }
  }
  if (!take(4, &n)) return false;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (!take(4, &v) || v > in.size()) return false;
    MemberInfo mi;
    if (!DecodeMemberInfo(in.substr(0, v), &mi)) return false;
    in.remove_prefix(v);
    h->members.push_back(std::move(mi));
  }
  return in.empty();
}

std::string FileName(Index index, Term term) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "snap-%020llu-%020llu.snap",
                static_cast<unsigned long long>(index), static_cast<unsigned long long>(term));
  return buf;
}

bool ParseName(const std::string& name, Index* index, Term* term) {
  unsigned long long i = 0, t = 0;
  char tail[8] = {};
  if (name.size() != 5 + 20 + 1 + 20 + 5) return false;
  if (std::sscanf(name.c_str(), "snap-%20llu-%20llu.%4s", &i, &t, tail) != 3) return false;
  if (std::string(tail) != "snap") return false;
  *index = i;
  *term = t;
  return true;
}

Status WriteAll(int fd, const std::string& path, const char* p, std::size_t n, std::uint64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno("write", path, errno);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    off += static_cast<std::uint64_t>(w);
  }
  return Status::Ok();
}

Status ReadAll(int fd, const std::string& path, char* p, std::size_t n, std::uint64_t off) {
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Errno("read", path, errno);
    }
    if (r == 0) return Status(ErrorCode::kCorruption, path + ": unexpected end of file");
    p += r;
    n -= static_cast<std::size_t>(r);
    off += static_cast<std::uint64_t>(r);
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Errno("open", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  return rc == 0 ? Status::Ok() : Errno("fsync", dir, err);
}

// Reads the header of an open snapshot file: fills *h, returns the body's offset.
Result<std::uint64_t> ReadHeader(int fd, const std::string& path, SnapshotHeader* h) {
  char fixed[12];
  if (Status s = ReadAll(fd, path, fixed, sizeof(fixed), 0); !s.ok()) return s;
  if (std::memcmp(fixed, kHeadMagic, 4) != 0)
    return Status(ErrorCode::kCorruption, path + ": not a snapshot file (bad magic)");
  if (static_cast<std::uint8_t>(fixed[4]) != kSnapshotVersion)
    return Status(ErrorCode::kCorruption, path + ": unsupported snapshot version");
  auto len = static_cast<std::uint32_t>(GetLE(fixed + 8, 4));
  if (len > kMetaBytesMax) return Status(ErrorCode::kCorruption, path + ": header too large");
  std::string meta(len + 4, '\0');
  if (Status s = ReadAll(fd, path, meta.data(), meta.size(), sizeof(fixed)); !s.ok()) return s;
  auto crc = static_cast<std::uint32_t>(GetLE(meta.data() + len, 4));
  meta.resize(len);
  if (wire::Crc32c(meta) != crc) return Status(ErrorCode::kCorruption, path + ": header checksum");
  if (!DecodeMeta(meta, h)) return Status(ErrorCode::kCorruption, path + ": malformed header");
  return std::uint64_t{sizeof(fixed) + len + 4};
}

}  // namespace

// ---- SnapshotStore ----

Result<std::unique_ptr<SnapshotStore>> SnapshotStore::Open(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir", dir, errno);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Errno("opendir", dir, errno);
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      ::unlink((dir + "/" + name).c_str());  // an interrupted write or receive
    }
  }
  ::closedir(d);
  return std::unique_ptr<SnapshotStore>(new SnapshotStore(dir));
}

std::string SnapshotStore::PathOf(Index index, Term term) const {
  return dir_ + "/" + FileName(index, term);
}

bool SnapshotStore::Exists(Index index, Term term) const {
  struct stat st;
  return ::stat(PathOf(index, term).c_str(), &st) == 0;
}

Result<std::unique_ptr<SnapshotFileWriter>> SnapshotStore::Create(const SnapshotHeader& header) {
  std::unique_ptr<SnapshotFileWriter> w(new SnapshotFileWriter());
  w->final_path_ = PathOf(header.meta.index, header.meta.term);
  w->tmp_path_ = w->final_path_ + ".local.tmp";
  w->dir_ = dir_;
  w->fd_ = ::open(w->tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd_ < 0) return Errno("open", w->tmp_path_, errno);
  std::string meta = EncodeMeta(header);
  std::string head(kHeadMagic, 4);
  head.push_back(static_cast<char>(kSnapshotVersion));
  head.append(3, '\0');
  PutU32(&head, static_cast<std::uint32_t>(meta.size()));
  head += meta;
  PutU32(&head, wire::Crc32c(meta));
  if (Status s = WriteAll(w->fd_, w->tmp_path_, head.data(), head.size(), 0); !s.ok()) return s;
  w->offset_ = head.size();
  return w;
}

Result<std::unique_ptr<SnapshotFileReader>> SnapshotStore::OpenReader(Index index,
                                                                      Term term) const {
  std::unique_ptr<SnapshotFileReader> r(new SnapshotFileReader());
  r->path_ = PathOf(index, term);
  r->fd_ = ::open(r->path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (r->fd_ < 0) return Errno("open", r->path_, errno);
  auto start = ReadHeader(r->fd_, r->path_, &r->header_);
  if (!start.ok()) return start.status();
  struct stat st;
  if (::fstat(r->fd_, &st) != 0) return Errno("stat", r->path_, errno);
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < *start + kTrailerBytes)
    return Status(ErrorCode::kCorruption, r->path_ + ": truncated");
  char trailer[kTrailerBytes];
  if (Status s = ReadAll(r->fd_, r->path_, trailer, kTrailerBytes, size - kTrailerBytes); !s.ok())
    return s;
  r->body_start_ = *start;
  r->body_len_ = GetLE(trailer, 8);
  r->expected_crc_ = static_cast<std::uint32_t>(GetLE(trailer + 8, 4));
  if (std::memcmp(trailer + 12, kTailMagic, 4) != 0 ||
      r->body_len_ != size - kTrailerBytes - *start)
    return Status(ErrorCode::kCorruption, r->path_ + ": bad trailer");
  return r;
}

Result<std::unique_ptr<SnapshotReceiver>> SnapshotStore::Receive(Index index, Term term) {
  std::unique_ptr<SnapshotReceiver> r(new SnapshotReceiver());
  r->store_ = this;
  r->index_ = index;
  r->term_ = term;
  r->final_path_ = PathOf(index, term);
  r->tmp_path_ = r->final_path_ + ".recv.tmp";
  r->fd_ = ::open(r->tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (r->fd_ < 0) return Errno("open", r->tmp_path_, errno);
  return r;
}

Result<std::uint64_t> SnapshotStore::FileSize(Index index, Term term) const {
  struct stat st;
  std::string p = PathOf(index, term);
  if (::stat(p.c_str(), &st) != 0) return Errno("stat", p, errno);
  return static_cast<std::uint64_t>(st.st_size);
}

Result<std::string> SnapshotStore::ReadRaw(Index index, Term term, std::uint64_t offset,
                                           std::size_t n) const {
  std::string p = PathOf(index, term);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", p, errno);
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int err = errno;
      ::close(fd);
      return Errno("read", p, err);
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

void SnapshotStore::Cleanup(std::size_t keep) {
  std::vector<std::pair<Index, Term>> found;
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      Index i;
      Term t;
      if (ParseName(e->d_name, &i, &t)) found.emplace_back(i, t);
    }
    ::closedir(d);
  }
  std::sort(found.begin(), found.end());
  if (found.size() <= keep) return;
  for (std::size_t i = 0; i + keep < found.size(); ++i) {
    ::unlink(PathOf(found[i].first, found[i].second).c_str());
  }
}

Result<SnapshotHeader> SnapshotStore::Validate(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path, errno);
  SnapshotFileReader r;
  r.fd_ = fd;  // closed by r's destructor
  r.path_ = path;
  auto start = ReadHeader(fd, path, &r.header_);
  if (!start.ok()) return start.status();
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno("stat", path, errno);
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < *start + kTrailerBytes) return Status(ErrorCode::kCorruption, path + ": truncated");
  char trailer[kTrailerBytes];
  if (Status s = ReadAll(fd, path, trailer, kTrailerBytes, size - kTrailerBytes); !s.ok()) return s;
  r.body_start_ = *start;
  r.body_len_ = GetLE(trailer, 8);
  r.expected_crc_ = static_cast<std::uint32_t>(GetLE(trailer + 8, 4));
  if (std::memcmp(trailer + 12, kTailMagic, 4) != 0 || r.body_len_ != size - kTrailerBytes - *start)
    return Status(ErrorCode::kCorruption, path + ": bad trailer");
  std::string buf(1 << 16, '\0');
  for (;;) {
    auto n = r.Read(buf.data(), buf.size());
    if (!n.ok()) return n.status();
    if (*n == 0) break;
  }
  return r.header_;
}

// ---- SnapshotFileWriter ----

SnapshotFileWriter::~SnapshotFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

Status SnapshotFileWriter::Write(std::string_view bytes) {
  if (Status s = WriteAll(fd_, tmp_path_, bytes.data(), bytes.size(), offset_); !s.ok()) return s;
  offset_ += bytes.size();
  body_len_ += bytes.size();
  body_crc_ = wire::Crc32cExtend(body_crc_, bytes.data(), bytes.size());
  return Status::Ok();
}

Status SnapshotFileWriter::Commit() {
  std::string trailer;
  PutU64(&trailer, body_len_);
  PutU32(&trailer, body_crc_);
  trailer.append(kTailMagic, 4);
  if (Status s = WriteAll(fd_, tmp_path_, trailer.data(), trailer.size(), offset_); !s.ok())
    return s;
  if (::fsync(fd_) != 0) return Errno("fsync", tmp_path_, errno);
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), final_path_.c_str()) != 0)
    return Errno("rename", tmp_path_, errno);
  committed_ = true;
  return SyncDir(dir_);
}

// ---- SnapshotFileReader ----

SnapshotFileReader::~SnapshotFileReader() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::size_t> SnapshotFileReader::Read(char* buf, std::size_t n) {
  std::uint64_t left = body_len_ - pos_;
  std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, left));
  if (want == 0) return std::size_t{0};
  if (Status s = ReadAll(fd_, path_, buf, want, body_start_ + pos_); !s.ok()) return s;
  pos_ += want;
  crc_ = wire::Crc32cExtend(crc_, buf, want);
  if (pos_ == body_len_ && crc_ != expected_crc_)
    return Status(ErrorCode::kCorruption, path_ + ": body checksum mismatch");
  return want;
}

// ---- SnapshotReceiver ----

SnapshotReceiver::~SnapshotReceiver() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

Status SnapshotReceiver::Write(std::uint64_t offset, std::string_view bytes) {
  if (offset != offset_) return Status(ErrorCode::kInvalidArgument, "snapshot chunk out of order");
  if (Status s = WriteAll(fd_, tmp_path_, bytes.data(), bytes.size(), offset_); !s.ok()) return s;
  offset_ += bytes.size();
  return Status::Ok();
}

Status SnapshotReceiver::Finish() {
  if (::fsync(fd_) != 0) return Errno("fsync", tmp_path_, errno);
  ::close(fd_);
  fd_ = -1;
  auto h = SnapshotStore::Validate(tmp_path_);
  if (!h.ok()) return h.status();
  if (h->meta.index != index_ || h->meta.term != term_)
    return Status(ErrorCode::kCorruption, "received snapshot names another index/term");
  if (::rename(tmp_path_.c_str(), final_path_.c_str()) != 0)
    return Errno("rename", tmp_path_, errno);
  finished_ = true;
  return SyncDir(store_->dir());
}

}  // namespace raft::runtime
