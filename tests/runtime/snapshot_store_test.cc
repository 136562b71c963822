// Snapshot files: streamed write and read, validation, corruption detection.
#include "runtime/snapshot_store.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

namespace raft::runtime {

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
  auto size = (*store)->FileSize(42, 7);
  REQUIRE(size.ok());
  std::string path = (*store)->PathOf(42, 7);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5000);
    f.put('y');  // corrupt the body
  }
  REQUIRE(SnapshotStore::Validate(path).status().code() == ErrorCode::kCorruption);
  auto recv = (*store)->Receive(42, 7);
  REQUIRE(recv.ok());
  auto raw = (*store)->ReadRaw(42, 7, 0, *size);
  REQUIRE((*recv)->Write(0, *raw).ok());
  REQUIRE((*recv)->Finish().code() == ErrorCode::kCorruption);
  std::filesystem::remove_all(dir);
}

}  // namespace raft::runtime
