// "fsyncgate" on the simulated disk (sim_file_system.h: a failed fdatasync drops the
// file's pending writes from the durable path while reads still see them): an open that
// follows a failed sync in the same boot must make what it read durable before serving
// it, in the shared log and in DiskStorage. Each case fails without the rewrite in its
// Recover.
#include <fcntl.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "raft/disk_storage.h"
#include "sim_file_system.h"
#include "sim_rng.h"
#include "storage/shared_log.h"

using namespace raft::nodesim;

namespace {
std::vector<raft::Entry> Entries(raft::Index from, int n) {
  std::vector<raft::Entry> v;
  for (int i = 0; i < n; ++i) {
    raft::Entry e;
    e.index = from + static_cast<raft::Index>(i);
    e.term = 1;
    e.data = std::string(100, 'e');
    v.push_back(e);
  }
  return v;
}

// Appends `torn` garbage bytes, durably, to the last (by name) segment file in `dir`.
void TearLastSegment(SimDisk* disk, const std::string& dir, std::size_t torn) {
  SimFileSystem fs(disk);
  std::vector<std::string> names;
  REQUIRE(fs.ListDir(dir, &names) == 0);
  std::string seg;
  for (const auto& n : names)
    if (n.ends_with(".seg")) seg = dir + "/" + n;
  REQUIRE(!seg.empty());
  int fd = -1;
  REQUIRE(fs.Open(seg, O_RDWR, 0600, &fd) == 0);
  std::uint64_t size = 0;
  REQUIRE(fs.FileSize(fd, &size) == 0);
  const std::string junk(torn, '\x5a');
  REQUIRE(fs.PwriteAll(fd, junk.data(), junk.size(), size) == 0);
  REQUIRE(fs.Fdatasync(fd) == 0);
  REQUIRE(fs.Close(fd) == 0);
}

}  // namespace

// Seed 114951 of `raft_nodesim --hosts 4`, reduced: recovery truncates a torn tail, its
// fdatasync fails (the truncation never reaches the disk), the next open in the same
// boot reads the truncated file from the page cache, and the segment is closed later. The
// disk still holds the torn tail in a closed segment: corruption at the open after a
// crash, unless the open that came after the failed sync made its view durable. (Fails
// without the rewrite in SharedLog::Recover: "bad record at byte offset ...".)
TEST_CASE("shared log: an open after a failed recovery sync makes what it read durable",
          "[hostsim][storage]") {
  raft::sim::Rng rng(1);
  SimDisk disk(&rng);
  raft::storage::SharedLogOptions o;
  o.segment_bytes_target = 2048;
  {
    SimFileSystem fs(&disk);
    o.file_system = &fs;
    auto log = raft::storage::SharedLog::Open("/log", o);
    REQUIRE(log.ok());
    REQUIRE((*log)->Append(1, Entries(1, 5)).ok());
    REQUIRE((*log)->Sync().ok());
  }
  TearLastSegment(&disk, "/log", 1300);
  {
    SimFileSystem fs(&disk);
    o.file_system = &fs;
    disk.options().fail_fsync_probability = 1;  // recovery's truncation is never synced
    CHECK_FALSE(raft::storage::SharedLog::Open("/log", o).ok());
    disk.options().fail_fsync_probability = 0;
    // No crash: this open reads the truncated file from the page cache.
    auto log = raft::storage::SharedLog::Open("/log", o);
    REQUIRE(log.ok());
    for (raft::Index i = 6; i < 60; i += 5) {  // rolls: the segment with the tail closes
      REQUIRE((*log)->Append(1, Entries(i, 5)).ok());
      REQUIRE((*log)->Sync().ok());
    }
    CHECK((*log)->segment_count() > 1);
  }
  disk.Crash(rng);
  SimFileSystem fs(&disk);
  o.file_system = &fs;
  auto log = raft::storage::SharedLog::Open("/log", o);
  INFO((log.ok() ? std::string("ok") : log.status().ToString()));
  REQUIRE(log.ok());
  CHECK((*log)->Group(1)->LastIndex() == 60);
}

TEST_CASE("disk storage: an open after a failed recovery sync makes what it read durable",
          "[nodesim][storage]") {
  raft::sim::Rng rng(1);
  SimDisk disk(&rng);
  raft::DiskStorageOptions o;
  o.segment_bytes_target = 2048;
  {
    SimFileSystem fs(&disk);
    o.file_system = &fs;
    auto st = raft::DiskStorage::Open("/d", o);
    REQUIRE(st.ok());
    REQUIRE((*st)->Append(Entries(1, 5)).ok());
    REQUIRE((*st)->Sync().ok());
  }
  TearLastSegment(&disk, "/d", 1900);
  {
    SimFileSystem fs(&disk);
    o.file_system = &fs;
    disk.options().fail_fsync_probability = 1;
    CHECK_FALSE(raft::DiskStorage::Open("/d", o).ok());
    disk.options().fail_fsync_probability = 0;
    auto st = raft::DiskStorage::Open("/d", o);  // no crash: the page cache's view
    REQUIRE(st.ok());
    for (raft::Index i = 6; i < 60; i += 5) {
      REQUIRE((*st)->Append(Entries(i, 5)).ok());
      REQUIRE((*st)->Sync().ok());
    }
  }
  disk.Crash(rng);
  SimFileSystem fs(&disk);
  o.file_system = &fs;
  auto st = raft::DiskStorage::Open("/d", o);
  INFO((st.ok() ? std::string("ok") : st.status().ToString()));
  REQUIRE(st.ok());
  CHECK((*st)->LastIndex() == 60);
}

TEST_CASE("disk storage: a vote read after a failed sync is durable once the open served it",
          "[nodesim][storage]") {
  raft::sim::Rng rng(2);
  SimDisk disk(&rng);
  raft::DiskStorageOptions o;
  {
    SimFileSystem fs(&disk);
    o.file_system = &fs;
    auto st = raft::DiskStorage::Open("/d", o);
    REQUIRE(st.ok());
    REQUIRE((*st)->Append(Entries(1, 1)).ok());
    REQUIRE((*st)->SetHardState(raft::HardState{4, 1, 1}).ok());
    REQUIRE((*st)->Sync().ok());
    // A vote in term 5 whose sync fails: never durable, but in the page cache.
    disk.options().fail_fsync_probability = 1;
    REQUIRE((*st)->SetHardState(raft::HardState{5, 2, 1}).ok());
    CHECK_FALSE((*st)->Sync().ok());
    disk.options().fail_fsync_probability = 0;
  }
  raft::Term served = 0;
  {
    // The next process of this boot reads the vote and may act on it (answer the same
    // candidate again): from then on it must survive a crash.
    SimFileSystem fs(&disk);
    o.file_system = &fs;
    auto st = raft::DiskStorage::Open("/d", o);
    REQUIRE(st.ok());
    served = (*st)->InitialHardState().term;
  }
  disk.Crash(rng);
  SimFileSystem fs(&disk);
  o.file_system = &fs;
  auto st = raft::DiskStorage::Open("/d", o);
  REQUIRE(st.ok());
  CHECK((*st)->InitialHardState().term == served);
}
