// A full disk under a real process (issue 14, docs/operations.md "Disk failures"): one
// node's RocksDB directory is a small tmpfs that the test fills. When a flush fails with
// ENOSPC the node must not abort (a crash-loop, since the disk stays full): its state
// machine stalls, /status, /health and /metrics say why, linearizable reads on it answer
// 503 while stale reads and writes (forwarded to the leader) still work, it does not
// lead, and the rest of the cluster keeps committing. Once space is freed it resumes by itself,
// catches up, and a restart finds every acknowledged write.
//
// Needs root (mount); without it the test passes with a warning that it did not run.
//   build/tests/kvserver/process_disk_test
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>

#include "process_harness.h"

namespace kvtest {
namespace {

namespace fs = std::filesystem;

// A tmpfs of `bytes` at `dir`, lazily unmounted on destruction (even while a process
// still has files open there).
class TmpfsMount {
 public:
  TmpfsMount(fs::path dir, std::uint64_t bytes) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    const std::string opts = fmt::format("size={},mode=0700", bytes);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, opts.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  fs::path dir_;
  bool mounted_ = false;
  std::string error_;
};

std::uint64_t FreeBytes(const fs::path& dir) {
  struct statvfs v {};
  REQUIRE(::statvfs(dir.c_str(), &v) == 0);
  return static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize;
}

// Fills `dir` until `leave` bytes are free, with one file.
void Fill(const fs::path& file, std::uint64_t leave) {
  const std::uint64_t free = FreeBytes(file.parent_path());
  REQUIRE(free > leave);
  std::ofstream out(file, std::ios::binary);
  const std::string block(64 << 10, 'f');
  for (std::uint64_t n = 0; n + block.size() <= free - leave; n += block.size()) out << block;
  out.close();
  REQUIRE(out.good());
}

std::string FailureOf(NodeProcess& n) {
  auto j = n.StatusJson();
  return j.is_object() ? j.value("failure", "") : "";
}

// Two nodes, then a third (n2) joined with its <data>/<subdir> on a tmpfs of `bytes`.
// mounted() false (after a warning saying why) when not root or the mount fails.
struct ThirdOnTmpfs {
  ThirdOnTmpfs(const ClusterOptions& options, const char* subdir, std::uint64_t bytes)
      : c(options) {
    if (::geteuid() != 0) {
      WARN("process_disk_test needs root to mount a tmpfs: not run");
      return;
    }
    c.Start(2);
    n2 = &c.AddNode();
    mount = std::make_unique<TmpfsMount>(n2->spec().data_dir / subdir, bytes);
    if (!mount->mounted()) {
      WARN("cannot mount a tmpfs (" << mount->error() << "): process_disk_test not run");
      return;
    }
    n2->Start(c.node(0).http_addr());
    n2->WaitServing();
    c.WaitVoters(3);
  }
  bool mounted() const { return mount && mount->mounted(); }

  ProcessCluster c;
  NodeProcess* n2 = nullptr;
  std::unique_ptr<TmpfsMount> mount;
};

// Writes 64 KiB values k<n> through the leader, recording the acknowledged ones in
// `acked`, until `n` reports a failure in /status; false when it has not within 60 s.
bool WriteUntilFailure(ProcessCluster& c, NodeProcess& n,
                       std::map<std::string, std::string>* acked) {
  const std::string value(64 << 10, 'v');
  int i = 0;
  return WaitUntil(
      60s,
      [&] {
        const std::size_t leader = c.WaitLeader();
        const std::string key = fmt::format("k{:05}", i++);
        if (c.node(leader).Client().Put(key, value).Ok()) (*acked)[key] = value;
        return !FailureOf(n).empty();
      },
      1ms);
}

TEST_CASE(
    "a full disk stalls one node's state machine without a crash; freeing space recovers "
    "it with nothing lost",
    "[disk]") {
  ClusterOptions options;
  // Snapshots flush RocksDB's memtable: that flush is what meets the full disk.
  options.extra_args = {"-snapshot-entries", "40", "-snapshot-trailing", "20"};
  ThirdOnTmpfs t(options, "kv", 24u << 20);
  if (!t.mounted()) return;
  ProcessCluster& c = t.c;
  NodeProcess& n2 = *t.n2;
  const fs::path filler = n2.spec().data_dir / "kv" / "filler";
  Fill(filler, 1u << 20);

  // Write until node2's state machine reports the full disk.
  std::map<std::string, std::string> acked;
  const bool stalled = WriteUntilFailure(c, n2, &acked);
  INFO("writes acknowledged: " << acked.size());
  REQUIRE(stalled);
  const std::string failure = FailureOf(n2);
  CHECK(failure.find("cannot apply") != std::string::npos);

  // The node is up and says why; the others carry on without it.
  REQUIRE(n2.Alive());
  KvClient n2c = n2.Client();
  CHECK(n2c.Health().status == 503);
  CHECK(MetricSample(n2c.Metrics().body, "kv_state_machine_failed") == 1);
  const std::string small(1, 'y');
  // A follower forwards writes: the leader commits them without node2's apply.
  CHECK(WaitUntil(10s, [&] { return c.WaitLeader() != 2; }));
  REQUIRE(n2c.Put("through-node2", small).Ok());
  acked.emplace("through-node2", small);
  CHECK(n2c.Get(acked.begin()->first).status == 503);  // a linearizable read waits for apply
  CHECK(n2c.Get(acked.begin()->first, /*stale=*/true).Ok());
  for (int k = 0; k < 20; ++k) {
    const std::string key = fmt::format("after-full{:02}", k);
    REQUIRE(c.node(c.WaitLeader()).Client().Put(key, small).Ok());
    acked.emplace(key, small);
  }
  REQUIRE(n2.Alive());

  // Free the space: node2 resumes by itself and catches up.
  fs::remove(filler);
  CHECK(WaitUntil(
      30s, [&] { return FailureOf(n2).empty(); }, 100ms));
  c.WaitCaughtUp(2, 30s);
  for (const auto& [key, v] : acked) {
    HttpReply r = n2c.Get(key, /*stale=*/true);
    REQUIRE(r.Ok());
    REQUIRE(r.body == v);
  }
  CHECK(MetricSample(n2c.Metrics().body, "kv_state_machine_failed") == 0);

  // And a restart finds everything.
  CHECK(n2.Terminate() == 0);
  n2.Start();
  n2.WaitServing();
  c.WaitCaughtUp(2, 30s);
  for (const auto& [key, v] : acked) {
    HttpReply r = n2c.Get(key, /*stale=*/true);
    REQUIRE(r.Ok());
    REQUIRE(r.body == v);
  }
}

// The Raft log on a full disk (issue 14): node2's <data>/raft is a small tmpfs. An
// append that fails with ENOSPC puts its log into the failed state: the node stays up,
// says why, refuses what it cannot do safely, and the others keep committing. It never
// aborts, not even when restarted on the still-full disk (a crash-loop). Once space is
// freed, a restart recovers it with every acknowledged write.
TEST_CASE(
    "a full disk under the Raft log fails that node's log without a crash; a restart "
    "after freeing space recovers it with nothing lost",
    "[disk]") {
  ThirdOnTmpfs t(ClusterOptions{}, "raft", 16u << 20);
  if (!t.mounted()) return;
  ProcessCluster& c = t.c;
  NodeProcess& n2 = *t.n2;
  std::map<std::string, std::string> acked;
  PutOk(c.node(c.WaitLeader()).Client(), "before-full", "b");
  acked.emplace("before-full", "b");
  c.WaitCaughtUp(2, 30s);
  const fs::path filler = n2.spec().data_dir / "raft" / "filler";
  Fill(filler, 1u << 20);

  const bool failed = WriteUntilFailure(c, n2, &acked);
  INFO("writes acknowledged: " << acked.size());
  REQUIRE(failed);
  const std::string failure = FailureOf(n2);
  INFO("failure: " << failure);
  CHECK(failure.find("No space left on device") != std::string::npos);
  CHECK(failure.find("storage failed") != std::string::npos);

  // Up, saying why; what it cannot vouch for is refused, stale reads still work.
  REQUIRE(n2.Alive());
  KvClient n2c = n2.Client();
  CHECK(n2c.Health().status == 503);
  CHECK(MetricSample(n2c.Metrics().body, "kv_raft_storage_failed") == 1);
  HttpReply r = n2c.Get("before-full");
  CHECK(r.status == 503);  // at once: the barrier cannot complete on a failed node
  CHECK(r.body.find("storage failed") != std::string::npos);
  CHECK(r.body.find("consistency=stale") != std::string::npos);
  r = n2c.Get("before-full", /*stale=*/true);
  CHECK(r.Ok());
  CHECK(r.body == "b");
  // The others carry on (node2 no longer acknowledges anything).
  for (int k = 0; k < 20; ++k) {
    const std::string key = fmt::format("after-full{:02}", k);
    PutOk(c.node(c.WaitLeader()).Client(), key, "a");
    acked.emplace(key, "a");
  }
  REQUIRE(n2.Alive());

  // A restart on the still-full disk must not crash-loop: the node comes up (recovery
  // needs no new space), reports the failure again at its first write, and stays up.
  CHECK(n2.Terminate() == 0);
  n2.Start();
  n2.WaitServing();
  CHECK(WaitUntil(
      30s, [&] { return !FailureOf(n2).empty(); }, 100ms));
  CHECK(n2.Alive());

  // Free the space, restart: node2 catches up and holds every acknowledged write.
  fs::remove(filler);
  CHECK(n2.Terminate() == 0);
  n2.Start();
  n2.WaitServing();
  c.WaitCaughtUp(2, 30s);
  CHECK(FailureOf(n2).empty());
  CHECK(MetricSample(n2c.Metrics().body, "kv_raft_storage_failed") == 0);
  for (const auto& [key, v] : acked) {
    HttpReply got = n2c.Get(key, /*stale=*/true);
    REQUIRE(got.Ok());
    REQUIRE(got.body == v);
  }
}

}  // namespace
}  // namespace kvtest
