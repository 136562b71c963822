// Snapshot files: streamed write and read, validation, corruption detection.
#include "runtime/snapshot_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>

#include "base/file_system.h"
#include "raft/disk_storage.h"

namespace raft::runtime {
namespace {

// The POSIX calls, counting directory syncs and failing every fsync of a file with
// `fsync_errno` once set.
class CountingFileSystem final : public base::ForwardingFileSystem {
 public:
  int sync_dirs = 0;
  std::vector<std::string> synced_dirs;
  int fsync_errno = 0;

  std::vector<std::pair<std::uint64_t, std::uint64_t>> writebacks;  // (offset, n)

  int Fsync(int fd) override {
    return fsync_errno != 0 ? fsync_errno : ForwardingFileSystem::Fsync(fd);
  }
  int StartWriteback(int fd, std::uint64_t offset, std::uint64_t n) override {
    writebacks.emplace_back(offset, n);
    return ForwardingFileSystem::StartWriteback(fd, offset, n);
  }
  int SyncDir(const std::string& dir) override {
    ++sync_dirs;
    synced_dirs.push_back(dir);
    return ForwardingFileSystem::SyncDir(dir);
  }
};

}  // namespace

TEST_CASE("snapshot files round trip through bounded buffers and detect corruption",
          "[runtime][snapshot]") {
  auto dir =
      std::filesystem::temp_directory_path() / ("raft-snap-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto store = SnapshotStore::Open(dir.string());
  REQUIRE(store.ok());
  SnapshotHeader h;
  h.meta = SnapshotMeta{42, 7, ConfState{{1, 2, 3}, {4}}};
  h.members = {MemberInfo{1, "n1", "127.0.0.1:1", "http"}};
  auto w = (*store)->Create(h);
  REQUIRE(w.ok());
  std::string chunk(1000, 'x');
  for (int i = 0; i < 100; ++i) REQUIRE((*w)->Write(chunk).ok());
  REQUIRE((*w)->Commit().ok());
  REQUIRE((*store)->Exists(42, 7));
  auto r = (*store)->OpenReader(42, 7);
  REQUIRE(r.ok());
  REQUIRE((*r)->header().meta == h.meta);
  REQUIRE((*r)->header().members == h.members);
  std::size_t total = 0;
  char buf[333];
  for (;;) {
    auto n = (*r)->Read(buf, sizeof(buf));
    REQUIRE(n.ok());
    if (*n == 0) break;
    total += *n;
  }
  REQUIRE(total == 100000);
  REQUIRE(SnapshotStore::Validate((*store)->PathOf(42, 7)).ok());

  // Receive the same file raw, as from a peer, under another name: validated on Finish.
  auto view = (*store)->OpenView(42, 7);
  REQUIRE(view.ok());
  std::string path = (*store)->PathOf(42, 7);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5000);
    f.put('y');  // corrupt the body
  }
  REQUIRE(SnapshotStore::Validate(path).status().code() == ErrorCode::kCorruption);
  auto recv = (*store)->Receive(42, 7);
  REQUIRE(recv.ok());
  auto raw = (*view)->ReadAt(0, (*view)->size() + 10);  // short at the end
  REQUIRE(raw->size() == (*view)->size());
  REQUIRE((*recv)->Write(0, *raw).ok());
  REQUIRE((*recv)->Finish().code() == ErrorCode::kCorruption);

  // A receive with a byte limit takes up to it and refuses the write that would pass it.
  auto capped = (*store)->Receive(43, 7, 1000);
  REQUIRE(capped.ok());
  REQUIRE((*capped)->Write(0, std::string(600, 'c')).ok());
  REQUIRE((*capped)->Write(600, std::string(400, 'c')).ok());
  const Status over = (*capped)->Write(1000, "c");
  CHECK(over.code() == ErrorCode::kInvalidArgument);
  CHECK(over.message().find("limit of 1000 bytes") != std::string::npos);
  CHECK((*capped)->bytes_received() == 1000);
  std::filesystem::remove_all(dir);
}

TEST_CASE("snapshot files go through the store's FileSystem", "[runtime][snapshot]") {
  auto dir =
      std::filesystem::temp_directory_path() / ("raft-snap-fs-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  CountingFileSystem fs;
  auto store = SnapshotStore::Open(dir.string(), &fs);
  REQUIRE(store.ok());
  fs.sync_dirs = 0;  // Open's sync of the new directory's parent
  SnapshotHeader h;
  h.meta = SnapshotMeta{5, 2, ConfState{{1}, {}}};
  {
    auto w = (*store)->Create(h);
    REQUIRE(w.ok());
    REQUIRE((*w)->Write("body").ok());
    REQUIRE((*w)->Commit().ok());
  }
  CHECK(fs.sync_dirs == 1);  // the rename made durable
  REQUIRE(SnapshotStore::Validate((*store)->PathOf(5, 2), &fs).ok());

  fs.fsync_errno = ENOSPC;  // a full disk on the file's fsync: kNoSpace, nothing visible
  h.meta.index = 6;
  auto w = (*store)->Create(h);
  REQUIRE(w.ok());
  REQUIRE((*w)->Write("body").ok());
  const Status s = (*w)->Commit();
  CHECK(s.code() == ErrorCode::kNoSpace);
  CHECK(s.message().starts_with("fsync " + (*store)->PathOf(6, 2)));
  CHECK_FALSE((*store)->Exists(6, 2));
  std::filesystem::remove_all(dir);
}

// A long receive reaches the disk as it comes: StartWriteback over every written range,
// in order, in steps of kWritebackBytes, so Finish's fsync has at most one step left.
TEST_CASE("a snapshot receive starts writeback as it goes", "[runtime][snapshot]") {
  auto dir =
      std::filesystem::temp_directory_path() / ("raft-snap-wb-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  CountingFileSystem fs;
  auto store = SnapshotStore::Open(dir.string(), &fs);
  REQUIRE(store.ok());
  SnapshotHeader h;
  h.meta = SnapshotMeta{9, 2, ConfState{{1}, {}}};
  {
    auto w = (*store)->Create(h);
    REQUIRE(w.ok());
    std::string body(1 << 20, 'b');
    for (int i = 0; i < 20; ++i) REQUIRE((*w)->Write(body).ok());
    REQUIRE((*w)->Commit().ok());
  }
  auto view = (*store)->OpenView(9, 2);
  REQUIRE(view.ok());
  const std::uint64_t size = (*view)->size();
  fs.writebacks.clear();
  auto recv = (*store)->Receive(9, 2);  // its own .recv.tmp file, renamed over on Finish
  REQUIRE(recv.ok());
  constexpr std::uint64_t kChunk = 256 * 1024;
  for (std::uint64_t off = 0; off < size; off += kChunk) {
    auto bytes = (*view)->ReadAt(off, static_cast<std::size_t>(std::min(kChunk, size - off)));
    REQUIRE(bytes.ok());
    REQUIRE((*recv)->Write(off, *bytes).ok());
  }
  std::uint64_t covered = 0;
  for (const auto& [offset, n] : fs.writebacks) {
    CHECK(offset == covered);
    CHECK(n >= SnapshotReceiver::kWritebackBytes);
    covered = offset + n;
  }
  CHECK(fs.writebacks.size() == size / SnapshotReceiver::kWritebackBytes);
  CHECK(size - covered < SnapshotReceiver::kWritebackBytes);
  REQUIRE((*recv)->Finish().ok());  // the bytes are intact: validated and in place
  CHECK(SnapshotStore::Validate((*store)->PathOf(9, 2), &fs).ok());
  std::filesystem::remove_all(dir);
}

// Finish checks what it was fed as it came, without reading the file again: the same
// verdicts whatever the chunking, down to single bytes across the header and trailer.
TEST_CASE("a snapshot receive checks header, body and trailer as the bytes come",
          "[runtime][snapshot]") {
  auto dir =
      std::filesystem::temp_directory_path() / ("raft-snap-chk-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto store = SnapshotStore::Open(dir.string());
  REQUIRE(store.ok());
  SnapshotHeader h;
  h.meta = SnapshotMeta{11, 4, ConfState{{1, 2}, {}}};
  h.members = {MemberInfo{1, "n1", "127.0.0.1:1", "http"}};
  {
    auto w = (*store)->Create(h);
    REQUIRE(w.ok());
    REQUIRE((*w)->Write(std::string(5000, 'q')).ok());
    REQUIRE((*w)->Commit().ok());
  }
  auto view = (*store)->OpenView(11, 4);
  REQUIRE(view.ok());
  auto raw = (*view)->ReadAt(0, (*view)->size());
  REQUIRE(raw.ok());
  const std::string good = *raw;

  // Feeds `bytes` in pieces of 1, 2, ... `step` bytes, cycling; returns Finish's verdict.
  auto receive = [&](const std::string& bytes, std::size_t step, Index index = 11) {
    auto recv = (*store)->Receive(index, 4);
    REQUIRE(recv.ok());
    std::size_t off = 0, n = 1;
    while (off < bytes.size()) {
      const std::size_t take = std::min(n, bytes.size() - off);
      REQUIRE((*recv)->Write(off, std::string_view(bytes).substr(off, take)).ok());
      off += take;
      n = n % step + 1;
    }
    return (*recv)->Finish();
  };
  for (std::size_t step : {1, 7, 17, 33, 100000}) {
    INFO("step " << step);
    CHECK(receive(good, step).ok());
    std::string bad = good;
    bad[3] ^= 1;  // magic
    CHECK(receive(bad, step).code() == ErrorCode::kCorruption);
    bad = good;
    bad[20] ^= 1;  // meta
    CHECK(receive(bad, step).code() == ErrorCode::kCorruption);
    bad = good;
    bad[good.size() / 2] ^= 1;  // body
    CHECK(receive(bad, step).code() == ErrorCode::kCorruption);
    bad = good;
    bad[good.size() - 10] ^= 1;  // trailer's CRC
    CHECK(receive(bad, step).code() == ErrorCode::kCorruption);
    CHECK(receive(good.substr(0, good.size() - 1), step).code() == ErrorCode::kCorruption);
    CHECK(receive(good.substr(0, 10), step).code() == ErrorCode::kCorruption);
    CHECK(receive(good, step, 12).code() == ErrorCode::kCorruption);  // another index
  }
  std::filesystem::remove_all(dir);
}

namespace {

// Writes a complete snapshot file (index, term) with `body`.
void WriteSnapshot(SnapshotStore* store, Index index, Term term, const std::string& body) {
  SnapshotHeader h;
  h.meta = SnapshotMeta{index, term, ConfState{{1}, {}}};
  auto w = store->Create(h);
  REQUIRE(w.ok());
  REQUIRE((*w)->Write(body).ok());
  REQUIRE((*w)->Commit().ok());
}

// Files of receives in progress of (index, term): <name>.<stream>.recv.tmp.
int ReceiveFiles(const SnapshotStore& store, Index index, Term term) {
  const std::string prefix = std::filesystem::path(store.PathOf(index, term)).filename().string();
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(store.dir())) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix + ".", 0) == 0 && name.ends_with(".recv.tmp")) ++n;
  }
  return n;
}

}  // namespace

// Security review F-17: two receives of one snapshot (a stale stream and its restart)
// write files of their own; each Finish validates its own bytes; a leftover is removed
// when the store opens again.
TEST_CASE("receives of the same snapshot never share a file", "[runtime][snapshot]") {
  auto dir = std::filesystem::temp_directory_path() /
             ("raft-snap-recv-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto store = SnapshotStore::Open(dir.string());
  REQUIRE(store.ok());
  SnapshotStore* s = store->get();
  WriteSnapshot(s, 7, 1, "source");
  auto view = s->OpenView(7, 1);
  REQUIRE(view.ok());
  auto raw = (*view)->ReadAt(0, (*view)->size());
  REQUIRE(raw.ok());
  std::filesystem::remove(s->PathOf(7, 1));

  auto a = s->Receive(7, 1);
  auto b = s->Receive(7, 1);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(ReceiveFiles(*s, 7, 1) == 2);
  REQUIRE((*a)->Write(0, raw->substr(0, 10)).ok());
  REQUIRE((*b)->Write(0, *raw).ok());  // b's bytes never land in a's file, nor a's in b's
  REQUIRE((*b)->Finish().ok());
  CHECK(SnapshotStore::Validate(s->PathOf(7, 1)).ok());
  CHECK(ReceiveFiles(*s, 7, 1) == 1);  // a's, still open
  REQUIRE((*a)->Write(10, "garbage").ok());
  CHECK((*a)->Finish().code() == ErrorCode::kCorruption);
  CHECK(SnapshotStore::Validate(s->PathOf(7, 1)).ok());  // b's file is untouched
  a->reset();
  CHECK(ReceiveFiles(*s, 7, 1) == 0);

  auto left = s->Receive(7, 1);  // a crash mid-receive leaves its file behind
  REQUIRE(left.ok());
  REQUIRE((*left)->Write(0, "partial").ok());
  CHECK(ReceiveFiles(*s, 7, 1) == 1);
  auto reopened = SnapshotStore::Open(dir.string());
  REQUIRE(reopened.ok());
  CHECK(ReceiveFiles(**reopened, 7, 1) == 0);
  left->reset();
  std::filesystem::remove_all(dir);
}

// Safety review 4: cleanup keys on the log's snapshot, not on "the newest two".
TEST_CASE("cleanup keeps the log's snapshot and those above it, drops those below",
          "[runtime][snapshot]") {
  auto dir = std::filesystem::temp_directory_path() /
             ("raft-snap-cleanup-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto store = SnapshotStore::Open(dir.string());
  REQUIRE(store.ok());
  SnapshotStore* s = store->get();
  WriteSnapshot(s, 10, 1, "a");
  WriteSnapshot(s, 20, 1, "b");
  WriteSnapshot(s, 20, 2, "c");    // same index, another term: not the log's
  WriteSnapshot(s, 1000, 3, "d");  // received orphans above the log's snapshot
  WriteSnapshot(s, 1001, 3, "e");
  auto old_recv = s->Receive(15, 1);  // a receive in progress below it
  REQUIRE(old_recv.ok());
  REQUIRE((*old_recv)->Write(0, "partial").ok());
  auto new_recv = s->Receive(2000, 3);  // and one above it
  REQUIRE(new_recv.ok());

  s->Cleanup(20, 2);
  CHECK_FALSE(s->Exists(10, 1));
  CHECK_FALSE(s->Exists(20, 1));
  CHECK(s->Exists(20, 2));
  CHECK(s->Exists(1000, 3));
  CHECK(s->Exists(1001, 3));
  CHECK(ReceiveFiles(*s, 15, 1) == 0);
  CHECK_FALSE((*old_recv)->Finish().ok());  // incomplete, and its name is gone
  CHECK(ReceiveFiles(*s, 2000, 3) == 1);

  s->Cleanup(1001, 3);  // a later local snapshot passes the orphans
  CHECK_FALSE(s->Exists(20, 2));
  CHECK_FALSE(s->Exists(1000, 3));
  CHECK(s->Exists(1001, 3));
  new_recv->reset();
  std::filesystem::remove_all(dir);
}

// Safety review 3, at the store: a view reads the file it opened, whatever happens to the
// name.
TEST_CASE("a snapshot view reads its file after cleanup removed the name", "[runtime][snapshot]") {
  auto dir = std::filesystem::temp_directory_path() /
             ("raft-snap-view-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto store = SnapshotStore::Open(dir.string());
  REQUIRE(store.ok());
  SnapshotStore* s = store->get();
  WriteSnapshot(s, 10, 1, std::string(5000, 'x'));
  auto view = s->OpenView(10, 1);
  REQUIRE(view.ok());
  auto head = (*view)->ReadAt(0, 100);
  REQUIRE(head.ok());
  WriteSnapshot(s, 20, 1, "newer");
  WriteSnapshot(s, 30, 1, "newest");
  s->Cleanup(30, 1);
  REQUIRE_FALSE(s->Exists(10, 1));
  REQUIRE_FALSE(s->OpenView(10, 1).ok());  // a new stream cannot start on it
  std::string whole = *head;
  for (;;) {
    auto chunk = (*view)->ReadAt(whole.size(), 1000);
    REQUIRE(chunk.ok());
    if (chunk->empty()) break;
    whole += *chunk;
  }
  CHECK(whole.size() == (*view)->size());
  CHECK(whole.find(std::string(5000, 'x')) != std::string::npos);
  view->reset();
  std::filesystem::remove_all(dir);
}

// Safety review 9c: the snap/ directory's name is made durable in its parent when the
// store creates it (the log may name a snapshot in it on the next start).
TEST_CASE("opening a store creates its directory durably", "[runtime][snapshot]") {
  const auto parent =
      std::filesystem::temp_directory_path() / ("raft-snap-dir-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(parent);
  std::filesystem::create_directories(parent);
  CountingFileSystem fs;
  REQUIRE(SnapshotStore::Open((parent / "snap").string(), &fs).ok());
  CHECK(fs.synced_dirs == std::vector<std::string>{parent.string()});
  fs.synced_dirs.clear();
  REQUIRE(SnapshotStore::Open((parent / "snap").string(), &fs).ok());  // exists: no sync
  CHECK(fs.synced_dirs.empty());
  std::filesystem::remove_all(parent);
}

}  // namespace raft::runtime

namespace raft::runtime {

// Security review F-13: the log and the snapshots hold every value, for the owner only,
// whatever the umask.
TEST_CASE("the data directories are 0700 and every file 0600", "[runtime][snapshot][fs]") {
  auto dir =
      std::filesystem::temp_directory_path() / ("raft-modes-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const mode_t old = ::umask(0);
  auto mode = [](const std::filesystem::path& p) {
    struct stat st;
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 0777;
  };
  {
    REQUIRE(base::PosixFileSystem()->MkdirAll((dir / "data").string()) == 0);
    auto disk = DiskStorage::Open((dir / "data" / "log").string(), {});
    REQUIRE(disk.ok());
    REQUIRE((*disk)->Append({Entry{1, 1, EntryType::kNormal, "x"}}).ok());
    REQUIRE((*disk)->SetHardState(HardState{1, kNoNode, 1}).ok());
    REQUIRE((*disk)->Sync().ok());
    auto store = SnapshotStore::Open((dir / "data" / "snap").string());
    REQUIRE(store.ok());
    auto w = (*store)->Create(SnapshotHeader{SnapshotMeta{1, 1, ConfState{{1}, {}}}, {}});
    REQUIRE(w.ok());
    REQUIRE((*w)->Commit().ok());
  }
  ::umask(old);
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    INFO(e.path().string());
    CHECK(mode(e.path()) == (e.is_directory() ? 0700u : 0600u));
  }
  CHECK(mode(dir) == 0700u);
  std::filesystem::remove_all(dir);
}

}  // namespace raft::runtime
