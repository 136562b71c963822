#include "ranges_backup.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>

#include "raft/node.h"
#include "rocks_state_machine_fs.h"

namespace kv {
namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kMaxDescriptorBytes = 256u << 10;  // two keys of 64 KiB and 64 replicas fit
constexpr std::size_t kCopyBytes = 1u << 20;

// CRC-32C (Castagnoli, reflected 0x82F63B78), as the Raft log's records.
std::uint32_t Crc32c(std::string_view data, std::uint32_t crc = 0) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (unsigned char b : data) crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void PutU32(std::string* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
std::uint64_t GetLE(std::string_view in) {
  std::uint64_t v = 0;
  for (std::size_t i = in.size(); i-- > 0;) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// Whether `d` may be part `i` of `n` after `before` (the parts before it): spans in key
// order covering the key space once, data ranges only, each id once. "" if so.
std::string CheckPart(const std::vector<RangesBackupPart>& before, const RangeDescriptor& d,
                      std::size_t i, std::size_t n) {
  const std::string range = "range " + std::to_string(d.id);
  if (d.id < kFirstDataRange) return range + " is not a data range";
  for (const RangesBackupPart& p : before)
    if (p.range.id == d.id) return range + " appears twice";
  if (d.start != (before.empty() ? std::string() : before.back().range.end))
    return range + " does not start where the one before ends";
  if (d.end.empty() != (i + 1 == n)) return range + " ends the key space out of turn";
  if (!d.end.empty() && d.end <= d.start) return range + " is empty";
  return "";
}

raft::Status CheckCover(const std::vector<RangesBackupPart>& parts) {
  if (parts.empty() || parts.size() > kRangesBackupMaxParts)
    return raft::Status(
        raft::ErrorCode::kInvalidArgument,
        "a ranges backup holds 1 to 1024 ranges, not " + std::to_string(parts.size()));
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::vector<RangesBackupPart> before(parts.begin(), parts.begin() + static_cast<long>(i));
    if (std::string bad = CheckPart(before, parts[i].range, i, parts.size()); !bad.empty())
      return raft::Status(raft::ErrorCode::kInvalidArgument, bad);
  }
  return raft::Status::Ok();
}

enum class CopyResult { kOk, kShortRead, kWriteFailed };

// Copies `n` bytes from `in` to `out`: kShortRead when `in` ends first, kWriteFailed when
// `out` fails (a full disk).
CopyResult Copy(std::istream& in, std::ostream& out, std::uint64_t n) {
  std::string buf(kCopyBytes, '\0');
  std::uint64_t copied = 0;
  while (copied < n) {
    const auto want = static_cast<std::streamsize>(std::min<std::uint64_t>(buf.size(), n - copied));
    in.read(buf.data(), want);
    const std::streamsize got = in.gcount();
    if (got > 0) out.write(buf.data(), got);
    if (!out) return CopyResult::kWriteFailed;
    if (got < want) return CopyResult::kShortRead;
    copied += static_cast<std::uint64_t>(got);
  }
  return CopyResult::kOk;
}

}  // namespace

bool IsRangesBackup(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string magic(kRangesBackupMagic.size(), '\0');
  return f.read(magic.data(), static_cast<std::streamsize>(magic.size())) &&
         magic == kRangesBackupMagic;
}

raft::Result<std::unique_ptr<RangesBackupWriter>> RangesBackupWriter::Create(
    const std::string& path, std::size_t nparts) {
  if (nparts == 0 || nparts > kRangesBackupMaxParts)
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "a ranges backup holds 1 to 1024 ranges, not " + std::to_string(nparts));
  std::unique_ptr<RangesBackupWriter> w(new RangesBackupWriter(path, nparts));
  w->out_.open(w->tmp_, std::ios::binary | std::ios::trunc);
  std::string header(kRangesBackupMagic);
  header.push_back(static_cast<char>(kVersion));
  PutU32(&header, static_cast<std::uint32_t>(nparts));
  PutU32(&header, Crc32c(header));
  w->out_.write(header.data(), static_cast<std::streamsize>(header.size()));
  if (!w->out_) return w->Fail("cannot write " + w->tmp_);
  return w;
}

RangesBackupWriter::~RangesBackupWriter() {
  if (committed_) return;
  out_.close();
  std::error_code ec;
  std::filesystem::remove(tmp_, ec);
}

raft::Status RangesBackupWriter::Fail(const std::string& what) {
  return raft::Status(raft::ErrorCode::kIOError, "ranges backup " + path_ + ": " + what);
}

raft::Status RangesBackupWriter::Add(const RangeDescriptor& range, const std::string& file) {
  if (parts_.size() == nparts_)
    return raft::Status(raft::ErrorCode::kInvalidArgument, "more parts than announced");
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(file, ec);
  if (ec) return Fail("cannot read " + file + ": " + ec.message());
  const std::string d = EncodeDescriptor(range);
  std::string frame;
  PutU32(&frame, static_cast<std::uint32_t>(d.size()));
  frame.append(d);
  PutU64(&frame, size);
  PutU32(&frame, Crc32c(frame));
  out_.write(frame.data(), static_cast<std::streamsize>(frame.size()));
  std::ifstream in(file, std::ios::binary);
  if (!in || Copy(in, out_, size) != CopyResult::kOk) return Fail("cannot copy " + file);
  parts_.push_back(RangesBackupPart{range, file, 0});
  return raft::Status::Ok();
}

raft::Result<std::uint64_t> RangesBackupWriter::Commit() {
  if (parts_.size() != nparts_)
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        std::to_string(parts_.size()) + " parts of " + std::to_string(nparts_));
  if (raft::Status s = CheckCover(parts_); !s.ok()) return s;
  out_.close();
  if (!out_) return Fail("cannot write " + tmp_);
  if (raft::Status s = fs::FsyncPath(tmp_); !s.ok()) return Fail(s.ToString());
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  if (raft::Status s = fs::RenameDurably(tmp_, path_, dir.empty() ? "." : dir); !s.ok())
    return Fail(s.ToString());
  committed_ = true;
  std::error_code ec;
  const std::uint64_t bytes = std::filesystem::file_size(path_, ec);
  if (ec) return Fail(ec.message());
  return bytes;
}

raft::Result<std::uint64_t> WriteRangesBackup(const std::string& path,
                                              const std::vector<RangesBackupPart>& parts) {
  if (raft::Status s = CheckCover(parts); !s.ok()) return s;
  auto w = RangesBackupWriter::Create(path, parts.size());
  if (!w.ok()) return w.status();
  for (const RangesBackupPart& p : parts)
    if (raft::Status s = (*w)->Add(p.range, p.file); !s.ok()) return s;
  return (*w)->Commit();
}

raft::Result<std::vector<RangesBackupPart>> ExtractRangesBackup(
    const std::string& path, const std::string& dir,
    const std::function<raft::Status(const RangesBackupPart&)>& each) {
  auto corrupt = [&](const std::string& what) {
    return raft::Status(raft::ErrorCode::kCorruption, "ranges backup " + path + ": " + what);
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) return raft::Status(raft::ErrorCode::kIOError, "cannot open " + path);
  std::error_code ec;
  const std::uint64_t total = std::filesystem::file_size(path, ec);
  if (ec) return raft::Status(raft::ErrorCode::kIOError, path + ": " + ec.message());
  auto read = [&](std::size_t n, std::string* out) {
    out->assign(n, '\0');
    return static_cast<bool>(in.read(out->data(), static_cast<std::streamsize>(n)));
  };
  std::string header;
  if (!read(kRangesBackupMagic.size() + 1 + 4 + 4, &header)) return corrupt("truncated header");
  if (std::string_view(header).substr(0, kRangesBackupMagic.size()) != kRangesBackupMagic)
    return corrupt("not a ranges backup");
  const std::size_t body = kRangesBackupMagic.size() + 1 + 4;
  if (Crc32c(std::string_view(header).substr(0, body)) !=
      GetLE(std::string_view(header).substr(body, 4)))
    return corrupt("header checksum mismatch");
  if (static_cast<std::uint8_t>(header[kRangesBackupMagic.size()]) != kVersion)
    return corrupt("unknown version " + std::to_string(static_cast<unsigned char>(header[8])));
  const std::uint64_t nparts = GetLE(std::string_view(header).substr(9, 4));
  if (nparts == 0 || nparts > kRangesBackupMaxParts)
    return corrupt("holds " + std::to_string(nparts) + " ranges (1 to 1024)");
  std::vector<RangesBackupPart> parts;
  std::uint64_t offset = header.size();
  for (std::uint64_t i = 0; i < nparts; ++i) {
    std::string dlen_bytes, desc, tail;
    if (!read(4, &dlen_bytes)) return corrupt("truncated at range " + std::to_string(i));
    const std::uint64_t dlen = GetLE(dlen_bytes);
    if (dlen > kMaxDescriptorBytes)
      return corrupt("a descriptor of " + std::to_string(dlen) + " bytes");
    if (!read(dlen, &desc) || !read(12, &tail))
      return corrupt("truncated at range " + std::to_string(i));
    const std::uint64_t size = GetLE(std::string_view(tail).substr(0, 8));
    if (Crc32c(dlen_bytes + desc + tail.substr(0, 8)) != GetLE(std::string_view(tail).substr(8, 4)))
      return corrupt("checksum mismatch at range " + std::to_string(i));
    auto d = DecodeDescriptor(desc);
    if (!d.ok()) return corrupt(d.status().message());
    // Checked before the part is used: a restore acts on each part as it comes.
    if (std::string bad = CheckPart(parts, *d, i, nparts); !bad.empty()) return corrupt(bad);
    offset += 4 + dlen + 12;
    if (size > total - offset) return corrupt("range " + std::to_string(d->id) + " is truncated");
    RangesBackupPart p;
    p.range = *d;
    p.file = dir + "/" + std::to_string(d->id) + ".backup";
    std::ofstream out(p.file, std::ios::binary | std::ios::trunc);
    switch (Copy(in, out, size)) {
      case CopyResult::kOk:
        break;
      case CopyResult::kShortRead:
        return corrupt("range " + std::to_string(d->id) + " is truncated");
      case CopyResult::kWriteFailed:
        return raft::Status(raft::ErrorCode::kIOError, "cannot write " + p.file);
    }
    out.close();
    if (!out) return raft::Status(raft::ErrorCode::kIOError, "cannot write " + p.file);
    offset += size;
    auto info = raft::VerifyBackupFile(p.file);
    if (!info.ok())
      return corrupt("range " + std::to_string(d->id) + ": " + info.status().message());
    p.index = info->meta.index;
    if (each)
      if (raft::Status s = each(p); !s.ok()) return s;
    parts.push_back(std::move(p));
  }
  if (offset != total || in.peek() != std::char_traits<char>::eof())
    return corrupt("trailing bytes after the last range");
  if (raft::Status s = CheckCover(parts); !s.ok()) return corrupt(s.message());
  return parts;
}

raft::Result<std::vector<RangesBackupPart>> VerifyRangesBackup(const std::string& path) {
  const std::string dir = path + ".verify";
  (void)fs::RemoveAll(dir);
  if (raft::Status s = fs::MakeDirs(dir); !s.ok()) return s;
  auto parts = ExtractRangesBackup(path, dir,
                                   [](const RangesBackupPart& p) { return fs::RemoveAll(p.file); });
  (void)fs::RemoveAll(dir);
  return parts;
}

}  // namespace kv
