// Records of the shared log of a host of many groups (record version 3:
// docs/storage-format.md, "The shared log of a host"). Pure codecs: no I/O; thread-safe.
// The files, Sync, recovery and reclamation around them are not built yet; replay of
// decoded records is storage/group_replay.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "raft/types.h"
#include "storage/codec.h"
#include "storage/format.h"

namespace raft::storage {

using GroupId = std::uint64_t;

enum class GroupRecordType : std::uint8_t {
  kEntryNormal = 0,      // EntryType::kNormal
  kEntryConfChange = 1,  // EntryType::kConfChange
  kSyncMark = 2,
  kHardState = 3,
  kSnapshot = 4,  // a snapshot the group took: entries stay
  kInstall = 5,   // a snapshot the group received: its log is discarded
  kCompact = 6,   // entries at or below `index` discarded; `term` is entry index's
  kRemoved = 7,
};
inline constexpr std::uint8_t kGroupRecordTypeMax = 7;

// A parsed record; payload is a view into the parsed buffer. For hard state, snapshot
// and install records the payload is decoded too.
struct GroupRecord {
  GroupRecordType type = GroupRecordType::kEntryNormal;
  GroupId group = 0;
  Index index = 0;
  Term term = 0;
  std::string_view payload;
  std::size_t bytes = 0;  // header + payload
  HardState hard_state;   // kHardState
  SnapshotMeta snapshot;  // kSnapshot, kInstall

  bool entry() const {
    return type == GroupRecordType::kEntryNormal || type == GroupRecordType::kEntryConfChange;
  }
};

// Encoders append one record to *out. Preconditions (asserted): group != 0; an entry's
// data at most kRecordPayloadBytesMax.
void EncodeGroupEntry(GroupId group, const Entry& e, std::string* out);
void EncodeGroupSyncMark(std::string* out);
void EncodeGroupHardState(GroupId group, const HardState& hs, std::string* out);
// kSnapshot, or kInstall when `install`.
void EncodeGroupSnapshot(GroupId group, const SnapshotMeta& meta, bool install, std::string* out);
void EncodeGroupCompact(GroupId group, Index index, Term term, std::string* out);
void EncodeGroupRemoved(GroupId group, std::string* out);

// Parses the record at the start of `data`. kBadVersion covers every record whose CRC is
// valid but whose content is not a version-3 record of a known type with the fields and
// payload that type requires (a newer format or a bug, never a torn write).
RecordParse ParseGroupRecord(std::string_view data, GroupRecord* out);

}  // namespace raft::storage
