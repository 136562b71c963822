// SharedLog (storage/shared_log.h), the one log of a host of many groups: what it
// serves per group across reopen, one fdatasync per Sync whatever the number of groups,
// overwrites, snapshots, installs, compaction, removal, a torn tail and damage, and
// reclamation of segments, and a randomized comparison with MemoryStorage per group
// through Reclaim and reopen.
#include "storage/shared_log.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>

#include "test_util.h"

namespace raft::storage {

namespace {

using testing::FaultyFileSystem;
using testing::MakeEntries;
using testing::TempDir;

std::unique_ptr<SharedLog> MustOpen(const std::string& dir, SharedLogOptions o = {}) {
  auto log = SharedLog::Open(dir, o);
  INFO((log.ok() ? "" : log.status().ToString()));
  REQUIRE(log.ok());
  return std::move(log).value();
}

// Every entry and the hard state of `g` in `log` equal `model`'s.
void Same(SharedLog& log, GroupId g, const MemoryStorage& model, const HardState& hs) {
  INFO("group " << g);
  GroupStorage* s = log.Group(g);
  REQUIRE(s != nullptr);
  CHECK(s->FirstIndex() == model.FirstIndex());
  CHECK(s->LastIndex() == model.LastIndex());
  CHECK(*s->TermAt(s->FirstIndex() - 1) == *model.TermAt(model.FirstIndex() - 1));
  CHECK(s->InitialHardState() == hs);
  if (model.LastIndex() >= model.FirstIndex()) {
    auto got = s->Entries(model.FirstIndex(), model.LastIndex() + 1, UINT64_MAX);
    REQUIRE(got.ok());
    CHECK(*got == *model.Entries(model.FirstIndex(), model.LastIndex() + 1, UINT64_MAX));
  }
}

std::vector<std::string> Segments(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& name : testing::ListSegments(dir)) out.push_back(name);
  return out;
}

}  // namespace

TEST_CASE("a shared log serves every group's entries and hard state across reopen",
          "[storage][shared]") {
  TempDir dir;
  {
    auto log = MustOpen(dir.path());
    for (GroupId g = 1; g <= 50; ++g) {
      REQUIRE(log->Append(g, MakeEntries(1, 4 + g % 3, 1, 8 + g)).ok());
      REQUIRE(log->SetHardState(g, HardState{1, g % 3, 2}).ok());
    }
    REQUIRE(log->Sync().ok());
    CHECK(log->syncs() == 1);  // one fdatasync for 50 groups
    CHECK(log->Group(7)->LastIndex() == 4);
    CHECK(log->Group(99) == nullptr);
  }
  auto log = MustOpen(dir.path());
  CHECK(log->Groups().size() == 50);
  for (GroupId g = 1; g <= 50; ++g) {
    MemoryStorage model;
    REQUIRE(model.Append(MakeEntries(1, 4 + g % 3, 1, 8 + g)).ok());
    Same(*log, g, model, HardState{1, g % 3, 2});
  }
  // A reader asking beyond the log or below it gets the Storage errors.
  GroupStorage* s = log->Group(1);
  CHECK(s->Entries(1, 99, UINT64_MAX).status().code() == ErrorCode::kUnavailable);
  CHECK(s->Entries(1, 4, 1)->size() == 1);  // max_bytes: at least one entry
}

TEST_CASE("fdatasyncs follow the batches, not the number of groups", "[storage][shared]") {
  // The same 600 entries in 20 batches, over 1 group and over 60 groups.
  std::map<int, int> syncs;
  for (int groups : {1, 60}) {
    TempDir dir;
    FaultyFileSystem fs;
    SharedLogOptions o;
    o.file_system = &fs;
    auto log = MustOpen(dir.path(), o);
    const int after_open = fs.fdatasync_calls;
    std::map<GroupId, Index> next;
    for (int batch = 0; batch < 20; ++batch) {
      for (int k = 0; k < 30; ++k) {
        const GroupId g = 1 + static_cast<GroupId>((batch * 30 + k) % groups);
        Index& i = next.try_emplace(g, 1).first->second;
        REQUIRE(log->Append(g, MakeEntries(i, i + 1, 1)).ok());
        ++i;
      }
      REQUIRE(log->Sync().ok());
    }
    syncs[groups] = fs.fdatasync_calls - after_open;
  }
  CHECK(syncs[1] == 20);
  CHECK(syncs[60] == 20);
}

TEST_CASE("overwrites, snapshots, installs, compaction and removal survive reopen",
          "[storage][shared]") {
  TempDir dir;
  {
    auto log = MustOpen(dir.path());
    REQUIRE(log->Append(1, MakeEntries(1, 11, 1)).ok());
    REQUIRE(log->Append(1, MakeEntries(6, 8, 2)).ok());  // a new leader's overwrite
    REQUIRE(log->SetHardState(1, HardState{2, 0, 7}).ok());
    REQUIRE(log->CreateSnapshot(1, 6, ConfState{{1, 2, 3}, {}}).ok());
    REQUIRE(log->Compact(1, 5).ok());
    CHECK(log->Compact(1, 7).code() == ErrorCode::kInvalidArgument);  // past the snapshot
    REQUIRE(log->Append(2, MakeEntries(1, 5, 1)).ok());
    SnapshotMeta installed;
    installed.index = 20;
    installed.term = 3;
    installed.conf.voters = {1, 2, 3};
    REQUIRE(log->ApplySnapshot(2, installed).ok());
    REQUIRE(log->Append(2, MakeEntries(21, 23, 3)).ok());
    REQUIRE(log->Append(3, MakeEntries(1, 3, 1)).ok());
    REQUIRE(log->RemoveGroup(3).ok());
    CHECK(log->Append(3, MakeEntries(3, 4, 1)).code() == ErrorCode::kInvalidArgument);
    REQUIRE(log->Sync().ok());
  }
  auto log = MustOpen(dir.path());
  CHECK(log->Groups() == std::vector<GroupId>{1, 2});
  GroupStorage* g1 = log->Group(1);
  CHECK(g1->FirstIndex() == 6);
  CHECK(g1->LastIndex() == 7);
  CHECK(*g1->TermAt(5) == 1);
  CHECK(*g1->TermAt(6) == 2);
  CHECK(g1->Snapshot()->index == 6);
  CHECK(g1->InitialHardState() == HardState{2, 0, 7});
  GroupStorage* g2 = log->Group(2);
  CHECK(g2->FirstIndex() == 21);
  CHECK(g2->LastIndex() == 22);
  CHECK(*g2->TermAt(20) == 3);
  CHECK(g2->Snapshot()->index == 20);
  CHECK(log->AddGroup(3).code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("a torn tail is dropped on open; damage before synced records is corruption",
          "[storage][shared]") {
  TempDir dir;
  {
    auto log = MustOpen(dir.path());
    REQUIRE(log->Append(1, MakeEntries(1, 4, 1)).ok());
    REQUIRE(log->Sync().ok());
    REQUIRE(log->Append(1, MakeEntries(4, 6, 1)).ok());  // never synced
  }
  const std::string seg = dir.File(Segments(dir.path()).back());
  std::string bytes = testing::ReadFile(seg);
  SECTION("torn") {
    testing::WriteFile(seg, bytes.substr(0, bytes.size() - 5));  // cut into the last record
    auto log = MustOpen(dir.path());
    CHECK(log->Group(1)->LastIndex() == 4);  // 4 survived whole; 5 was torn
    REQUIRE(log->recovery_notes().size() == 1);
    CHECK(log->recovery_notes()[0].find("torn tail") != std::string::npos);
    REQUIRE(log->Append(1, MakeEntries(5, 6, 1)).ok());
    REQUIRE(log->Sync().ok());
  }
  SECTION("damaged before a sync mark") {
    bytes[kGroupRecordHeaderBytes + 2] ^= 0x40;  // inside the first entry's payload
    testing::WriteFile(seg, bytes);
    auto log = SharedLog::Open(dir.path(), {});
    REQUIRE_FALSE(log.ok());
    CHECK(log.status().code() == ErrorCode::kCorruption);
    CHECK(log.status().message().find("bad record at byte offset 0") != std::string::npos);
  }
}

TEST_CASE("reclamation deletes segments nothing lives in, keeping idle groups' state",
          "[storage][shared]") {
  TempDir dir;
  SharedLogOptions o;
  o.segment_bytes_target = 4096;
  {
    auto log = MustOpen(dir.path(), o);
    // Group 9 writes once and idles: its hard state sits in the first segment.
    REQUIRE(log->Append(9, MakeEntries(1, 2, 1)).ok());
    REQUIRE(log->SetHardState(9, HardState{1, 9, 1}).ok());
    REQUIRE(log->CreateSnapshot(9, 1, ConfState{{9}, {}}).ok());
    REQUIRE(log->Compact(9, 1).ok());
    std::map<GroupId, Index> next;
    for (int round = 0; round < 40; ++round) {
      for (GroupId g = 1; g <= 4; ++g) {
        Index& i = next.try_emplace(g, 1).first->second;
        REQUIRE(log->Append(g, MakeEntries(i, i + 5, 1, 64)).ok());
        i += 5;
        REQUIRE(log->SetHardState(g, HardState{1, 0, i - 1}).ok());
      }
      REQUIRE(log->Sync().ok());
      if (round % 10 == 9) {  // every group snapshots and compacts all but 5 entries
        for (GroupId g = 1; g <= 4; ++g) {
          const Index upto = next[g] - 6;
          REQUIRE(log->CreateSnapshot(g, upto, ConfState{{1}, {}}).ok());
          REQUIRE(log->Compact(g, upto).ok());
        }
      }
    }
    const std::size_t before = log->segment_count();
    auto deleted = log->Reclaim();
    REQUIRE(deleted.ok());
    CHECK(*deleted > 0);
    CHECK(log->segment_count() == before - *deleted);
    CHECK(log->segment_count() <= 3);
  }
  auto log = MustOpen(dir.path(), o);
  GroupStorage* idle = log->Group(9);
  REQUIRE(idle != nullptr);
  CHECK(idle->InitialHardState() == HardState{1, 9, 1});
  CHECK(idle->FirstIndex() == 2);
  CHECK(*idle->TermAt(1) == 1);
  CHECK(idle->Snapshot()->index == 1);
  for (GroupId g = 1; g <= 4; ++g) {
    CHECK(log->Group(g)->LastIndex() == 200);
    CHECK(log->Group(g)->Entries(log->Group(g)->FirstIndex(), 201, UINT64_MAX).ok());
  }
}

TEST_CASE("entries replaced by an overwrite do not keep their segments", "[storage][shared]") {
  TempDir dir;
  SharedLogOptions o;
  o.segment_bytes_target = 4096;
  auto log = MustOpen(dir.path(), o);
  for (Index i = 1; i <= 100; i += 5) REQUIRE(log->Append(1, MakeEntries(i, i + 5, 1, 64)).ok());
  // A new leader's log replaces 20-100, in batches.
  for (Index i = 20; i <= 100; i += 9) REQUIRE(log->Append(1, MakeEntries(i, i + 9, 2, 64)).ok());
  REQUIRE(log->SetHardState(1, HardState{2, 0, 100}).ok());
  REQUIRE(log->CreateSnapshot(1, 100, ConfState{{1}, {}}).ok());
  REQUIRE(log->Compact(1, 100).ok());
  REQUIRE(log->Sync().ok());
  REQUIRE(log->segment_count() > 4);
  REQUIRE(log->Reclaim().ok());
  CHECK(log->segment_count() == 1);  // nothing but the open segment lives
  log.reset();
  log = MustOpen(dir.path(), o);
  CHECK(log->Group(1)->FirstIndex() == 101);
  CHECK(*log->Group(1)->TermAt(100) == 2);
  CHECK(log->Group(1)->InitialHardState() == HardState{2, 0, 100});
}

// One writer, concurrent readers (shared_log.h): a reader thread reads every group while
// the writer appends, overwrites, syncs, compacts and reclaims. What it reads must be
// what was written (the entry payloads encode their index and term), never an error
// other than a compacted or not-yet index. The tsan stage runs this too.
TEST_CASE("readers run concurrently with the writer", "[storage][shared]") {
  TempDir dir;
  SharedLogOptions o;
  o.segment_bytes_target = 8192;
  auto log = MustOpen(dir.path(), o);
  for (GroupId g = 1; g <= 4; ++g) REQUIRE(log->AddGroup(g).ok());
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!done.load()) {
      for (GroupId g = 1; g <= 4; ++g) {
        GroupStorage* s = log->Group(g);
        const Index lo = s->FirstIndex();
        const Index hi = s->LastIndex() + 1;
        if (lo >= hi) continue;
        auto es = s->Entries(lo, hi, UINT64_MAX);
        if (!es.ok()) {
          const ErrorCode c = es.status().code();
          if (c != ErrorCode::kCompacted && c != ErrorCode::kUnavailable) ++bad;
          continue;
        }
        for (const Entry& e : *es) {
          if (e.data != testing::MakeEntry(e.index, e.term, e.data.size()).data) ++bad;
        }
        ++reads;
      }
    }
  });
  std::map<GroupId, Index> next;
  for (int round = 0; round < 300; ++round) {
    const GroupId g = 1 + static_cast<GroupId>(round % 4);
    Index& i = next.try_emplace(g, 1).first->second;
    REQUIRE(log->Append(g, MakeEntries(i, i + 4, 1 + round / 40, 100)).ok());
    i += 4;
    REQUIRE(log->SetHardState(g, HardState{1 + static_cast<Term>(round / 40), 0, i - 1}).ok());
    REQUIRE(log->Sync().ok());
    if (round % 25 == 24) {
      REQUIRE(log->CreateSnapshot(g, i - 3, ConfState{{1}, {}}).ok());
      REQUIRE(log->Compact(g, i - 3).ok());
      REQUIRE(log->Reclaim().ok());
    }
  }
  done = true;
  reader.join();
  CHECK(bad.load() == 0);
  CHECK(reads.load() > 0);
}

TEST_CASE("random histories match MemoryStorage through reclamation and reopen",
          "[storage][shared]") {
  std::mt19937_64 rng(17);
  const int runs = std::getenv("SHARED_LOG_RUNS") ? std::atoi(std::getenv("SHARED_LOG_RUNS")) : 12;
  for (int run = 0; run < runs; ++run) {
    TempDir dir;
    SharedLogOptions o;
    o.segment_bytes_target = 2048;
    FaultyFileSystem fs;
    fs.syncs_are_noops = true;
    o.file_system = &fs;
    auto log = MustOpen(dir.path(), o);
    std::map<GroupId, MemoryStorage> model;
    std::map<GroupId, HardState> hard;
    std::map<GroupId, Term> terms;
    for (int op = 0; op < 400; ++op) {
      const GroupId g = 1 + rng() % 5;
      MemoryStorage& m = model[g];
      Term& t = terms.try_emplace(g, 1).first->second;
      const int kind = static_cast<int>(rng() % 20);
      INFO("run " << run << " op " << op << " group " << g << " kind " << kind);
      const Index commit = hard[g].commit;
      if (kind < 12) {
        Index from = m.LastIndex() + 1;
        if (m.LastIndex() > std::max(commit, m.FirstIndex() - 1) && rng() % 4 == 0) {
          const Index low = std::max(commit, m.FirstIndex() - 1) + 1;
          from = low + rng() % (m.LastIndex() - low + 1);
          ++t;
        }
        auto es = MakeEntries(from, from + 1 + rng() % 3, t, rng() % 200);
        REQUIRE(log->Append(g, es).ok());
        REQUIRE(m.Append(es).ok());
      } else if (kind < 15) {
        const Index c = commit + rng() % (m.LastIndex() - commit + 1);
        hard[g] = HardState{t, 0, c};
        REQUIRE(log->SetHardState(g, hard[g]).ok());
        m.SetHardState(hard[g]);
      } else if (kind < 17 && commit >= std::max(m.FirstIndex(), m.Snapshot()->index + 1)) {
        const Index low = std::max(m.FirstIndex(), m.Snapshot()->index + 1);
        const Index s = low + rng() % (commit - low + 1);
        REQUIRE(log->CreateSnapshot(g, s, ConfState{{1}, {}}).ok());
        REQUIRE(m.CreateSnapshot(s, ConfState{{1}, {}}).ok());
        if (rng() % 2) {
          REQUIRE(log->Compact(g, s).ok());
          REQUIRE(m.Compact(s).ok());
        }
      } else if (kind == 17) {
        SnapshotMeta meta;
        meta.index = m.LastIndex() + 1 + rng() % 4;
        meta.term = ++t;
        meta.conf.voters = {1};
        REQUIRE(log->ApplySnapshot(g, meta).ok());
        REQUIRE(m.ApplySnapshot(meta).ok());
        hard[g].commit = meta.index;
        hard[g].term = t;
        REQUIRE(log->SetHardState(g, hard[g]).ok());
        m.SetHardState(hard[g]);
      } else if (kind == 18) {
        REQUIRE(log->Sync().ok());
        REQUIRE(log->Reclaim().ok());
      } else {
        REQUIRE(log->Sync().ok());
        log.reset();
        log = MustOpen(dir.path(), o);
      }
    }
    REQUIRE(log->Sync().ok());
    REQUIRE(log->Reclaim().ok());
    log.reset();
    log = MustOpen(dir.path(), o);
    for (auto& [g, m] : model) Same(*log, g, m, hard[g]);
  }
}

}  // namespace raft::storage
