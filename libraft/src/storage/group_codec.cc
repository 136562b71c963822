#include "storage/group_codec.h"

#include "base/assert.h"
#include "base/crc32c.h"
#include "raft/coding.h"

namespace raft::storage {

namespace {

using base::Crc32cExtend;
using base::MaskCrc;

void EncodeGroupRecord(GroupRecordType type, GroupId group, Index index, Term term,
                       std::string_view payload, std::string* out) {
  RAFT_ASSERT(payload.size() <= kRecordPayloadBytesMax, "shared log record payload too large");
  const std::size_t start = out->size();
  out->resize(start + kGroupRecordHeaderBytes);
  char* h = out->data() + start;
  EncodeFixed32(h + kRecordLengthOffset, static_cast<std::uint32_t>(payload.size()));
  h[kRecordVersionOffset] = static_cast<char>(kGroupRecordVersion);
  h[kRecordTypeOffset] = static_cast<char>(type);
  EncodeFixed64(h + kGroupRecordGroupOffset, group);
  EncodeFixed64(h + kGroupRecordIndexOffset, index);
  EncodeFixed64(h + kGroupRecordTermOffset, term);
  std::uint32_t crc = Crc32cExtend(0, h + kRecordLengthOffset, kGroupRecordHeaderBytes - 4);
  crc = Crc32cExtend(crc, payload.data(), payload.size());
  EncodeFixed32(h + kRecordCrcOffset, MaskCrc(crc));
  out->append(payload);
}

// Whether the header fields and payload length fit the record's type (grammar only).
bool FieldsFit(const GroupRecord& r) {
  switch (r.type) {
    case GroupRecordType::kEntryNormal:
    case GroupRecordType::kEntryConfChange:
      return r.group != 0 && r.index != 0;
    case GroupRecordType::kSyncMark:
      return r.group == 0 && r.index == 0 && r.term == 0 && r.payload.empty();
    case GroupRecordType::kHardState:
      return r.group != 0 && r.index == 0 && r.term == 0 &&
             r.payload.size() == kGroupHardStateBytes;
    case GroupRecordType::kSnapshot:
    case GroupRecordType::kInstall:
      return r.group != 0;  // the payload is checked by decoding it
    case GroupRecordType::kCompact:
      return r.group != 0 && r.payload.empty();
    case GroupRecordType::kRemoved:
      return r.group != 0 && r.index == 0 && r.term == 0 && r.payload.empty();
  }
  return false;
}

}  // namespace

void EncodeGroupEntry(GroupId group, const Entry& e, std::string* out) {
  RAFT_ASSERT(group != 0, "group 0");
  EncodeGroupRecord(e.type == EntryType::kConfChange ? GroupRecordType::kEntryConfChange
                                                     : GroupRecordType::kEntryNormal,
                    group, e.index, e.term, e.data, out);
}

void EncodeGroupSyncMark(std::string* out) {
  EncodeGroupRecord(GroupRecordType::kSyncMark, 0, 0, 0, {}, out);
}

void EncodeGroupHardState(GroupId group, const HardState& hs, std::string* out) {
  RAFT_ASSERT(group != 0, "group 0");
  char p[kGroupHardStateBytes];
  EncodeFixed64(p, hs.term);
  EncodeFixed64(p + 8, hs.vote);
  EncodeFixed64(p + 16, hs.commit);
  EncodeGroupRecord(GroupRecordType::kHardState, group, 0, 0, std::string_view(p, sizeof p), out);
}

void EncodeGroupSnapshot(GroupId group, const SnapshotMeta& meta, bool install, std::string* out) {
  RAFT_ASSERT(group != 0, "group 0");
  EncodeGroupRecord(install ? GroupRecordType::kInstall : GroupRecordType::kSnapshot, group,
                    meta.index, meta.term, EncodeSnapshotMetaBody(meta), out);
}

void EncodeGroupCompact(GroupId group, Index index, Term term, std::string* out) {
  RAFT_ASSERT(group != 0, "group 0");
  EncodeGroupRecord(GroupRecordType::kCompact, group, index, term, {}, out);
}

void EncodeGroupRemoved(GroupId group, std::string* out) {
  RAFT_ASSERT(group != 0, "group 0");
  EncodeGroupRecord(GroupRecordType::kRemoved, group, 0, 0, {}, out);
}

RecordParse ParseGroupRecord(std::string_view data, GroupRecord* out) {
  if (data.size() < kGroupRecordHeaderBytes) return RecordParse::kTruncated;
  const char* h = data.data();
  const std::uint32_t length = DecodeFixed32(h + kRecordLengthOffset);
  if (length > kRecordPayloadBytesMax) return RecordParse::kBadLength;
  if (data.size() - kGroupRecordHeaderBytes < length) return RecordParse::kTruncated;
  const std::uint32_t crc =
      Crc32cExtend(0, h + kRecordLengthOffset, kGroupRecordHeaderBytes - 4 + length);
  if (MaskCrc(crc) != DecodeFixed32(h + kRecordCrcOffset)) return RecordParse::kBadCrc;
  const auto version = static_cast<std::uint8_t>(h[kRecordVersionOffset]);
  const auto type = static_cast<std::uint8_t>(h[kRecordTypeOffset]);
  if (version != kGroupRecordVersion || type > kGroupRecordTypeMax) return RecordParse::kBadVersion;
  GroupRecord r;
  r.type = static_cast<GroupRecordType>(type);
  r.group = DecodeFixed64(h + kGroupRecordGroupOffset);
  r.index = DecodeFixed64(h + kGroupRecordIndexOffset);
  r.term = DecodeFixed64(h + kGroupRecordTermOffset);
  r.payload = data.substr(kGroupRecordHeaderBytes, length);
  r.bytes = kGroupRecordHeaderBytes + length;
  if (!FieldsFit(r)) return RecordParse::kBadVersion;
  if (r.type == GroupRecordType::kHardState) {
    r.hard_state.term = DecodeFixed64(r.payload.data());
    r.hard_state.vote = DecodeFixed64(r.payload.data() + 8);
    r.hard_state.commit = DecodeFixed64(r.payload.data() + 16);
  } else if (r.type == GroupRecordType::kSnapshot || r.type == GroupRecordType::kInstall) {
    if (!DecodeSnapshotMetaBody(r.payload, &r.snapshot) || r.snapshot.index != r.index ||
        r.snapshot.term != r.term)
      return RecordParse::kBadVersion;
  }
  *out = std::move(r);
  return RecordParse::kOk;
}

}  // namespace raft::storage
