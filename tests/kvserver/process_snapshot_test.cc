// Issue 16, the snapshot footprint, with real processes: the leader's snapshots are linked
// RocksDB checkpoints (no copy of the state), and a node that joins under steady writes
// is caught up by exactly one stream without its directory growing past the state plus
// one snapshot in flight. The same scenario at 1 GiB is scripts/bench-snapshot-memory.sh.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <regex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "process_harness.h"

using namespace kvtest;
namespace fsys = std::filesystem;

namespace {

// Bytes on disk under `root`, each inode counted once (as `du`: hard links shared by a
// linked snapshot and the live DB are one copy). Skips what vanishes while it walks;
// `skip` is a directory name not to enter.
std::uint64_t DiskBytes(const fsys::path& root, const std::string& skip = "") {
  std::set<std::pair<dev_t, ino_t>> seen;
  std::uint64_t bytes = 0;
  std::error_code ec;
  fsys::recursive_directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (!skip.empty() && it->is_directory(ec) && it->path().filename() == skip) {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (seen.insert({st.st_dev, st.st_ino}).second)
      bytes += static_cast<std::uint64_t>(st.st_blocks) * 512;
  }
  return bytes;
}

std::string RandomValue(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    const std::uint64_t r = rng();
    std::memcpy(s.data() + i, &r, 8);
  }
  return s;
}

std::size_t CountOf(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

constexpr std::size_t kValueBytes = 256 * 1024;

// Writes `values` random values of kValueBytes ("big/<i>", RandomValue(kValueBytes, i))
// through the leader, then small "pad/<n>" keys until a snapshot covers the values.
// Returns the next pad number.
int WriteBigValuesUntilSnapshot(ProcessCluster& cluster, std::size_t leader, KvClient& lc,
                                int values) {
  for (int i = 0; i < values; ++i)
    PutOk(lc, "big/" + std::to_string(i), RandomValue(kValueBytes, static_cast<unsigned>(i)));
  const std::uint64_t big_index = JsonU64(cluster.node(leader).StatusJson(), "commit_index");
  int pad = 0;
  REQUIRE(WaitUntil(60s, [&] {
    for (int i = 0; i < 30; ++i) (void)lc.Put("pad/" + std::to_string(pad++), "x");
    return JsonU64(cluster.node(leader).StatusJson(), "snapshot_index") >= big_index;
  }));
  return pad;
}

// The first, middle and last of the `values` big values, read (stale) from `node`.
void CheckBigValues(NodeProcess& node, int values) {
  for (int i : {0, values / 2, values - 1}) {
    HttpReply r = node.Client().Get("big/" + std::to_string(i), /*stale=*/true);
    REQUIRE(r.status == 200);
    CHECK(r.body == RandomValue(kValueBytes, static_cast<unsigned>(i)));
  }
}

// Files named *.tmp under `dir`: a write, receive or linked snapshot not finished.
std::vector<std::string> TmpFilesUnder(const fsys::path& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (fsys::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().ends_with(".tmp")) found.push_back(it->path().string());
  return found;
}

}  // namespace

TEST_CASE("snapshots cost no copy of the state; a joiner under load needs one stream",
          "[cluster][snapshot][footprint]") {
  ProcessCluster cluster({.extra_args = {"-snapshot-entries", "100", "-snapshot-trailing", "20"}});
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  KvClient lc = cluster.node(leader).Client(30s);
  // 32 MiB of values RocksDB cannot compress.
  constexpr int kValues = 128;
  (void)WriteBigValuesUntilSnapshot(cluster, leader, lc, kValues);

  // The leader's snapshot is a directory of hard links into its own RocksDB.
  const fsys::path ldir = cluster.node(leader).spec().data_dir;
  std::size_t linked = 0;
  for (const auto& e : fsys::directory_iterator(ldir / "raft" / "snap"))
    if (e.path().extension() == ".snapd") ++linked;
  CHECK(linked >= 1);
  const std::uint64_t state = DiskBytes(ldir / "kv");
  REQUIRE(state >= kValues * kValueBytes);
  // (total - log) / state of the leader's directory now.
  auto leader_ratio = [&] {
    const std::uint64_t st = DiskBytes(ldir / "kv"), log = DiskBytes(ldir / "raft", "snap");
    const std::uint64_t total = DiskBytes(ldir);
    return st == 0 ? 0.0
                   : static_cast<double>(total - std::min(total, log)) / static_cast<double>(st);
  };

  // Steady writes while a fourth node joins; both directories are sampled all along.
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    KvClient c = cluster.node(leader).Client(5s);
    for (int i = 0; !stop.load(); ++i)
      if (c.Put("load/" + std::to_string(i % 500), std::to_string(i)).status == 200) ++written;
  });
  NodeProcess& joiner = cluster.AddNode();
  const fsys::path jdir = joiner.spec().data_dir;
  std::atomic<std::uint64_t> joiner_peak{0};
  std::vector<double> ratios;  // the sampler's until it is joined
  std::thread sampler([&] {
    while (!stop.load()) {
      joiner_peak = std::max(joiner_peak.load(), DiskBytes(jdir));
      ratios.push_back(leader_ratio());
      std::this_thread::sleep_for(50ms);
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  joiner.Start(cluster.node(leader).http_addr());
  joiner.WaitServing();
  cluster.WaitVoters(4, 60s);
  cluster.WaitCaughtUp(3, 60s);
  const double catch_up_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  writer.join();
  sampler.join();

  // The leader: its snapshot shares the state's files. A compaction since the latest
  // snapshot makes it hold files the live DB dropped, until the next snapshot (100
  // entries later): the median is the target; the worst is bounded by the state twice
  // plus RocksDB's slack (before issue 16 the directory held the state and two full
  // copies, 3-4x).
  REQUIRE(!ratios.empty());
  std::sort(ratios.begin(), ratios.end());
  INFO("leader (total - log) / state over " << ratios.size() << " samples: median "
                                            << ratios[ratios.size() / 2] << ", max "
                                            << ratios.back());
  CHECK(ratios[ratios.size() / 2] <= 1.3);
  CHECK(ratios.back() <= 2.3);

  const std::string jlog = joiner.Log();
  INFO("joiner: caught up in " << catch_up_s << " s, peak " << joiner_peak.load()
                               << " bytes, leader state " << state << ", " << written.load()
                               << " writes during the join");
  CHECK(written.load() > 0);
  CHECK(CountOf(jlog, "snapshot received") == 1);
  CHECK(CountOf(jlog, "form=linked") == 1);  // in layout form: its files kept as files
  CHECK(CountOf(jlog, "snapshot receive abandoned") == 0);
  CHECK(CountOf(jlog, "snapshot receive failed") == 0);
  // The snapshot arrives as the leader's files (layout form) and the restored DB links
  // them: about 1x (1.0004x seen). RocksDB's first compaction of the restored DB may add
  // up to one more copy until the next snapshot releases the received files: the bound
  // is the target, 2.2x. Before the layout form it was about 2x (the received
  // file and the DB extracted from it; 2.97x seen under ASan), before issue 16 13-18x.
  CHECK(static_cast<double>(joiner_peak.load()) <= 2.2 * static_cast<double>(state));
  CHECK(catch_up_s < 60);
  CheckBigValues(joiner, kValues);
}

// Issue 16, crash-at-any-point with real processes: a joiner is killed (kill -9) at
// several moments of its catch-up (during the stream, the install, its first linked
// snapshot), restarted each time, and must end caught up with the values intact and no
// partial file left, neither on itself nor on the leader.
TEST_CASE("a joiner killed at any point of its snapshot catch-up recovers, leaving nothing",
          "[cluster][snapshot][crash]") {
  ProcessCluster cluster({.extra_args = {"-snapshot-entries", "100", "-snapshot-trailing", "20"}});
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  KvClient lc = cluster.node(leader).Client(30s);
  constexpr int kValues = 64;  // 16 MiB
  int pad = WriteBigValuesUntilSnapshot(cluster, leader, lc, kValues);

  NodeProcess& joiner = cluster.AddNode();
  const std::string via = cluster.node(leader).http_addr();
  joiner.Start(via);
  for (int delay_ms : {30, 120, 300, 600}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    joiner.Kill();
    for (int i = 0; i < 20; ++i) (void)lc.Put("pad/" + std::to_string(pad++), "y");
    joiner.Start(via);
  }
  joiner.WaitServing(30s);
  cluster.WaitVoters(4, 60s);
  cluster.WaitCaughtUp(3, 60s);
  CheckBigValues(joiner, kValues);
  // Nothing partial stays: no receive, no linked snapshot being made, no restore.
  for (std::size_t i : {leader, std::size_t{3}}) {
    const fsys::path snap = cluster.node(i).spec().data_dir / "raft" / "snap";
    std::vector<std::string> found;
    // A snapshot being taken right now is not a leftover: give it a moment.
    CHECK(WaitUntil(10s, [&] { return (found = TmpFilesUnder(snap)).empty(); }));
    INFO("node" << i << ": " << (found.empty() ? "" : found.front()));
    CHECK(found.empty());
  }
}

// Crash-at-any-point of streaming, from the sender's side: the leader is killed (kill -9)
// while a joiner receives its linked snapshot. The next leader streams its own; the
// joiner ends a caught-up voter with the values, the old leader comes back as a follower,
// and no partial file stays anywhere.
TEST_CASE("a leader killed while it streams a snapshot: the next leader catches the joiner up",
          "[cluster][snapshot][crash]") {
  ProcessCluster cluster({.extra_args = {"-snapshot-entries", "100", "-snapshot-trailing", "20"}});
  cluster.Start(3);
  const std::size_t leader = cluster.WaitLeader();
  KvClient lc = cluster.node(leader).Client(30s);
  constexpr int kValues = 192;  // 48 MiB: a stream of some hundred ms, longer under ASan
  (void)WriteBigValuesUntilSnapshot(cluster, leader, lc, kValues);

  NodeProcess& joiner = cluster.AddNode();
  const fsys::path jsnap = joiner.spec().data_dir / "raft" / "snap";
  auto receiving = [&] {
    std::error_code ec;
    for (fsys::directory_iterator it(jsnap, ec), end; !ec && it != end; it.increment(ec))
      if (it->path().filename().string().ends_with(".recv.tmp")) return true;
    return false;
  };
  joiner.Start(cluster.node(leader).http_addr());
  // Polled every millisecond: the kill lands within a few of the stream's first bytes.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!receiving() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  REQUIRE(receiving());
  cluster.node(leader).Kill();
  const bool mid_stream = CountOf(joiner.Log(), "snapshot received") == 0;

  const std::size_t next = cluster.WaitLeader(20s);
  CHECK(next != leader);
  KvClient nc = cluster.node(next).Client(30s);
  for (int i = 0; i < 20; ++i) PutOk(nc, "after/" + std::to_string(i), "z");
  cluster.node(leader).Start();  // a member: restarts from its data, no -join
  cluster.node(leader).WaitServing(30s);
  // The joiner's own join call went to the killed node: it retries (through the
  // restarted one, which forwards to the leader) until it is promoted.
  joiner.WaitServing(30s);
  cluster.WaitVoters(4, 90s);
  cluster.WaitCaughtUp(3, 60s);
  CheckBigValues(joiner, kValues);
  HttpReply after = joiner.Client().Get("after/19", /*stale=*/true);
  CHECK(after.status == 200);
  const std::string jlog = joiner.Log();
  INFO("killed mid-stream: " << mid_stream << "; joiner log:\n"
                             << jlog.substr(jlog.size() > 4000 ? jlog.size() - 4000 : 0));
  CHECK(mid_stream);  // the kill came before the joiner had the whole snapshot
  CHECK(CountOf(jlog, "snapshot received") >= 1);
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    const fsys::path snap = cluster.node(i).spec().data_dir / "raft" / "snap";
    std::vector<std::string> found;
    CHECK(WaitUntil(10s, [&] { return (found = TmpFilesUnder(snap)).empty(); }));
    INFO("node" << i << ": " << (found.empty() ? "" : found.front()));
    CHECK(found.empty());
  }
}
