// Recovery on open (docs/storage-format.md, "Recovery on open"): torn tails are
// truncated, damage anywhere else is kCorruption naming file and byte offset.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "raft/disk_storage.h"
#include "storage/codec.h"
#include "test_util.h"

namespace raft::storage::testing {
namespace {

// 3 closed segments of 4 records and a last segment of 4 records with payload sizes
// 40, 0, 7, 30 (so record boundaries fall at irregular offsets). Returns the entries.
std::vector<Entry> BuildStore(const std::string& dir, const DiskStorageOptions& opts) {
  auto s = std::move(DiskStorage::Open(dir, opts)).value();
  std::vector<Entry> all = MakeEntries(1, 13, 1, 40);
  REQUIRE(s->Append(all).ok());
  std::vector<Entry> tail = {MakeEntry(13, 2, 40), MakeEntry(14, 2, 0), MakeEntry(15, 2, 7),
                             MakeEntry(16, 3, 30)};
  REQUIRE(s->Append(tail).ok());
  REQUIRE(s->SetHardState({3, 1, 16}).ok());
  REQUIRE(s->Sync().ok());
  REQUIRE(s->SegmentCount() == 4);
  all.insert(all.end(), tail.begin(), tail.end());
  return all;
}

DiskStorageOptions SmallSegments() {
  DiskStorageOptions opts;
  opts.segment_bytes_target = 4 * RecordBytes(40);
  return opts;
}

const std::string kSeg1 = "log-00000000000000000001.seg";
const std::string kSeg5 = "log-00000000000000000005.seg";
const std::string kLast = "log-00000000000000000013.seg";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_CASE("cutting the last segment at every byte offset opens with a prefix",
          "[storage][recovery]") {
  TempDir dir;
  auto all = BuildStore(dir.path(), SmallSegments());
  const std::string last = ReadFile(dir.File(kLast));
  std::vector<std::size_t> ends;  // end offset of each record of the last segment
  std::vector<bool> mark;         // whether that record is a sync mark
  for (std::size_t off = 0; off < last.size();) {
    RecordView v;
    REQUIRE(ParseRecord(std::string_view(last).substr(off), &v) == RecordParse::kOk);
    off += v.bytes;
    ends.push_back(off);
    mark.push_back(v.sync_mark);
  }
  REQUIRE(ends.size() == 5);  // four entries, then the mark of the Sync
  REQUIRE(mark == std::vector<bool>{false, false, false, false, true});
  FaultyFileSystem no_sync;  // the repair's effect is checked on the file, not its durability
  no_sync.syncs_are_noops = true;
  DiskStorageOptions opts = SmallSegments();
  opts.file_system = &no_sync;
  for (std::size_t cut = 0; cut <= last.size(); ++cut) {
    WriteFile(dir.File(kLast), last.substr(0, cut));
    auto r = DiskStorage::Open(dir.path(), opts);
    INFO("cut at " << cut << ": " << r.status().message());
    REQUIRE(r.ok());
    const DiskStorage& s = **r;
    std::size_t whole = 0;
    while (whole < ends.size() && ends[whole] <= cut) ++whole;
    const std::size_t entries = std::min<std::size_t>(whole, 4);
    REQUIRE(s.LastIndex() == 12 + entries);
    auto ents = s.Entries(1, s.LastIndex() + 1, UINT64_MAX);
    REQUIRE(ents.ok());
    CHECK(*ents == std::vector<Entry>(all.begin(), all.begin() + 12 + entries));
    const bool at_boundary = cut == 0 || (whole > 0 && ends[whole - 1] == cut);
    CHECK(s.recovery_notes().size() == (at_boundary ? 0u : 1u));
    if (!at_boundary) CHECK(Contains(s.recovery_notes()[0], "torn write"));
    // The repair was durable: the file now ends at the last whole record, and a sync
    // mark follows the recovered (now synced) entries if none did.
    const std::size_t size =
        whole == 0 ? 0 : ends[whole - 1] + (mark[whole - 1] ? 0 : kSyncMarkBytes);
    CHECK(std::filesystem::file_size(dir.File(kLast)) == size);
  }
}

TEST_CASE("a torn tail of zeros or garbage is truncated", "[storage][recovery]") {
  TempDir dir;
  auto all = BuildStore(dir.path(), SmallSegments());
  const std::string last = ReadFile(dir.File(kLast));
  for (const std::string& junk : {std::string(4096, '\0'), std::string(100, '\xab')}) {
    WriteFile(dir.File(kLast), last + junk);
    auto r = DiskStorage::Open(dir.path(), SmallSegments());
    REQUIRE(r.ok());
    CHECK((*r)->LastIndex() == 16);
    REQUIRE((*r)->recovery_notes().size() == 1);
    CHECK(Contains((*r)->recovery_notes()[0], fmt::format("byte offset {}", last.size())));
  }
}

TEST_CASE("a flipped byte in a closed segment is corruption naming file and offset",
          "[storage][recovery]") {
  TempDir dir;
  BuildStore(dir.path(), SmallSegments());
  const std::string seg = ReadFile(dir.File(kSeg5));
  const std::size_t rec = RecordBytes(40);
  // Every byte of the second record (index 6), including the last record of the file.
  for (std::size_t k = rec; k < seg.size(); k += (k < 2 * rec ? 1 : 17)) {
    std::string bad = seg;
    bad[k] = static_cast<char>(bad[k] ^ 0x5a);
    WriteFile(dir.File(kSeg5), bad);
    auto r = DiskStorage::Open(dir.path(), SmallSegments());
    INFO("flip at " << k);
    REQUIRE(r.status().code() == ErrorCode::kCorruption);
    const std::string& msg = r.status().message();
    INFO(msg);
    CHECK(Contains(msg, kSeg5));
    CHECK(Contains(msg, fmt::format("byte offset {}", k / rec * rec)));
  }
  // A closed segment cut short is corruption too, not a torn write.
  WriteFile(dir.File(kSeg5), seg.substr(0, seg.size() - 1));
  CHECK(DiskStorage::Open(dir.path(), SmallSegments()).status().code() == ErrorCode::kCorruption);
}

TEST_CASE("a flipped byte before the tail of the last segment is corruption",
          "[storage][recovery]") {
  TempDir dir;
  BuildStore(dir.path(), SmallSegments());
  const std::string last = ReadFile(dir.File(kLast));
  const std::size_t second = RecordBytes(40), third = second + RecordBytes(0);
  // Every byte of the first three records: a valid record follows each.
  for (std::size_t k = 0; k < third + RecordBytes(7); ++k) {
    std::string bad = last;
    bad[k] = static_cast<char>(bad[k] ^ 0x01);
    WriteFile(dir.File(kLast), bad);
    auto r = DiskStorage::Open(dir.path(), SmallSegments());
    INFO("flip at " << k << ": " << r.status().message());
    REQUIRE(r.status().code() == ErrorCode::kCorruption);
    const std::size_t rec_start = k < second ? 0 : k < third ? second : third;
    CHECK(Contains(r.status().message(), kLast));
    CHECK(Contains(r.status().message(), fmt::format("byte offset {}", rec_start)));
    CHECK(Contains(r.status().message(), "not a torn write"));
  }
}

// Issue 13, defect 8 (safety.md finding 8): the hard state's commit index is written only
// on a term or vote change, so it no longer catches a committed entry lost at the tail.
// The sync mark after every synced batch does: the damaged final entry record has a
// valid record after it. Before sync marks this opened, silently without entry 16.
TEST_CASE("a damaged final entry record that was synced is corruption, not a torn write",
          "[storage][recovery]") {
  TempDir dir;
  BuildStore(dir.path(), SmallSegments());  // 1..16 appended, synced, commit = 16
  const std::string last = ReadFile(dir.File(kLast));
  const std::size_t final_record = RecordBytes(40) + RecordBytes(0) + RecordBytes(7);
  for (std::size_t k :
       {final_record, final_record + 5, final_record + 20, final_record + RecordBytes(30) - 1}) {
    std::string bad = last;
    bad[k] = static_cast<char>(bad[k] ^ 0x10);
    WriteFile(dir.File(kLast), bad);
    auto r = DiskStorage::Open(dir.path(), SmallSegments());
    INFO("flip at " << k << ": "
                    << (r.ok() ? fmt::format("opened, last index {}", (*r)->LastIndex())
                               : r.status().message()));
    REQUIRE(r.status().code() == ErrorCode::kCorruption);
    CHECK(Contains(r.status().message(), fmt::format("byte offset {}", final_record)));
    CHECK(Contains(r.status().message(), "not a torn write"));
  }
}

TEST_CASE("a torn final write that was never synced is still truncated", "[storage][recovery]") {
  TempDir dir;
  BuildStore(dir.path(), SmallSegments());
  {
    auto s = std::move(DiskStorage::Open(dir.path(), DiskStorageOptions{})).value();  // no roll
    REQUIRE(s->Append({MakeEntry(17, 3, 30), MakeEntry(18, 3, 30)}).ok());
    REQUIRE(s->SegmentCount() == 4);
    // No Sync: a crash now may leave any part of 17..18 on disk.
  }
  const std::string last = ReadFile(dir.File(kLast));
  const std::size_t rec18 = last.size() - RecordBytes(30);
  for (const std::string& torn : {last.substr(0, rec18 + 11),
                                  last.substr(0, rec18) + std::string(RecordBytes(30), '\0'), [&] {
                                    std::string bad = last;
                                    bad[rec18 + 30] = static_cast<char>(bad[rec18 + 30] ^ 0x10);
                                    return bad;
                                  }()}) {
    WriteFile(dir.File(kLast), torn);
    auto r = DiskStorage::Open(dir.path(), SmallSegments());
    INFO(r.status().message());
    REQUIRE(r.ok());
    CHECK((*r)->LastIndex() == 17);
    REQUIRE((*r)->recovery_notes().size() == 1);
    CHECK(Contains((*r)->recovery_notes()[0], fmt::format("torn write at byte offset {}", rec18)));
  }
}

TEST_CASE("a misdirected record (valid CRC, wrong index) is corruption", "[storage][recovery]") {
  TempDir dir;
  BuildStore(dir.path(), SmallSegments());
  const std::string first = ReadFile(dir.File(kSeg1));
  const std::string rec_of_2 = first.substr(RecordBytes(40), RecordBytes(40));
  SECTION("appended at the tail") {
    WriteFile(dir.File(kLast), ReadFile(dir.File(kLast)) + rec_of_2);
    auto r = DiskStorage::Open(dir.path(), SmallSegments());
    CHECK(r.status().code() == ErrorCode::kCorruption);
    CHECK(Contains(r.status().message(), "misplaced"));
  }
  SECTION("written over another record of the same size") {
    std::string seg5 = ReadFile(dir.File(kSeg5));
    seg5.replace(0, rec_of_2.size(), rec_of_2);
    WriteFile(dir.File(kSeg5), seg5);
    auto r = DiskStorage::Open(dir.path(), SmallSegments());
    CHECK(r.status().code() == ErrorCode::kCorruption);
    CHECK(Contains(r.status().message(), kSeg5));
  }
  SECTION("a missing segment leaves a gap") {
    std::filesystem::remove(dir.File(kSeg5));
    auto r = DiskStorage::Open(dir.path(), SmallSegments());
    CHECK(r.status().code() == ErrorCode::kCorruption);
    CHECK(Contains(r.status().message(), "previous segment ends at 4"));
  }
  SECTION("a sync mark naming another entry than the one before it") {
    const std::string last = ReadFile(dir.File(kLast));
    std::string stale;
    EncodeSyncMark(15, 2, &stale);  // the last entry is (16, 3)
    WriteFile(dir.File(kLast), last + stale);
    auto r = DiskStorage::Open(dir.path(), SmallSegments());
    CHECK(r.status().code() == ErrorCode::kCorruption);
    CHECK(Contains(r.status().message(), fmt::format("sync mark at byte offset {}", last.size())));
  }
}

TEST_CASE("hard state: a torn newest slot falls back to the older one", "[storage][recovery]") {
  TempDir dir;
  {
    auto s = std::move(DiskStorage::Open(dir.path(), {})).value();
    REQUIRE(s->SetHardState({1, 1, 0}).ok());
    REQUIRE(s->Sync().ok());  // seq 1 -> slot 1
    REQUIRE(s->SetHardState({2, 2, 0}).ok());
    REQUIRE(s->Sync().ok());  // seq 2 -> slot 0
  }
  std::string hs = ReadFile(dir.File("hardstate"));
  REQUIRE(hs.size() == 1024);
  std::string damaged = hs;
  damaged[20] ^= 0x01;  // damage slot 0 (the newest)
  WriteFile(dir.File("hardstate"), damaged);
  {
    auto r = DiskStorage::Open(dir.path(), {});
    REQUIRE(r.ok());
    CHECK((*r)->InitialHardState() == HardState{1, 1, 0});
  }
  // A slot in the wrong place (misdirected write: seq 2 belongs in slot 0) does not count.
  WriteFile(dir.File("hardstate"), std::string(512, '\0') + hs.substr(0, 512));
  CHECK(DiskStorage::Open(dir.path(), {}).status().code() == ErrorCode::kCorruption);
  damaged[512 + 20] ^= 0x01;  // and slot 1
  WriteFile(dir.File("hardstate"), damaged);
  auto r = DiskStorage::Open(dir.path(), {});
  CHECK(r.status().code() == ErrorCode::kCorruption);
  CHECK(Contains(r.status().message(), "hardstate"));
}

TEST_CASE("damaged or missing metadata files are corruption", "[storage][recovery]") {
  TempDir dir;
  BuildStore(dir.path(), SmallSegments());
  SECTION("hardstate missing while the log exists") {
    std::filesystem::remove(dir.File("hardstate"));
    CHECK(DiskStorage::Open(dir.path(), {}).status().code() == ErrorCode::kCorruption);
  }
  SECTION("snapshot.meta damaged") {
    std::string meta = EncodeSnapshotMeta(SnapshotMeta{5, 1, {}});
    meta[10] ^= 0x01;
    WriteFile(dir.File("snapshot.meta"), meta);
    auto r = DiskStorage::Open(dir.path(), {});
    CHECK(r.status().code() == ErrorCode::kCorruption);
    CHECK(Contains(r.status().message(), "snapshot.meta"));
  }
}

TEST_CASE("an interrupted ApplySnapshot is finished on open", "[storage][recovery]") {
  TempDir dir;
  auto all = BuildStore(dir.path(), SmallSegments());
  SECTION("snapshot not in the log: the log is replaced") {
    // As if the crash came after snapshot.meta was replaced, before the segments went.
    WriteFile(dir.File("snapshot.meta"), EncodeSnapshotMeta(SnapshotMeta{10, 4, {{1}, {}}}));
    auto r = DiskStorage::Open(dir.path(), SmallSegments());
    REQUIRE(r.ok());
    CHECK((*r)->FirstIndex() == 11);
    CHECK((*r)->LastIndex() == 10);
    CHECK(*(*r)->TermAt(10) == 4);
    REQUIRE((*r)->recovery_notes().size() == 1);
    CHECK(Contains((*r)->recovery_notes()[0], "interrupted ApplySnapshot"));
    CHECK(ListSegments(dir.path()) == std::vector<std::string>{"log-00000000000000000011.seg"});
  }
  SECTION("snapshot matches the log: the suffix is kept, covered segments removed") {
    WriteFile(dir.File("snapshot.meta"), EncodeSnapshotMeta(SnapshotMeta{10, 1, {{1}, {}}}));
    auto r = DiskStorage::Open(dir.path(), SmallSegments());
    REQUIRE(r.ok());
    CHECK((*r)->recovery_notes().empty());
    CHECK((*r)->FirstIndex() == 11);
    CHECK((*r)->LastIndex() == 16);
    CHECK(*(*r)->Entries(11, 17, UINT64_MAX) == std::vector<Entry>(all.begin() + 10, all.end()));
    CHECK(ListSegments(dir.path()).front() == "log-00000000000000000009.seg");
  }
}

TEST_CASE("leftover temp files are removed, unknown files reported", "[storage][recovery]") {
  TempDir dir;
  BuildStore(dir.path(), SmallSegments());
  WriteFile(dir.File("snapshot.meta.tmp"), "half");
  WriteFile(dir.File("notes.txt"), "x");
  auto r = DiskStorage::Open(dir.path(), SmallSegments());
  REQUIRE(r.ok());
  REQUIRE((*r)->recovery_notes().size() == 2);
  CHECK(Contains((*r)->recovery_notes()[0], "notes.txt"));
  CHECK(Contains((*r)->recovery_notes()[1], "snapshot.meta.tmp"));
  CHECK_FALSE(std::filesystem::exists(dir.File("snapshot.meta.tmp")));
}

}  // namespace
}  // namespace raft::storage::testing
