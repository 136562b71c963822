// Pure codecs of docs/storage-format.md.
#include "storage/codec.h"

#include <catch2/catch.hpp>

#include "base/crc32c.h"
#include "raft/coding.h"
#include "storage/format.h"
#include "test_util.h"

namespace raft::storage::testing {
namespace {

using base::Crc32c;
using base::Crc32cExtend;
using base::MaskCrc;
using base::UnmaskCrc;

TEST_CASE("crc32c known values and mask", "[storage][codec]") {
  CHECK(Crc32c("123456789") == 0xE3069283u);
  CHECK(Crc32c("") == 0u);
  CHECK(Crc32cExtend(Crc32c("1234"), "56789", 5) == 0xE3069283u);
  for (std::uint32_t v : {0u, 1u, 0xE3069283u, 0xffffffffu}) {
    CHECK(UnmaskCrc(MaskCrc(v)) == v);
    CHECK(MaskCrc(v) != v);
  }
}

TEST_CASE("segment file names", "[storage][codec]") {
  CHECK(SegmentFileName(42) == "log-00000000000000000042.seg");
  Index i = 0;
  CHECK(ParseSegmentFileName("log-18446744073709551615.seg", &i));
  CHECK(i == UINT64_MAX);
  CHECK_FALSE(ParseSegmentFileName("log-18446744073709551616.seg", &i));  // overflow
  CHECK_FALSE(ParseSegmentFileName("log-0000000000000000004.seg", &i));
  CHECK_FALSE(ParseSegmentFileName("log-0000000000000000004x.seg", &i));
  CHECK_FALSE(ParseSegmentFileName("log-00000000000000000042.seg.tmp", &i));
}

TEST_CASE("record round trip and every parse failure", "[storage][codec]") {
  Entry e = MakeEntry(7, 3, 50);
  e.type = EntryType::kConfChange;
  std::string rec;
  EncodeRecord(e, &rec);
  REQUIRE(rec.size() == RecordBytes(50));
  RecordView v;
  const std::string with_trailer = rec + "trailing";  // v.payload points into it
  REQUIRE(ParseRecord(with_trailer, &v) == RecordParse::kOk);
  CHECK(v.index == 7);
  CHECK(v.term == 3);
  CHECK(v.type == EntryType::kConfChange);
  CHECK(v.payload == e.data);
  CHECK(v.bytes == rec.size());

  for (std::size_t n = 0; n < rec.size(); ++n) {
    RecordParse p = ParseRecord(std::string_view(rec).substr(0, n), &v);
    CHECK((p == RecordParse::kTruncated || p == RecordParse::kBadLength));
  }
  // Every single-bit flip is detected.
  for (std::size_t k = 0; k < rec.size(); ++k) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = rec;
      bad[k] = static_cast<char>(bad[k] ^ (1 << bit));
      CHECK(ParseRecord(bad, &v) != RecordParse::kOk);
    }
  }
  // A valid CRC over an unknown version is a newer format, not a torn write.
  auto with_version = [&](const std::string& r, std::uint8_t version) {
    std::string out = r;
    out[kRecordVersionOffset] = static_cast<char>(version);
    std::uint32_t crc = Crc32cExtend(0, out.data() + 4, out.size() - 4);
    raft::EncodeFixed32(out.data(), MaskCrc(crc));
    return out;
  };
  CHECK(ParseRecord(with_version(rec, kRecordVersion + 1), &v) == RecordParse::kBadVersion);
  CHECK(ParseRecord(with_version(rec, 0), &v) == RecordParse::kBadVersion);
  // Version 1 records (written before sync marks existed) are still read.
  REQUIRE(ParseRecord(with_version(rec, 1), &v) == RecordParse::kOk);
  CHECK(v.index == 7);
  CHECK_FALSE(v.sync_mark);
  // Zeros never parse.
  CHECK(ParseRecord(std::string(100, '\0'), &v) == RecordParse::kBadCrc);
  CHECK_FALSE(AnyValidRecordFrom(std::string(300, '\0'), 0));
  CHECK(AnyValidRecordFrom(std::string(13, 'x') + rec, 1));
  CHECK_FALSE(AnyValidRecordFrom(std::string(13, 'x') + rec, 14));
}

TEST_CASE("sync mark round trip; version 2 only, no payload", "[storage][codec]") {
  std::string mark;
  EncodeSyncMark(41, 6, &mark);
  REQUIRE(mark.size() == kSyncMarkBytes);
  RecordView v;
  REQUIRE(ParseRecord(mark, &v) == RecordParse::kOk);
  CHECK(v.sync_mark);
  CHECK(v.index == 41);
  CHECK(v.term == 6);
  CHECK(v.bytes == kSyncMarkBytes);
  CHECK(AnyValidRecordFrom(std::string(5, 'x') + mark, 1));
  // A version-1 sync mark, or one with a payload, is not a format we wrote.
  std::string v1 = mark;
  v1[kRecordVersionOffset] = 1;
  raft::EncodeFixed32(v1.data(), MaskCrc(Crc32cExtend(0, v1.data() + 4, v1.size() - 4)));
  CHECK(ParseRecord(v1, &v) == RecordParse::kBadVersion);
  std::string with_payload = mark + "x";
  raft::EncodeFixed32(with_payload.data() + kRecordLengthOffset, 1);
  raft::EncodeFixed32(with_payload.data(),
                      MaskCrc(Crc32cExtend(0, with_payload.data() + 4, with_payload.size() - 4)));
  CHECK(ParseRecord(with_payload, &v) == RecordParse::kBadVersion);
}

TEST_CASE("hard-state slot round trip", "[storage][codec]") {
  char slot[kHardStateSlotBytes];
  EncodeHardStateSlot(9, HardState{4, 2, 77}, slot);
  std::uint64_t seq = 0;
  HardState hs;
  REQUIRE(DecodeHardStateSlot(slot, &seq, &hs));
  CHECK(seq == 9);
  CHECK(hs == HardState{4, 2, 77});
  for (std::size_t k = 0; k < sizeof(slot); ++k) {
    char copy[kHardStateSlotBytes];
    std::copy(slot, slot + sizeof(slot), copy);
    copy[k] ^= 0x10;
    CHECK_FALSE(DecodeHardStateSlot(copy, &seq, &hs));
  }
  char zeros[kHardStateSlotBytes] = {};
  CHECK_FALSE(DecodeHardStateSlot(zeros, &seq, &hs));
}

TEST_CASE("snapshot meta round trip", "[storage][codec]") {
  SnapshotMeta m{100, 7, ConfState{{1, 2, 3}, {9}}};
  std::string data = EncodeSnapshotMeta(m);
  SnapshotMeta out;
  REQUIRE(DecodeSnapshotMeta(data, &out));
  CHECK(out == m);
  for (std::size_t k = 0; k < data.size(); ++k) {
    std::string bad = data;
    bad[k] ^= 0x01;
    CHECK_FALSE(DecodeSnapshotMeta(bad, &out));
  }
  CHECK_FALSE(DecodeSnapshotMeta(data.substr(0, data.size() - 1), &out));
  CHECK_FALSE(DecodeSnapshotMeta("", &out));
}

}  // namespace
}  // namespace raft::storage::testing
