// The layout form of a linked snapshot's stream: its encoding (sender) and a receive of it
// into a directory of files (receiver). Grammar: snapshot_linked.h, EncodeLayout.
#include <fcntl.h>

#include <algorithm>
#include <limits>
#include <set>

#include "base/crc32c.h"
#include "base/file_system.h"
#include "raft/coding.h"
#include "raft/errno_status.h"
#include "runtime/snapshot_linked.h"

namespace raft::runtime {
namespace {

constexpr std::string_view kLayoutMagic("RSLY", 4);
constexpr std::uint8_t kLayoutVersion = 1;
// The layout, and the literal bytes held in memory, are bounded as a manifest is.
constexpr std::uint64_t kLayoutBytesMax = 64u << 20;
constexpr std::uint64_t kWritebackBytes = 8u << 20;
// Each file piece is a file (an inode) on the receiver: a bound on what a stream may make.
constexpr std::uint32_t kPiecesMax = 1u << 20;

}  // namespace

std::string EncodeLayout(const Manifest& m) {
  std::string body;
  raft::ByteWriter w(&body);
  w.U8(kLayoutVersion);
  w.U32(static_cast<std::uint32_t>(m.pieces.size()));
  for (const Manifest::Piece& p : m.pieces) {
    w.U8(p.file ? 1 : 0);
    w.U64(p.size);
    if (p.file) w.Bytes(p.data);
  }
  std::string out;
  raft::ByteWriter o(&out);
  o.Raw(kLayoutMagic);
  o.U32(static_cast<std::uint32_t>(body.size()));
  o.Raw(body);
  o.U32(base::Crc32c(body));
  return out;
}

LayoutReceive::~LayoutReceive() {
  if (fd_ >= 0) fs_->Close(fd_);
}

Status LayoutReceive::Fail(const std::string& what) const {
  return Status(ErrorCode::kCorruption, dir_ + ": " + what);
}

bool LayoutReceive::Gather(std::string_view* bytes) {
  const std::size_t take = std::min(bytes->size(), need_ - buf_.size());
  buf_.append(bytes->substr(0, take));
  bytes->remove_prefix(take);
  return buf_.size() == need_;
}

Status LayoutReceive::ParseLayout() {
  const std::string_view all(buf_);
  const std::string_view body = all.substr(kLayoutFixedBytes, all.size() - kLayoutFixedBytes - 4);
  if (base::Crc32c(body) != raft::DecodeFixed32(all.data() + all.size() - 4))
    return Fail("layout checksum mismatch");
  raft::ByteReader r(body, "snapshot_layout");
  if (r.U8("version") != kLayoutVersion && r.ok()) return Fail("unsupported layout version");
  const std::uint32_t n = r.Count("pieces_n", kPiecesMax, 9);
  std::set<std::string_view> names;
  std::uint64_t literal = 0;
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    Manifest::Piece p;
    const std::uint8_t kind = r.U8("kind");
    p.size = r.U64("size");
    if (kind == 1) p.data = r.Bytes("name", 255);
    if (!r.ok()) break;
    p.file = kind == 1;
    if (kind > 1) r.Fail("unknown piece kind " + std::to_string(kind));
    if (p.file && !ValidPieceName(p.data)) r.Fail("bad file name");
    if (!p.file && (literal += p.size) > kLayoutBytesMax) r.Fail("literal pieces too large");
    if (p.size > std::numeric_limits<std::uint64_t>::max() - body_len_) r.Fail("sizes overflow");
    if (!r.ok()) break;
    body_len_ += p.size;
    pieces_.push_back(std::move(p));
  }
  if (Status s = r.Finish(); !s.ok()) return Fail(s.message());
  for (const Manifest::Piece& p : pieces_)
    if (p.file && !names.insert(p.data).second) return Fail("file " + p.data + " named twice");
  crcs_.assign(pieces_.size(), 0);
  return Status::Ok();
}

Status LayoutReceive::Write(std::string_view bytes) {
  for (;;) {
    switch (stage_) {
      case Stage::kLayoutFixed:
        if (!Gather(&bytes)) return Status::Ok();
        if (std::string_view(buf_).substr(0, 4) != kLayoutMagic)
          return Fail("not a snapshot layout (bad magic)");
        if (raft::DecodeFixed32(buf_.data() + 4) > kLayoutBytesMax) return Fail("layout too large");
        need_ = kLayoutFixedBytes + raft::DecodeFixed32(buf_.data() + 4) + 4;
        stage_ = Stage::kLayout;
        break;
      case Stage::kLayout:
        if (!Gather(&bytes)) return Status::Ok();
        if (Status s = ParseLayout(); !s.ok()) return s;
        buf_.clear();
        need_ = snapfmt::kHeadFixedBytes;
        stage_ = Stage::kHead;
        break;
      case Stage::kHead: {
        if (!Gather(&bytes)) return Status::Ok();
        if (need_ == snapfmt::kHeadFixedBytes) {
          auto n = snapfmt::HeadBytes(buf_, dir_);
          if (!n.ok()) return n.status();
          need_ = *n;
          break;
        }
        head_ = std::move(buf_);
        buf_.clear();
        stage_ = Stage::kBody;
        break;
      }
      case Stage::kBody:
        if (cur_ == pieces_.size()) {
          need_ = snapfmt::kTrailerBytes;
          stage_ = Stage::kTrailer;
          break;
        }
        if (Status s = BodyBytes(&bytes); !s.ok()) return s;
        if (bytes.empty() && cur_ < pieces_.size()) return Status::Ok();
        break;
      case Stage::kTrailer:
        if (!Gather(&bytes)) return Status::Ok();
        stage_ = Stage::kDone;
        break;
      case Stage::kDone:
        if (!bytes.empty()) return Fail("bytes after the trailer");
        return Status::Ok();
    }
  }
}

// Takes what `bytes` holds of the current piece, and ends every piece that is complete
// (a file of 0 bytes is complete as soon as the stream reaches it).
Status LayoutReceive::BodyBytes(std::string_view* bytes) {
  while (cur_ < pieces_.size()) {
    Manifest::Piece& p = pieces_[cur_];
    if (p.file && fd_ < 0) {
      const std::string path = dir_ + "/" + p.data;
      if (int err = fs_->Open(path, O_WRONLY | O_CREAT | O_EXCL, 0600, &fd_); err != 0)
        return ErrnoStatus("create", path, err);
      written_back_ = 0;
    }
    const std::size_t take =
        static_cast<std::size_t>(std::min<std::uint64_t>(bytes->size(), p.size - cur_off_));
    const std::string_view chunk = bytes->substr(0, take);
    if (p.file) {
      if (int err = fs_->PwriteAll(fd_, chunk.data(), chunk.size(), cur_off_); err != 0)
        return ErrnoStatus("write", dir_ + "/" + p.data, err);
      // One pass per byte: the file's CRC, combined into the body's at its end.
      cur_crc_ = base::Crc32cExtend(cur_crc_, chunk.data(), chunk.size());
    } else {
      p.data.append(chunk);
      body_crc_ = base::Crc32cExtend(body_crc_, chunk.data(), chunk.size());
    }
    cur_off_ += take;
    bytes->remove_prefix(take);
    if (p.file && cur_off_ - written_back_ >= kWritebackBytes) {
      // A hint, as in SnapshotReceiver::Write: Finish's fsyncs decide.
      (void)fs_->StartWriteback(fd_, written_back_, cur_off_ - written_back_);
      written_back_ = cur_off_;
    }
    if (cur_off_ < p.size) return Status::Ok();
    EndPiece();
  }
  return Status::Ok();
}

void LayoutReceive::EndPiece() {
  if (pieces_[cur_].file) {
    if (cur_off_ > written_back_)
      (void)fs_->StartWriteback(fd_, written_back_, cur_off_ - written_back_);
    crcs_[cur_] = cur_crc_;
    body_crc_ = base::Crc32cCombine(body_crc_, cur_crc_, cur_off_);
    fs_->Close(fd_);
    fd_ = -1;
  }
  ++cur_;
  cur_off_ = 0;
  cur_crc_ = 0;
}

Status LayoutReceive::Finish(Index index, Term term, Manifest* m,
                             std::map<std::string, std::uint32_t>* crcs) {
  if (stage_ != Stage::kDone) return Fail("truncated");
  std::uint64_t body_len = 0;
  std::uint32_t body_crc = 0;
  if (Status s = snapfmt::ParseTrailer(buf_, dir_, &body_len, &body_crc); !s.ok()) return s;
  if (body_len != body_len_) return Fail("the trailer's body length differs from the layout's");
  if (body_crc != body_crc_) return Fail("body checksum mismatch");
  m->head = head_;
  if (Status s = snapfmt::ParseHead(head_, dir_, &m->header); !s.ok()) return s;
  if (m->header.meta.index != index || m->header.meta.term != term)
    return Fail("received snapshot names another index/term");
  for (std::size_t i = 0; i < pieces_.size(); ++i) {
    if (!pieces_[i].file) continue;
    // The bytes went out as they came (StartWriteback): these fsyncs find little to do.
    const std::string path = dir_ + "/" + pieces_[i].data;
    int fd = -1;
    if (int err = fs_->Open(path, O_RDONLY, 0, &fd); err != 0)
      return ErrnoStatus("open", path, err);
    std::string key;
    const int err = fs_->Fsync(fd);
    if (err == 0 && fs_->FileKey(fd, &key) == 0) (*crcs)[key] = crcs_[i];
    fs_->Close(fd);
    if (err != 0) return ErrnoStatus("fsync", path, err);
  }
  m->pieces = std::move(pieces_);
  m->body_len = body_len_;
  m->body_crc = body_crc_;
  return Status::Ok();
}

}  // namespace raft::runtime
