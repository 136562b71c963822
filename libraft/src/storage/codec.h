// Pure codecs for the three file kinds of docs/storage-format.md: segment records,
// hard-state slots and the snapshot-meta file. No I/O; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "raft/types.h"
#include "storage/format.h"

namespace raft::storage {

// "log-00000000000000000042.seg" for first index 42.
std::string SegmentFileName(std::uint64_t first_index);
// Parses a segment file name; false if `name` is not one.
bool ParseSegmentFileName(std::string_view name, std::uint64_t* first_index);

// Appends the record for `e` to *out. e.data.size() must be <= kRecordPayloadBytesMax.
void EncodeRecord(const Entry& e, std::string* out);

// Appends a sync mark after the entry record (index, term): docs/storage-format.md.
void EncodeSyncMark(Index index, Term term, std::string* out);
inline constexpr std::size_t kSyncMarkBytes = kRecordHeaderBytes;

// Bytes EncodeRecord produces for a payload of `payload_bytes`.
inline std::size_t RecordBytes(std::size_t payload_bytes) {
  return kRecordHeaderBytes + payload_bytes;
}

enum class RecordParse {
  kOk,          // *out filled; out->bytes is the record's total size
  kTruncated,   // fewer than a header's bytes, or the payload runs past `data`'s end
  kBadLength,   // length field above kRecordPayloadBytesMax
  kBadCrc,      // checksum mismatch
  kBadVersion,  // CRC ok, unknown version or type (a newer format, not a torn write)
};

// A parsed record: header fields and a view of the payload inside the parsed buffer.
// A sync mark has sync_mark set, the index and term of the entry before it, no payload.
struct RecordView {
  bool sync_mark = false;
  Index index = 0;
  Term term = 0;
  EntryType type = EntryType::kNormal;
  std::string_view payload;
  std::size_t bytes = 0;
};

// Parses the record at the start of `data`.
RecordParse ParseRecord(std::string_view data, RecordView* out);
const char* RecordParseName(RecordParse p);

// True if some offset in data[from, end) starts a record with a valid CRC (any index).
// Used by recovery to tell a torn tail from corruption before the tail.
bool AnyValidRecordFrom(std::string_view data, std::size_t from);

// Hard-state slot (kHardStateSlotBytes). Decode is false on a bad CRC or version.
void EncodeHardStateSlot(std::uint64_t seq, const HardState& hs, char* slot);
bool DecodeHardStateSlot(const char* slot, std::uint64_t* seq, HardState* hs);

// Snapshot-meta file contents. Decode is false on any grammar or CRC violation.
std::string EncodeSnapshotMeta(const SnapshotMeta& meta);
bool DecodeSnapshotMeta(std::string_view data, SnapshotMeta* meta);
// The body alone (no crc and length): the payload of the shared log's snapshot and
// install records (docs/storage-format.md, "The shared log of a host").
std::string EncodeSnapshotMetaBody(const SnapshotMeta& meta);
bool DecodeSnapshotMetaBody(std::string_view body, SnapshotMeta* meta);

}  // namespace raft::storage
