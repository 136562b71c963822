// DiskStorage behaviour through the public API: reads, writes, reopen, segments,
// snapshots and compaction. Recovery from damage is in recovery_test.cc.
#include "raft/disk_storage.h"

#include <catch2/catch.hpp>

#include "test_util.h"

namespace raft::storage::testing {
namespace {

std::unique_ptr<DiskStorage> OpenOk(const std::string& dir, DiskStorageOptions opts = {}) {
  auto r = DiskStorage::Open(dir, opts);
  INFO(r.status().message());
  REQUIRE(r.ok());
  return std::move(r).value();
}

std::vector<Entry> ReadAll(const DiskStorage& s) {
  auto r = s.Entries(s.FirstIndex(), s.LastIndex() + 1, UINT64_MAX);
  INFO(r.status().message());
  REQUIRE(r.ok());
  return *r;
}

void AppendOk(DiskStorage& s, const std::vector<Entry>& ents) {
  Status st = s.Append(ents);
  INFO(st.message());
  REQUIRE(st.ok());
}

TEST_CASE("new store is empty", "[storage]") {
  TempDir dir;
  auto s = OpenOk(dir.File("db"));
  CHECK(s->FirstIndex() == 1);
  CHECK(s->LastIndex() == 0);
  CHECK(s->InitialHardState() == HardState{});
  CHECK(*s->TermAt(0) == 0);
  CHECK(s->TermAt(1).status().code() == ErrorCode::kUnavailable);
  CHECK(s->Snapshot()->index == 0);
  CHECK(s->recovery_notes().empty());
  auto e = s->Entries(1, 1, 100);
  REQUIRE(e.ok());
  CHECK(e->empty());
}

TEST_CASE("append, read, term, first, last", "[storage]") {
  TempDir dir;
  auto s = OpenOk(dir.path());
  auto ents = MakeEntries(1, 11, 1);
  auto more = MakeEntries(11, 21, 2, 100);
  AppendOk(*s, ents);
  AppendOk(*s, more);
  ents.insert(ents.end(), more.begin(), more.end());
  CHECK(s->FirstIndex() == 1);
  CHECK(s->LastIndex() == 20);
  CHECK(ReadAll(*s) == ents);
  CHECK(*s->TermAt(10) == 1);
  CHECK(*s->TermAt(11) == 2);
  CHECK(s->TermAt(21).status().code() == ErrorCode::kUnavailable);
  CHECK(s->Entries(5, 22, UINT64_MAX).status().code() == ErrorCode::kUnavailable);

  // max_bytes: at least one entry; then as many as fit (EntrySizeBytes = payload + 24).
  auto one = s->Entries(11, 21, 1);
  REQUIRE(one.ok());
  CHECK(one->size() == 1);
  auto three = s->Entries(11, 21, 3 * 124);
  REQUIRE(three.ok());
  CHECK(three->size() == 3);
  CHECK((*three)[2] == ents[12]);
}

TEST_CASE("append validates its input and writes nothing on error", "[storage]") {
  TempDir dir;
  auto s = OpenOk(dir.path());
  AppendOk(*s, MakeEntries(1, 4, 2));
  CHECK(s->Append(MakeEntries(5, 6, 2)).code() == ErrorCode::kInvalidArgument);  // gap
  CHECK(s->Append({MakeEntry(4, 2), MakeEntry(6, 2)}).code() == ErrorCode::kInvalidArgument);
  CHECK(s->Append({MakeEntry(4, 3), MakeEntry(5, 2)}).code() == ErrorCode::kInvalidArgument);
  CHECK(s->Append({MakeEntry(4, 1)}).code() == ErrorCode::kInvalidArgument);  // term drops
  CHECK(s->LastIndex() == 3);
  CHECK(s->Append({}).ok());
  CHECK(s->failure().ok());
}

TEST_CASE("append replaces a conflicting suffix, durably", "[storage]") {
  TempDir dir;
  {
    auto s = OpenOk(dir.path());
    AppendOk(*s, MakeEntries(1, 11, 1));
    AppendOk(*s, MakeEntries(6, 8, 3));  // replaces 6..10 by 6..7
    CHECK(s->LastIndex() == 7);
    CHECK(*s->TermAt(5) == 1);
    CHECK(*s->TermAt(6) == 3);
    AppendOk(*s, MakeEntries(1, 3, 1));  // overlaps from the start: 1..2 replaced, 3.. gone
    CHECK(s->LastIndex() == 2);
    AppendOk(*s, MakeEntries(3, 5, 4));
    REQUIRE(s->Sync().ok());
  }
  auto s = OpenOk(dir.path());
  auto want = MakeEntries(1, 3, 1);
  auto tail = MakeEntries(3, 5, 4);
  want.insert(want.end(), tail.begin(), tail.end());
  CHECK(ReadAll(*s) == want);
  CHECK(s->recovery_notes().empty());
}

TEST_CASE("reopen preserves entries, hard state and snapshot", "[storage]") {
  TempDir dir;
  ConfState conf{{1, 2, 3}, {7}};
  auto ents = MakeEntries(1, 50, 1, 300);
  {
    auto s = OpenOk(dir.path());
    AppendOk(*s, ents);
    REQUIRE(s->SetHardState({5, 2, 40}).ok());
    REQUIRE(s->Sync().ok());
    REQUIRE(s->SetHardState({6, 3, 45}).ok());
    REQUIRE(s->Sync().ok());
    auto snap = s->CreateSnapshot(30, conf);
    REQUIRE(snap.ok());
    CHECK(*snap == SnapshotMeta{30, 1, conf});
  }
  auto s = OpenOk(dir.path());
  CHECK(s->recovery_notes().empty());
  CHECK(s->InitialHardState() == HardState{6, 3, 45});
  CHECK(*s->Snapshot() == SnapshotMeta{30, 1, conf});
  CHECK(s->FirstIndex() == 31);  // after a reopen, entries start past the snapshot
  CHECK(s->LastIndex() == 49);
  CHECK(*s->TermAt(30) == 1);
  CHECK(s->TermAt(29).status().code() == ErrorCode::kCompacted);
  CHECK(ReadAll(*s) == std::vector<Entry>(ents.begin() + 30, ents.end()));
}

TEST_CASE("unsynced hard state is not durable; the last synced one is", "[storage]") {
  TempDir dir;
  {
    auto s = OpenOk(dir.path());
    REQUIRE(s->SetHardState({2, 1, 0}).ok());
    REQUIRE(s->Sync().ok());
    REQUIRE(s->SetHardState({3, 2, 0}).ok());  // never synced
  }
  auto s = OpenOk(dir.path());
  CHECK(s->InitialHardState() == HardState{2, 1, 0});
}

TEST_CASE("segments roll at the size target and compaction removes whole ones", "[storage]") {
  TempDir dir;
  DiskStorageOptions opts;
  opts.segment_bytes_target = 1000;  // 126-byte records: 7 per segment
  auto ents = MakeEntries(1, 101, 1, 100);
  {
    auto s = OpenOk(dir.path(), opts);
    for (Index i = 1; i < 101; i += 9)
      AppendOk(*s, std::vector<Entry>(ents.begin() + (i - 1),
                                      ents.begin() + std::min<Index>(i + 8, 100)));
    REQUIRE(s->Sync().ok());
    CHECK(s->SegmentCount() == 15);  // ceil(100 / 7)
    CHECK(ListSegments(dir.path()).front() == "log-00000000000000000001.seg");
    CHECK(ListSegments(dir.path())[1] == "log-00000000000000000008.seg");
    CHECK(ReadAll(*s) == ents);
    // Reads spanning segments with a byte limit.
    auto part = s->Entries(5, 30, 10 * 124);
    REQUIRE(part.ok());
    CHECK(*part == std::vector<Entry>(ents.begin() + 4, ents.begin() + 14));

    CHECK(s->Compact(50).code() == ErrorCode::kInvalidArgument);  // beyond the snapshot
    REQUIRE(s->CreateSnapshot(60, ConfState{{1}, {}}).ok());
    REQUIRE(s->Compact(50).ok());
    CHECK(s->FirstIndex() == 51);
    CHECK(*s->TermAt(50) == 1);  // the segment holding 50 (50..56) is kept
    CHECK(s->Entries(50, 52, UINT64_MAX).status().code() == ErrorCode::kCompacted);
    CHECK(ListSegments(dir.path()).front() == "log-00000000000000000050.seg");
    CHECK(s->Compact(40).ok());  // no-op
    REQUIRE(s->Compact(60).ok());
    CHECK(ListSegments(dir.path()).front() == "log-00000000000000000057.seg");
    CHECK(*s->TermAt(60) == 1);
    CHECK(ReadAll(*s) == std::vector<Entry>(ents.begin() + 60, ents.end()));
    AppendOk(*s, MakeEntries(101, 103, 2, 100));
    REQUIRE(s->Sync().ok());
  }
  auto s = OpenOk(dir.path(), opts);
  CHECK(s->recovery_notes().empty());
  CHECK(s->FirstIndex() == 61);
  CHECK(s->LastIndex() == 102);
  CHECK(*s->TermAt(102) == 2);
}

TEST_CASE("truncation across segment boundaries", "[storage]") {
  TempDir dir;
  DiskStorageOptions opts;
  opts.segment_bytes_target = 300;  // 66-byte records: 4 per segment
  {
    auto s = OpenOk(dir.path(), opts);
    AppendOk(*s, MakeEntries(1, 21, 1, 40));
    CHECK(s->SegmentCount() == 5);
    AppendOk(*s, MakeEntries(9, 11, 2, 40));  // 9 starts the third segment
    CHECK(s->SegmentCount() == 3);
    AppendOk(*s, MakeEntries(6, 7, 3, 40));  // in the middle of the second
    CHECK(s->SegmentCount() == 2);
    CHECK(s->LastIndex() == 6);
    AppendOk(*s, MakeEntries(7, 15, 3, 40));
    REQUIRE(s->Sync().ok());
  }
  auto s = OpenOk(dir.path(), opts);
  auto want = MakeEntries(1, 6, 1, 40);
  auto tail = MakeEntries(6, 15, 3, 40);
  want.insert(want.end(), tail.begin(), tail.end());
  CHECK(ReadAll(*s) == want);
}

TEST_CASE("apply snapshot replaces the whole log", "[storage]") {
  TempDir dir;
  DiskStorageOptions opts;
  opts.segment_bytes_target = 500;
  SnapshotMeta meta{80, 5, ConfState{{1, 2, 3}, {}}};
  {
    auto s = OpenOk(dir.path(), opts);
    AppendOk(*s, MakeEntries(1, 30, 1, 50));
    REQUIRE(s->ApplySnapshot(meta).ok());
    CHECK(s->FirstIndex() == 81);
    CHECK(s->LastIndex() == 80);
    CHECK(*s->TermAt(80) == 5);
    CHECK(s->TermAt(79).status().code() == ErrorCode::kCompacted);
    CHECK(ListSegments(dir.path()) == std::vector<std::string>{"log-00000000000000000081.seg"});
    CHECK(s->ApplySnapshot(SnapshotMeta{70, 5, {}}).code() == ErrorCode::kInvalidArgument);
    CHECK(s->Append(MakeEntries(82, 83, 5)).code() == ErrorCode::kInvalidArgument);
    AppendOk(*s, MakeEntries(81, 90, 6));
    AppendOk(*s, MakeEntries(70, 85, 6));  // below FirstIndex: skipped, rest replaces
    REQUIRE(s->Sync().ok());
  }
  auto s = OpenOk(dir.path(), opts);
  CHECK(s->recovery_notes().empty());
  CHECK(*s->Snapshot() == meta);
  CHECK(s->FirstIndex() == 81);
  CHECK(s->LastIndex() == 84);
  CHECK(ReadAll(*s) == MakeEntries(81, 85, 6));
}

TEST_CASE("create snapshot validates its index", "[storage]") {
  TempDir dir;
  auto s = OpenOk(dir.path());
  AppendOk(*s, MakeEntries(1, 10, 2));
  CHECK(s->CreateSnapshot(10, {}).status().code() == ErrorCode::kInvalidArgument);
  REQUIRE(s->CreateSnapshot(5, {}).ok());
  CHECK(s->CreateSnapshot(5, {}).status().code() == ErrorCode::kInvalidArgument);
  CHECK(s->CreateSnapshot(9, {})->term == 2);
}

// Found by the full-node simulator (issue 13): with a snapshot recorded but nothing
// compacted (snapshot_trailing_entries >= the snapshot's index), the leader asked for the
// term at index 0 to send entry 1 to a new member, and TermAt aborted on an invariant.
TEST_CASE("term at index 0 is 0 while a snapshot has compacted nothing", "[storage]") {
  TempDir dir;
  auto s = OpenOk(dir.path());
  AppendOk(*s, MakeEntries(1, 10, 2));
  REQUIRE(s->CreateSnapshot(5, {}).ok());
  REQUIRE(s->FirstIndex() == 1);
  auto t = s->TermAt(0);
  REQUIRE(t.ok());
  CHECK(*t == 0);
  CHECK(*s->TermAt(1) == 2);
  REQUIRE(s->Compact(3).ok());
  CHECK(s->TermAt(0).status().code() == ErrorCode::kCompacted);
  CHECK(*s->TermAt(3) == 2);
}

// Found by the full-node simulator (issue 13, seeds 679 and 1455): after a restart the
// log starts right after its snapshot, whose term answered TermAt(first - 1); a newer
// snapshot recorded without compacting replaced it, and the leader walking back a
// follower's log aborted on TermAt(first - 1).
TEST_CASE("term before the first index survives a newer snapshot", "[storage]") {
  TempDir dir;
  DiskStorageOptions one_entry_segments;
  one_entry_segments.segment_bytes_target = 1;  // Compact(10) removes entry 10's segment
  {
    auto s = OpenOk(dir.path(), one_entry_segments);
    AppendOk(*s, MakeEntries(1, 21, 3));
    REQUIRE(s->CreateSnapshot(10, {}).ok());
    REQUIRE(s->Compact(10).ok());
  }
  auto s = OpenOk(dir.path(), one_entry_segments);
  REQUIRE(s->FirstIndex() == 11);
  REQUIRE(s->CreateSnapshot(15, {}).ok());
  auto t = s->TermAt(10);
  REQUIRE(t.ok());
  CHECK(*t == 3);
  CHECK(s->TermAt(9).status().code() == ErrorCode::kCompacted);
}

TEST_CASE("a second open of the same directory is refused", "[storage]") {
  TempDir dir;
  auto s = OpenOk(dir.path());
  auto again = DiskStorage::Open(dir.path(), {});
  CHECK(again.status().code() == ErrorCode::kBusy);
  DiskStorageOptions opts;
  opts.create_if_missing = false;
  CHECK(DiskStorage::Open(dir.File("nope"), opts).status().code() == ErrorCode::kInvalidArgument);
  opts.segment_bytes_target = 0;
  CHECK(DiskStorage::Open(dir.path(), opts).status().code() == ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace raft::storage::testing
