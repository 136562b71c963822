// On-disk constants of DiskStorage. docs/storage-format.md is the specification; the
// two change together. Fields are little-endian (raft/coding.h); CRCs are CRC32C, masked
// (base/crc32c.h). Pure, header-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace raft::storage {

// --- Directory
inline constexpr std::string_view kLockFile = "LOCK";
inline constexpr std::string_view kHardStateFile = "hardstate";
inline constexpr std::string_view kSnapshotMetaFile = "snapshot.meta";
inline constexpr std::string_view kTempSuffix = ".tmp";
inline constexpr std::string_view kSegmentPrefix = "log-";
inline constexpr std::string_view kSegmentSuffix = ".seg";
inline constexpr std::size_t kSegmentIndexDigits = 20;

// --- Segment records: crc:u32 length:u32 version:u8 type:u8 index:u64 term:u64 payload
inline constexpr std::size_t kRecordHeaderBytes = 26;
inline constexpr std::size_t kRecordCrcOffset = 0;
inline constexpr std::size_t kRecordLengthOffset = 4;
inline constexpr std::size_t kRecordVersionOffset = 8;
inline constexpr std::size_t kRecordTypeOffset = 9;
inline constexpr std::size_t kRecordIndexOffset = 10;
inline constexpr std::size_t kRecordTermOffset = 18;
// Version 2 added the sync mark (type 2); version 1 records (types 0, 1) are still read.
inline constexpr std::uint8_t kRecordVersion = 2;  // written
inline constexpr std::uint8_t kRecordVersionMin = 1;
inline constexpr std::uint8_t kRecordTypeEntryMax = 1;  // EntryType::kConfChange
inline constexpr std::uint8_t kRecordTypeSyncMark = 2;  // no payload; version >= 2
inline constexpr std::uint8_t kRecordTypeMax = kRecordTypeSyncMark;
inline constexpr std::uint32_t kRecordPayloadBytesMax = 64u << 20;

// --- Shared log of a host (docs/storage-format.md, "The shared log of a host"):
// crc:u32 length:u32 version:u8(=3) type:u8 group:u64 index:u64 term:u64 payload
inline constexpr std::string_view kGroupSegmentPrefix = "glog-";
inline constexpr std::size_t kGroupRecordHeaderBytes = 34;
inline constexpr std::size_t kGroupRecordGroupOffset = 10;
inline constexpr std::size_t kGroupRecordIndexOffset = 18;
inline constexpr std::size_t kGroupRecordTermOffset = 26;
inline constexpr std::uint8_t kGroupRecordVersion = 3;
inline constexpr std::size_t kGroupHardStateBytes = 24;  // term vote commit

// --- Hard-state file: two 40-byte slots at offsets 0 and 512, file is 1024 bytes.
// slot := crc:u32 version:u8 zero:u8[3] seq:u64 term:u64 vote:u64 commit:u64
inline constexpr std::size_t kHardStateSlotBytes = 40;
inline constexpr std::size_t kHardStateSlotStride = 512;
inline constexpr std::size_t kHardStateFileBytes = 2 * kHardStateSlotStride;
inline constexpr std::uint8_t kHardStateVersion = 1;

// --- Snapshot-meta file: crc:u32 length:u32 body (version:u8 zero:u8[3] index:u64
// term:u64 voter_count:u32 learner_count:u32 voters:u64[] learners:u64[])
inline constexpr std::size_t kSnapshotMetaPrefixBytes = 8;
inline constexpr std::size_t kSnapshotMetaFixedBodyBytes = 28;
inline constexpr std::uint8_t kSnapshotMetaVersion = 1;
inline constexpr std::uint32_t kSnapshotMetaMembersMax = 1u << 16;

}  // namespace raft::storage
