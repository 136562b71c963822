#include "storage/codec.h"

#include <cstdio>

#include "base/crc32c.h"
#include "raft/coding.h"
#include "storage/format.h"

namespace raft::storage {

using base::Crc32cExtend;
using base::MaskCrc;
using raft::DecodeFixed32;
using raft::DecodeFixed64;
using raft::EncodeFixed32;
using raft::EncodeFixed64;

std::string SegmentFileName(std::uint64_t first_index) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s%020llu%s", kSegmentPrefix.data(),
                static_cast<unsigned long long>(first_index), kSegmentSuffix.data());
  return buf;
}

bool ParseSegmentFileName(std::string_view name, std::uint64_t* first_index) {
  if (name.size() != kSegmentPrefix.size() + kSegmentIndexDigits + kSegmentSuffix.size())
    return false;
  if (!name.starts_with(kSegmentPrefix) || !name.ends_with(kSegmentSuffix)) return false;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < kSegmentIndexDigits; ++i) {
    char c = name[kSegmentPrefix.size() + i];
    if (c < '0' || c > '9') return false;
    std::uint64_t next = v * 10 + static_cast<std::uint64_t>(c - '0');
    if (next / 10 != v) return false;  // overflow
    v = next;
  }
  *first_index = v;
  return true;
}

namespace {

void EncodeRecordOfType(std::uint8_t type, Index index, Term term, std::string_view payload,
                        std::string* out) {
  std::size_t start = out->size();
  out->resize(start + kRecordHeaderBytes);
  char* h = out->data() + start;
  EncodeFixed32(h + kRecordLengthOffset, static_cast<std::uint32_t>(payload.size()));
  h[kRecordVersionOffset] = static_cast<char>(kRecordVersion);
  h[kRecordTypeOffset] = static_cast<char>(type);
  EncodeFixed64(h + kRecordIndexOffset, index);
  EncodeFixed64(h + kRecordTermOffset, term);
  std::uint32_t crc = Crc32cExtend(0, h + kRecordLengthOffset, kRecordHeaderBytes - 4);
  crc = Crc32cExtend(crc, payload.data(), payload.size());
  EncodeFixed32(h + kRecordCrcOffset, MaskCrc(crc));
  out->append(payload);
}

}  // namespace

void EncodeRecord(const Entry& e, std::string* out) {
  EncodeRecordOfType(static_cast<std::uint8_t>(e.type), e.index, e.term, e.data, out);
}

void EncodeSyncMark(Index index, Term term, std::string* out) {
  EncodeRecordOfType(kRecordTypeSyncMark, index, term, {}, out);
}

RecordParse ParseRecord(std::string_view data, RecordView* out) {
  if (data.size() < kRecordHeaderBytes) return RecordParse::kTruncated;
  const char* h = data.data();
  std::uint32_t length = DecodeFixed32(h + kRecordLengthOffset);
  if (length > kRecordPayloadBytesMax) return RecordParse::kBadLength;
  if (data.size() - kRecordHeaderBytes < length) return RecordParse::kTruncated;
  std::uint32_t crc = Crc32cExtend(0, h + kRecordLengthOffset, kRecordHeaderBytes - 4 + length);
  if (MaskCrc(crc) != DecodeFixed32(h + kRecordCrcOffset)) return RecordParse::kBadCrc;
  auto version = static_cast<std::uint8_t>(h[kRecordVersionOffset]);
  auto type = static_cast<std::uint8_t>(h[kRecordTypeOffset]);
  if (version < kRecordVersionMin || version > kRecordVersion || type > kRecordTypeMax)
    return RecordParse::kBadVersion;
  const bool mark = type == kRecordTypeSyncMark;
  if (mark && (version < 2 || length != 0)) return RecordParse::kBadVersion;
  out->sync_mark = mark;
  out->index = DecodeFixed64(h + kRecordIndexOffset);
  out->term = DecodeFixed64(h + kRecordTermOffset);
  out->type = mark ? EntryType::kNormal : static_cast<EntryType>(type);
  out->payload = data.substr(kRecordHeaderBytes, length);
  out->bytes = kRecordHeaderBytes + length;
  return RecordParse::kOk;
}

const char* RecordParseName(RecordParse p) {
  switch (p) {
    case RecordParse::kOk:
      return "ok";
    case RecordParse::kTruncated:
      return "record runs past the end of the file";
    case RecordParse::kBadLength:
      return "length field out of range";
    case RecordParse::kBadCrc:
      return "checksum mismatch";
    case RecordParse::kBadVersion:
      return "unknown record version or type";
  }
  return "?";
}

bool AnyValidRecordFrom(std::string_view data, std::size_t from) {
  for (std::size_t off = from; off + kRecordHeaderBytes <= data.size(); ++off) {
    // Cheap filters first, so the CRC runs on few candidate offsets.
    const auto version = static_cast<std::uint8_t>(data[off + kRecordVersionOffset]);
    if (version < kRecordVersionMin || version > kRecordVersion) continue;
    if (static_cast<std::uint8_t>(data[off + kRecordTypeOffset]) > kRecordTypeMax) continue;
    RecordView v;
    RecordParse p = ParseRecord(data.substr(off), &v);
    if (p == RecordParse::kOk || p == RecordParse::kBadVersion) return true;
  }
  return false;
}

void EncodeHardStateSlot(std::uint64_t seq, const HardState& hs, char* slot) {
  for (std::size_t i = 0; i < kHardStateSlotBytes; ++i) slot[i] = 0;
  slot[4] = static_cast<char>(kHardStateVersion);
  EncodeFixed64(slot + 8, seq);
  EncodeFixed64(slot + 16, hs.term);
  EncodeFixed64(slot + 24, hs.vote);
  EncodeFixed64(slot + 32, hs.commit);
  EncodeFixed32(slot, MaskCrc(Crc32cExtend(0, slot + 4, kHardStateSlotBytes - 4)));
}

bool DecodeHardStateSlot(const char* slot, std::uint64_t* seq, HardState* hs) {
  if (MaskCrc(Crc32cExtend(0, slot + 4, kHardStateSlotBytes - 4)) != DecodeFixed32(slot))
    return false;
  if (static_cast<std::uint8_t>(slot[4]) != kHardStateVersion) return false;
  *seq = DecodeFixed64(slot + 8);
  hs->term = DecodeFixed64(slot + 16);
  hs->vote = DecodeFixed64(slot + 24);
  hs->commit = DecodeFixed64(slot + 32);
  return true;
}

std::string EncodeSnapshotMeta(const SnapshotMeta& meta) {
  std::size_t members = meta.conf.voters.size() + meta.conf.learners.size();
  std::string out(kSnapshotMetaPrefixBytes + kSnapshotMetaFixedBodyBytes + 8 * members, '\0');
  char* b = out.data() + kSnapshotMetaPrefixBytes;
  b[0] = static_cast<char>(kSnapshotMetaVersion);
  EncodeFixed64(b + 4, meta.index);
  EncodeFixed64(b + 12, meta.term);
  EncodeFixed32(b + 20, static_cast<std::uint32_t>(meta.conf.voters.size()));
  EncodeFixed32(b + 24, static_cast<std::uint32_t>(meta.conf.learners.size()));
  char* p = b + kSnapshotMetaFixedBodyBytes;
  for (NodeId id : meta.conf.voters) EncodeFixed64(p, id), p += 8;
  for (NodeId id : meta.conf.learners) EncodeFixed64(p, id), p += 8;
  EncodeFixed32(out.data() + 4, static_cast<std::uint32_t>(out.size() - kSnapshotMetaPrefixBytes));
  EncodeFixed32(out.data(), MaskCrc(Crc32cExtend(0, out.data() + 4, out.size() - 4)));
  return out;
}

bool DecodeSnapshotMeta(std::string_view data, SnapshotMeta* meta) {
  if (data.size() < kSnapshotMetaPrefixBytes + kSnapshotMetaFixedBodyBytes) return false;
  if (DecodeFixed32(data.data() + 4) != data.size() - kSnapshotMetaPrefixBytes) return false;
  if (MaskCrc(Crc32cExtend(0, data.data() + 4, data.size() - 4)) != DecodeFixed32(data.data()))
    return false;
  return DecodeSnapshotMetaBody(data.substr(kSnapshotMetaPrefixBytes), meta);
}

std::string EncodeSnapshotMetaBody(const SnapshotMeta& meta) {
  return EncodeSnapshotMeta(meta).substr(kSnapshotMetaPrefixBytes);
}

bool DecodeSnapshotMetaBody(std::string_view body, SnapshotMeta* meta) {
  if (body.size() < kSnapshotMetaFixedBodyBytes) return false;
  const char* b = body.data();
  if (static_cast<std::uint8_t>(b[0]) != kSnapshotMetaVersion) return false;
  std::uint32_t voters = DecodeFixed32(b + 20);
  std::uint32_t learners = DecodeFixed32(b + 24);
  if (voters > kSnapshotMetaMembersMax || learners > kSnapshotMetaMembersMax) return false;
  if (body.size() != kSnapshotMetaFixedBodyBytes + 8 * (std::size_t{voters} + learners))
    return false;
  SnapshotMeta m;
  m.index = DecodeFixed64(b + 4);
  m.term = DecodeFixed64(b + 12);
  const char* p = b + kSnapshotMetaFixedBodyBytes;
  for (std::uint32_t i = 0; i < voters; ++i, p += 8) m.conf.voters.insert(DecodeFixed64(p));
  for (std::uint32_t i = 0; i < learners; ++i, p += 8) m.conf.learners.insert(DecodeFixed64(p));
  *meta = std::move(m);
  return true;
}

}  // namespace raft::storage
