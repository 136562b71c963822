// kvserver in ranges mode (-shards 8; docs/multi-raft.md, "kvserver: ranges") as real
// processes: bootstrap and join, routing and forwarding, listing across ranges, restarts,
// leaders spread, splits, backups and restores; and the chaos test: kills and partitions
// (partition_proxy.h) under concurrent clients on keys of every range, checked
// linearizable with tests/lin.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "lin_clients.h"
#include "partition_proxy.h"
#include "process_harness.h"
#include "raft/node.h"

namespace kvtest {
namespace {

constexpr int kShards = 8;
constexpr std::uint64_t kFirstDataRangeForTest = 2;  // kv::kFirstDataRange

// One key in each of the 8 ranges of a bootstrap (split points + 7 C O [ g s).
const std::vector<std::string> kRangeKeys = {"#k", "1k", "=k", "Ik", "Uk", "ak", "mk", "yk"};

// Three ranges-mode nodes, each behind a PartitionProxy on its Raft port; `extra` flags
// go to every node, those added later included.
class RangesCluster {
 public:
  explicit RangesCluster(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
    for (int i = 0; i < 3; ++i) {
      NodeProcess& n = cluster_.AddNode();
      const std::uint16_t proxy_port = PickFreePort();
      n.mutable_spec().extra_args = {"-shards", std::to_string(kShards), "-advertise-raddr",
                                     fmt::format("127.0.0.1:{}", proxy_port)};
      n.mutable_spec().extra_args.insert(n.mutable_spec().extra_args.end(), extra_.begin(),
                                         extra_.end());
      proxies_.push_back(std::make_unique<PartitionProxy>(
          proxy_port, n.raft_port(), raft::NodeIdFromName(n.id()), &partitions_));
    }
  }

  // node0 bootstraps; node1 and node2 join through it; returns once every range (and
  // the meta range) has the three as voters and a leader.
  void Start() {
    node(0).Start();
    node(0).WaitServing();
    for (int i = 1; i < 3; ++i) {
      node(i).Start(node(0).http_addr());
      node(i).WaitServing();
    }
    WaitAllRanges(3, 60s);
    // Then the leaders spread (node0 led every range): until then a write may meet a
    // leadership transfer and get 503 (retry), which the tests below do not expect.
    std::map<std::string, int> led;
    bool spread = WaitUntil(30s, [&] {
      led = Leaders();
      return led.size() == 3 && std::all_of(led.begin(), led.end(), [](const auto& l) {
               return l.second >= 2 && l.second <= 3;
             });
    });
    if (!spread) cluster_.DumpLogs();
    REQUIRE(spread);
  }

  // Waits until node i's /status shows the directory of `ranges` ranges (at least
  // `ranges` when `at_least`), each with `voters` voters, no learners and a leader.
  void WaitAllRanges(std::size_t voters, Millis limit, std::size_t i = 0,
                     std::size_t ranges = kShards, bool at_least = false) {
    std::string seen;
    bool ok = WaitUntil(limit, [&] {
      auto st = node(i).StatusJson();
      if (st.is_null() || !st.contains("ranges")) return false;
      seen = st.dump();
      if (at_least ? st["ranges"].size() < ranges : st["ranges"].size() != ranges) return false;
      std::vector<nlohmann::json> groups(st["ranges"].begin(), st["ranges"].end());
      groups.push_back(st["meta"]);
      for (const auto& g : groups)
        if (!g.value("hosted", false) || g["voters"].size() != voters || !g["learners"].empty() ||
            g["leader"].is_null())
          return false;
      return true;
    });
    if (!ok) {
      cluster_.DumpLogs();
      FAIL("the ranges did not settle on " << voters << " voters; last /status: " << seen);
    }
  }

  // Data ranges led by each node, as node i sees them.
  std::map<std::string, int> Leaders(std::size_t i = 0) {
    std::map<std::string, int> led;
    auto st = node(i).StatusJson();
    if (st.is_null() || !st.contains("ranges")) return led;
    for (const auto& g : st["ranges"])
      if (g["leader"].is_string()) ++led[g["leader"].get<std::string>()];
    return led;
  }

  NodeProcess& node(std::size_t i) { return cluster_.node(i); }
  // A node of the cluster's harness without the ranges flags (not started).
  NodeProcess& AddSingleGroupNode() { return cluster_.AddNode(); }
  // A ranges-mode node without a proxy (not started).
  NodeProcess& AddRangesNode() {
    std::vector<std::string> args = {"-shards", std::to_string(kShards)};
    args.insert(args.end(), extra_.begin(), extra_.end());
    return cluster_.AddNode(args);
  }
  Partitions& partitions() { return partitions_; }
  const std::filesystem::path& root() const { return cluster_.root(); }
  void DumpLogs() { cluster_.DumpLogs(); }
  std::vector<std::string> Addrs() {
    std::vector<std::string> a;
    for (int i = 0; i < 3; ++i) a.push_back(node(i).http_addr());
    return a;
  }

 private:
  std::vector<std::string> extra_;
  ProcessCluster cluster_;
  Partitions partitions_;
  std::vector<std::unique_ptr<PartitionProxy>> proxies_;
};

TEST_CASE("ranges: 3 nodes with -shards 8 route, forward, list across ranges and restart",
          "[ranges]") {
  RangesCluster c;
  c.Start();

  // The directory tiles the key space; every node knows it.
  auto st = c.node(1).StatusJson();
  REQUIRE(st.value("mode", "") == "ranges");
  REQUIRE(st["ranges"].size() == 8u);
  std::string prev_end;
  for (std::size_t r = 0; r < 8; ++r) {
    const auto& g = st["ranges"][r];
    CHECK(g["start"].get<std::string>() == prev_end);
    prev_end = g["end"].get<std::string>();
  }
  CHECK(prev_end.empty());

  // Writes through every node (most forwarded to the range's leader), reads elsewhere.
  std::map<std::string, std::string> want;
  for (int i = 0; i < 80; ++i) {
    const std::string key = fmt::format("{}key{}", static_cast<char>(0x21 + (i * 7) % 94), i);
    const std::string value = fmt::format("v{}", i);
    HttpReply r = c.node(i % 3).Client().Put(key, value);
    REQUIRE(r.status == 200);
    want[key] = value;
  }
  for (const auto& [k, v] : want) {
    HttpReply r = c.node(k.size() % 3).Client().Get(k);
    REQUIRE(r.status == 200);
    REQUIRE(r.body == v);
  }
  // CAS is single-key, in the key's range.
  const std::string cas_key = "Zcas", cas_value = "1";
  CHECK(c.node(2).Client().PutIfAbsent(cas_key, cas_value).status == 200);
  CHECK(c.node(0).Client().PutIfAbsent(cas_key, "2").status == 412);
  want.emplace(cas_key, cas_value);

  // Listing walks the ranges in key order, pages crossing range boundaries.
  std::map<std::string, std::string> listed;
  std::string after;
  for (int page = 0; page < 100; ++page) {
    HttpReply r =
        c.node(page % 3).Client().List("", 7, after.empty() ? std::nullopt : std::optional(after));
    REQUIRE(r.status == 200);
    auto j = r.Json();
    std::string last;
    for (const auto& item : j["items"]) {
      last = item["key"].get<std::string>();
      CHECK(listed.count(last) == 0);
      CHECK(last > after);
      listed[last] = item["value"].get<std::string>();
    }
    if (j["next"].is_null()) break;
    after = j["next"].get<std::string>();
  }
  CHECK(listed == want);
  // A prefix inside one range, and one whose keys span none.
  HttpReply one = c.node(1).Client().List("Zc");
  REQUIRE(one.status == 200);
  CHECK(one.Json()["items"].size() == 1u);

  // Leaders stay spread (Start waited for it): each node leads its share of the 8 data
  // ranges (3, 3, 2).
  std::map<std::string, int> led = c.Leaders();
  INFO("leaders: node0 " << led["node0"] << ", node1 " << led["node1"] << ", node2 "
                         << led["node2"]);
  CHECK(led.size() == 3);
  for (const auto& [id, n] : led) CHECK((n >= 2 && n <= 3));

  // Routes ranges mode does not have yet say so.
  CHECK(c.node(0).Client().Request("POST", "/transfer-leader", "{}", "application/json").status ==
        501);
  // Per-range metrics.
  HttpReply m = c.node(0).Client().Metrics();
  REQUIRE(m.status == 200);
  CHECK(m.body.find("kv_range_leader{range=\"9\"}") != std::string::npos);
  CHECK(m.body.find("kv_host_groups 9") != std::string::npos);
  // kvctl ranges prints one line per range.
  CommandRun ctl = RunCommand(fmt::format("{} -addr {} ranges", KVCTL_BIN, c.node(2).http_addr()));
  CHECK(ctl.exit_code == 0);
  CHECK(std::count(ctl.output.begin(), ctl.output.end(), '\n') == 9);

  // A single-group node cannot join a ranges cluster: the join is refused and it exits.
  NodeProcess& single = c.AddSingleGroupNode();
  single.Start(c.node(0).http_addr());
  auto exit_code = single.WaitExit(30s);
  REQUIRE(exit_code.has_value());
  CHECK(*exit_code != 0);
  CHECK(single.Log().find("runs in ranges mode") != std::string::npos);

  // A graceful stop and a kill -9, then both back: nothing lost, on every node. The
  // graceful stop hands every range it leads over first, all at once.
  const int led_by_1 = c.Leaders()["node1"];
  REQUIRE(led_by_1 >= 2);
  CHECK(c.node(1).Terminate() == 0);
  {
    const std::string log = c.node(1).Log();
    const std::size_t at = log.find("ranges' leadership handed over");
    REQUIRE(at != std::string::npos);
    const std::string line = log.substr(at, log.find('\n', at) - at);
    INFO(line);
    int handed = -1, led = -1;
    REQUIRE(std::sscanf(line.c_str() + line.find("handed="), "handed=%d led=%d", &handed, &led) ==
            2);
    CHECK(handed == led);
    CHECK(led >= led_by_1);  // the meta range too, if it led it
  }
  CHECK(WaitUntil(5s, [&] {
    const auto led = c.Leaders();
    return led.count("node1") == 0 && led.size() == 2;
  }));
  c.node(2).Kill();
  c.node(1).Start();
  c.node(2).Start();
  c.node(1).WaitServing();
  c.node(2).WaitServing();
  c.WaitAllRanges(3, 30s, 2);
  for (const auto& [k, v] : want) {
    for (std::size_t i = 0; i < 3; ++i) {
      HttpReply r = c.node(i).Client().Get(k);
      REQUIRE(r.status == 200);
      REQUIRE(r.body == v);
    }
  }

  // A fourth node joins: a voter of every range, it takes its share of the leaders. Then
  // it leaves (asked through another node): it hands its ranges over, every range is back
  // to the three, the table forgets it, and nothing is lost.
  NodeProcess& fourth = c.AddRangesNode();
  fourth.Start(c.node(1).http_addr());
  fourth.WaitServing();
  c.WaitAllRanges(4, 60s);
  CHECK(WaitUntil(20s, [&] { return c.Leaders()[fourth.id()] >= 1; }));
  HttpReply left = c.node(2).Client().Leave(fourth.id());
  INFO(left.Describe());
  REQUIRE(left.status == 200);
  c.WaitAllRanges(3, 30s);
  CHECK(c.Leaders().count(fourth.id()) == 0);
  CHECK(c.node(0).StatusJson()["processes"].size() == 3u);
  CHECK(c.node(1).Client().Leave(fourth.id()).status == 404);
  for (const auto& [k, v] : want) {
    HttpReply r = c.node(k.size() % 3).Client().Get(k);
    REQUIRE(r.status == 200);
    REQUIRE(r.body == v);
  }
}

// Range snapshots (docs/multi-raft.md, "Group snapshots"): with a snapshot every 8
// entries, every range's log is compacted behind its snapshot, so a fourth node can only
// catch up by receiving each range's snapshot, and a node restarted after a kill rebuilds
// the meta range (in memory) from its snapshot.
TEST_CASE("ranges: snapshots compact every range; a joiner and a restart catch up from them",
          "[ranges][snapshot]") {
  RangesCluster c({"-snapshot-entries", "8", "-snapshot-trailing", "2"});
  c.Start();
  std::map<std::string, std::string> want;
  for (int i = 0; i < 40; ++i) {
    for (const std::string& k : kRangeKeys) {
      const std::string key = k + std::to_string(i);
      const std::string value = fmt::format("v{}-{}", i, k);
      PutOk(c.node(static_cast<std::size_t>(i) % 3).Client(), key, value);
      want[key] = value;
    }
  }
  for (std::size_t i = 0; i < 3; ++i) {
    REQUIRE(WaitUntil(20s, [&] {
      auto st = c.node(i).StatusJson();
      if (st.is_null() || !st.contains("ranges")) return false;
      for (const auto& g : st["ranges"])
        if (g.value("snapshot_index", 0) < 32) return false;
      return true;
    }));
    const std::string metrics = c.node(i).Client().Metrics().body;
    CHECK(MetricSample(metrics, "kv_host_snapshots_taken_total") >= 8 * 4);
  }
  // The meta range snapshots too: its state is the processes and the directory.
  REQUIRE(WaitUntil(20s, [&] {
    auto st = c.node(0).StatusJson();
    return !st.is_null() && st["meta"].value("snapshot_index", 0) > 0;
  }));

  NodeProcess& fourth = c.AddRangesNode();
  fourth.Start(c.node(1).http_addr());
  fourth.WaitServing();
  c.WaitAllRanges(4, 60s);
  for (const auto& [k, v] : want) RequireValue(fourth.Client(), k, v);
  const std::string metrics = fourth.Client().Metrics().body;
  CHECK(MetricSample(metrics, "kv_host_snapshots_installed_total") >= kShards);
  CHECK(fourth.Log().find("snapshot installed") != std::string::npos);

  // node2 killed and restarted: its meta range comes back from its snapshot, then the log.
  c.node(2).Kill();
  PutOk(c.node(0).Client(), "Uk-after", "1");
  c.node(2).Start();
  c.node(2).WaitServing();
  c.WaitAllRanges(4, 60s, 2);
  CHECK(c.node(2).Log().find("state machine restored from snapshot") != std::string::npos);
  RequireValue(c.node(2).Client(), "Uk-after", "1");
  for (const auto& [k, v] : want) RequireValue(c.node(2).Client(), k, v);
}

// The lines of GET `target` on `addr` (a watch stream), parsed, until `n` events (lines
// that are not progress) arrived or `limit` passed.
std::vector<nlohmann::json> WatchLines(const std::string& addr, const std::string& target,
                                       std::size_t n, Millis limit) {
  std::vector<nlohmann::json> lines;
  std::size_t events = 0;
  std::string pending;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  httplib::Client cli("http://" + addr);
  cli.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(limit));
  (void)cli.Get(target, [&](const char* data, std::size_t len) {
    pending.append(data, len);
    for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
      auto j = nlohmann::json::parse(pending.substr(0, nl), nullptr, false);
      if (j.is_discarded()) continue;
      if (j.value("type", "") != "progress") ++events;
      lines.push_back(std::move(j));
    }
    return events < n && std::chrono::steady_clock::now() < deadline;
  });
  return lines;
}

TEST_CASE("ranges: a watch follows every range its prefix overlaps, each in its index order",
          "[ranges][watch]") {
  RangesCluster c;
  c.Start();
  std::map<std::string, std::uint64_t> range_of;  // key -> the range routing it
  auto dir = c.node(0).StatusJson()["ranges"];
  const std::vector<std::string> keys = {"#w1", "1w2", "=w3", "Iw4", "Uw5", "aw6", "mw7", "yw8"};
  for (const std::string& k : keys)
    for (const auto& g : dir) {
      const std::string start = g["start"], end = g["end"];
      if (k >= start && (end.empty() || k < end)) range_of[k] = g["id"].get<std::uint64_t>();
    }
  REQUIRE(range_of.size() == keys.size());

  // A watch of everything from node1's position before the writes (each range's applied
  // index + 1), whenever its stream opens.
  std::vector<std::string> start;
  const nlohmann::json before = c.node(1).StatusJson();  // outlives the loop below
  for (const auto& g : before["ranges"])
    start.push_back(fmt::format("{}:{}", g["id"].get<std::uint64_t>(),
                                g["applied_index"].get<std::uint64_t>() + 1));
  const std::string watch_all = fmt::format("/watch?from={}", fmt::join(start, ","));
  std::vector<nlohmann::json> seen;
  std::thread watcher([&] { seen = WatchLines(c.node(1).http_addr(), watch_all, 16, 20s); });
  for (int round = 0; round < 2; ++round)
    for (std::size_t i = 0; i < keys.size(); ++i)
      REQUIRE(c.node(i % 3).Client().Put(keys[i], fmt::format("v{}", round)).status == 200);
  watcher.join();

  std::map<std::uint64_t, std::uint64_t> last_index;  // per range: strictly increasing
  std::map<std::string, int> puts;
  for (const auto& e : seen) {
    if (e.value("type", "") != "put") continue;
    const std::string key = e["key"];
    INFO(e.dump());
    REQUIRE(e.contains("range"));
    CHECK(e["range"].get<std::uint64_t>() == range_of[key]);
    CHECK(e["index"].get<std::uint64_t>() > last_index[range_of[key]]);
    last_index[range_of[key]] = e["index"].get<std::uint64_t>();
    CHECK(e["value"].get<std::string>() == fmt::format("v{}", puts[key]++));
  }
  for (const std::string& k : keys) CHECK(puts[k] == 2);

  // from= takes a position back: from each range's first put of "v1", both rounds' second
  // writes come again (and a prefix inside one range watches that range alone).
  std::vector<std::string> position;
  for (const auto& e : seen)
    if (e.value("value", "") == "v1")
      position.push_back(
          fmt::format("{}:{}", e["range"].get<std::uint64_t>(), e["index"].get<std::uint64_t>()));
  const std::string from = fmt::format("{}", fmt::join(position, ","));
  auto again = WatchLines(c.node(2).http_addr(), "/watch?from=" + from, 8, 10s);
  std::size_t v1 = 0;
  for (const auto& e : again) v1 += e.value("value", "") == "v1";
  CHECK(v1 == keys.size());
  auto one = WatchLines(c.node(0).http_addr(), "/watch?prefix=aw&from=" + from, 1, 10s);
  REQUIRE_FALSE(one.empty());
  CHECK(one[0]["key"] == "aw6");
  CHECK(one[0]["range"].get<std::uint64_t>() == range_of["aw6"]);
  // kvctl watch prints a range's index before each change. It watches from "now", so the
  // key is written until kvctl ends (a write before its stream opened is not shown).
  CommandRun ctl;
  std::atomic<bool> kvctl_done{false};
  std::thread kvctl([&] {
    ctl =
        RunCommand(fmt::format("timeout 4 {} -addr {} watch mw", KVCTL_BIN, c.node(1).http_addr()));
    kvctl_done = true;
  });
  for (int n = 0; !kvctl_done; ++n) {
    (void)c.node(0).Client().Put("mw7", fmt::format("k{}", n));
    std::this_thread::sleep_for(200ms);
  }
  kvctl.join();
  INFO(ctl.output);
  CHECK(ctl.output.find(fmt::format("{}:", range_of["mw7"])) == 0);
  CHECK(ctl.output.find(" put mw7 k") != std::string::npos);

  // Single-group parameters are refused in ranges mode, and malformed positions.
  CHECK(c.node(0).Client().Request("GET", "/watch?from_index=3").status == 400);
  CHECK(c.node(0).Client().Request("GET", "/watch?from=2:0").status == 400);
  CHECK(c.node(0).Client().Request("GET", "/watch?from=x").status == 400);
}

// The ranges of node i's /status, in key order.
std::vector<nlohmann::json> RangesOf(NodeProcess& n) {
  auto st = n.StatusJson();
  if (st.is_null() || !st.contains("ranges")) return {};
  return std::vector<nlohmann::json>(st["ranges"].begin(), st["ranges"].end());
}

// POST /split?key=K through `client` (forwarded to the meta range's leader).
HttpReply Split(const KvClient& client, const std::string& key) {
  return client.Request("POST", "/split?key=" + key);
}

TEST_CASE(
    "ranges: a split moves half a range to a new range on the same nodes; it serves, "
    "restarts, is joined and watched",
    "[ranges][split]") {
  RangesCluster c;
  c.Start();
  std::map<std::string, std::string> want;
  for (int i = 0; i < 20; ++i) {
    const std::string key = fmt::format("Ik{:02}", i);
    PutOk(c.node(static_cast<std::size_t>(i) % 3).Client(), key, fmt::format("v{}", i));
    want[key] = fmt::format("v{}", i);
  }
  REQUIRE(c.node(0).Client().Put("Ik15", "ttl", "ttl=600").status == 200);
  want["Ik15"] = "ttl";
  const HttpReply ttl_before = c.node(0).Client().Get("Ik15");
  // A watch of the prefix from before the split, at node1.
  std::vector<nlohmann::json> seen;
  std::thread watcher(
      [&] { seen = WatchLines(c.node(1).http_addr(), "/watch?prefix=Ik", 2, 20s); });
  std::this_thread::sleep_for(300ms);  // its stream is open

  // Refused: an empty key, a key where a range starts already.
  CHECK(Split(c.node(0).Client(), "").status == 400);
  CHECK(Split(c.node(0).Client(), RangesOf(c.node(0))[1]["start"].get<std::string>()).status ==
        409);
  HttpReply split = Split(c.node(2).Client(), "Ik10");  // node2 forwards it as needed
  INFO(split.body);
  REQUIRE(split.status == 200);
  auto halves = nlohmann::json::parse(split.body)["ranges"];
  REQUIRE(halves.size() == 2);
  CHECK(halves[0]["end"] == "Ik10");
  CHECK(halves[1]["start"] == "Ik10");
  CHECK(halves[0]["generation"].get<int>() == 2);
  const std::uint64_t new_range = halves[1]["id"].get<std::uint64_t>();
  CHECK(new_range == kFirstDataRangeForTest + kShards);
  for (std::size_t i = 0; i < 3; ++i) c.WaitAllRanges(3, 30s, i, kShards + 1);

  // Every key, on every node, from the range that now holds it; writes to both halves.
  for (std::size_t i = 0; i < 3; ++i)
    for (const auto& [k, v] : want) RequireValue(c.node(i).Client(), k, v);
  CHECK(c.node(1).Client().Get("Ik15").raft_index == ttl_before.raft_index);  // its index kept
  for (std::size_t i = 0; i < 3; ++i) {
    PutOk(c.node(i).Client(), "Ik05", fmt::format("left{}", i));
    PutOk(c.node(i).Client(), "Ik17", fmt::format("right{}", i));
  }
  want["Ik05"] = "left2";
  want["Ik17"] = "right2";
  HttpReply list = c.node(0).Client().List("Ik");
  REQUIRE(list.status == 200);
  CHECK(nlohmann::json::parse(list.body)["items"].size() == 20);
  watcher.join();
  bool right_event = false;
  for (const auto& e : seen)
    right_event |= e.value("key", "") == "Ik17" && e.value("range", 0ull) == new_range;
  INFO(nlohmann::json(seen).dump());
  CHECK(right_event);  // the watch from before the split follows the new range

  // node2 killed and restarted: both halves resume from its log.
  c.node(2).Kill();
  c.node(2).Start();
  c.node(2).WaitServing();
  c.WaitAllRanges(3, 60s, 2, kShards + 1);
  for (const auto& [k, v] : want) RequireValue(c.node(2).Client(), k, v);
  CHECK(c.node(2).Log().find("range split") != std::string::npos);

  // A fourth node joins: the new range's log starts after the split, so it gets the
  // state from the range's first snapshot.
  NodeProcess& fourth = c.AddRangesNode();
  fourth.Start(c.node(1).http_addr());
  fourth.WaitServing();
  c.WaitAllRanges(4, 60s, 0, kShards + 1);
  for (const auto& [k, v] : want) RequireValue(fourth.Client(), k, v);
  CHECK(MetricSample(fourth.Client().Metrics().body, "kv_host_snapshots_installed_total") >= 1);
}

TEST_CASE("ranges: a range past -range-max-bytes splits by itself; every key stays readable",
          "[ranges][split]") {
  RangesCluster c({"-range-max-bytes", "65536"});
  c.Start();
  std::map<std::string, std::string> want;
  // Values that compress little: a range's size is what it takes on disk.
  std::mt19937 rng(17);
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  for (int i = 0; i < 300; ++i) {
    const std::string key = fmt::format("ak{:04}", i);
    std::string value(900, ' ');
    for (char& ch : value) ch = alphabet[rng() % alphabet.size()];
    PutOk(c.node(static_cast<std::size_t>(i) % 3).Client(), key, value);
    want[key] = value;
  }
  // ~200 KiB on disk in one range of 64 KiB at most: it splits, and its halves again.
  for (std::size_t i = 0; i < 3; ++i) c.WaitAllRanges(3, 60s, i, kShards + 2, /*at_least=*/true);
  std::size_t in_a = 0;
  for (const auto& g : RangesOf(c.node(0))) {
    const std::string start = g["start"], end = g["end"];
    in_a += start >= "ak" && (end.empty() || end <= "al");
  }
  CHECK(in_a >= 2);
  for (std::size_t i = 0; i < 3; ++i)
    for (const auto& [k, v] : want) RequireValue(c.node(i).Client(), k, v);
  // A listing crosses the new ranges and sees every key once.
  std::vector<std::string> listed;
  std::string after;
  for (int page = 0; page < 100; ++page) {
    HttpReply r = c.node(page % 3).Client().List(
        "ak", 40, after.empty() ? std::nullopt : std::optional(after));
    REQUIRE(r.status == 200);
    auto j = nlohmann::json::parse(r.body);
    for (const auto& item : j["items"]) listed.push_back(item["key"]);
    if (j["next"].is_null()) break;
    after = j["next"];
  }
  CHECK(listed.size() == want.size());
  CHECK(std::is_sorted(listed.begin(), listed.end()));
}

TEST_CASE("ranges: a range under sustained writes splits where they part; a hot key does not",
          "[ranges][split]") {
  // 15 writes a second for 10 s: one client writing in turn through every node does more.
  RangesCluster c({"-range-max-bytes", "0", "-range-max-writes", "15"});
  c.Start();
  std::atomic<bool> stop{false};
  std::map<std::string, std::string> want;  // the spread writer's last values
  std::atomic<int> hot_writes{0};
  std::thread spread([&] {
    std::mt19937 rng(5);
    for (int i = 0; !stop.load(); ++i) {
      const std::string key = fmt::format("Ik{:03}", rng() % 200);
      const std::string value = fmt::format("v{}", i);
      // A write a split overtakes is routed again by the server: every one succeeds.
      if (c.node(static_cast<std::size_t>(i) % 3).Client().Put(key, value).status == 200)
        want[key] = value;
    }
  });
  std::thread hot([&] {
    for (int i = 0; !stop.load(); ++i)
      if (c.node(static_cast<std::size_t>(i) % 3).Client().Put("ak", std::to_string(i)).status ==
          200)
        ++hot_writes;
  });
  // The Ik range ([C, O)) splits near the middle of Ik000..Ik199 by its sampled writes.
  std::string at;
  const bool split = WaitUntil(60s, [&] {
    for (const auto& g : RangesOf(c.node(0))) {
      const std::string start = g["start"];
      if (start > "Ik" && start < "Il") at = start;
    }
    return !at.empty();
  });
  // The hot key's range ([[, g)) was as busy (each client waits for its write) but one
  // key cannot be parted: it stays whole while the other's writes go on a while.
  std::this_thread::sleep_for(3s);
  stop = true;
  spread.join();
  hot.join();
  if (!split) c.DumpLogs();
  REQUIRE(split);
  CHECK(at > "Ik050");
  CHECK(at < "Ik150");
  CHECK(hot_writes.load() > 150);
  for (const auto& g : RangesOf(c.node(0))) {
    const std::string start = g["start"];
    CHECK_FALSE((start > "[" && start < "g"));
  }
  // Ordered by load (the meta range's leader logs why), not by size (off).
  bool by_load = false;
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string log = c.node(i).Log();
    for (std::size_t p = log.find("range split ordered"); p != std::string::npos;
         p = log.find("range split ordered", p + 1))
      by_load |= log.substr(p, log.find('\n', p) - p).find("load") != std::string::npos;
  }
  CHECK(by_load);
  for (std::size_t i = 0; i < 3; ++i) c.WaitAllRanges(3, 30s, i, kShards + 1);
  for (std::size_t i = 0; i < 3; ++i)
    for (const auto& [k, v] : want) RequireValue(c.node(i).Client(), k, v);
}

TEST_CASE("ranges: a backup of every range restores into a new cluster; a node joins it",
          "[ranges][backup]") {
  RangesCluster c;
  c.Start();
  std::map<std::string, std::string> want;
  for (const std::string& k : kRangeKeys)
    for (int i = 0; i < 5; ++i) {
      const std::string key = fmt::format("{}/{}", k, i);
      PutOk(c.node(static_cast<std::size_t>(i) % 3).Client(), key, fmt::format("v{}", i));
      want[key] = fmt::format("v{}", i);
    }
  REQUIRE(c.node(0).Client().Put("Uk/ttl", "t", "ttl=600").status == 200);
  want["Uk/ttl"] = "t";
  // A range that split: its two halves are in the backup as they are now.
  REQUIRE(Split(c.node(1).Client(), "Ik/2").status == 200);
  for (std::size_t i = 0; i < 3; ++i) c.WaitAllRanges(3, 30s, i, kShards + 1);
  const std::vector<nlohmann::json> before = RangesOf(c.node(1));

  const std::string file = (c.root() / "ranges.backup").string();
  CommandRun save = RunCommand(
      fmt::format("{} -addr {} snapshot save {} 2>&1", KVCTL_BIN, c.node(1).http_addr(), file));
  INFO(save.output);
  REQUIRE(save.exit_code == 0);
  CHECK(save.output.find(fmt::format("saved backup of {} ranges", kShards + 1)) !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(file + ".verify"));  // kvctl's check cleans up
  const auto backups = c.node(1).spec().data_dir / "backups";
  CHECK((!std::filesystem::exists(backups) || std::filesystem::is_empty(backups)));

  // Everything lost.
  for (std::size_t i = 0; i < 3; ++i) c.node(i).Kill();
  NodeProcess& seed = c.AddRangesNode();  // its -shards 8 is ignored: the backup decides
  // A damaged descriptor: refused with the reason, and the directory it started
  // refused again until emptied (the restore's marker).
  const std::string damaged = (c.root() / "damaged.backup").string();
  std::filesystem::copy_file(file, damaged);
  {
    std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(22);  // inside the first range's descriptor
    f.put('\x7f');
  }
  seed.Start(std::nullopt, {"-restore", damaged});
  REQUIRE(seed.WaitExit(20s) == std::optional<int>(1));
  CHECK(seed.Log().find("checksum mismatch at range 0") != std::string::npos);
  seed.Start(std::nullopt);
  REQUIRE(seed.WaitExit(20s) == std::optional<int>(1));
  CHECK(seed.Log().find("a -restore was cut short") != std::string::npos);
  std::filesystem::remove_all(seed.spec().data_dir);

  seed.Start(std::nullopt, {"-restore", file});
  seed.WaitServing();
  c.WaitAllRanges(1, 30s, 3, kShards + 1);
  CHECK(seed.Log().find("range restored") != std::string::npos);
  REQUIRE(
      WaitUntil(10s, [&] { return !std::filesystem::exists(seed.spec().data_dir / "restoring"); }));
  // The same spans and generations, this node the only replica.
  const std::vector<nlohmann::json> after = RangesOf(seed);
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i]["id"] == before[i]["id"]);
    CHECK(after[i]["start"] == before[i]["start"]);
    CHECK(after[i]["end"] == before[i]["end"]);
    CHECK(after[i]["generation"] == before[i]["generation"]);
  }
  for (const auto& [k, v] : want) RequireValue(seed.Client(), k, v);
  // It takes writes and splits, the new range's id after every restored one.
  PutOk(seed.Client(), "Ik/9", "after");
  HttpReply split = Split(seed.Client(), "Uk/3");
  INFO(split.body);
  REQUIRE(split.status == 200);
  CHECK(nlohmann::json::parse(split.body)["ranges"][1]["id"].get<std::uint64_t>() ==
        kFirstDataRangeForTest + kShards + 1);

  // A node joins the restored cluster and gets every range; a restart of the seed resumes.
  NodeProcess& joiner = c.AddRangesNode();
  joiner.Start(seed.http_addr());
  joiner.WaitServing();
  c.WaitAllRanges(2, 60s, 4, kShards + 2);
  want["Ik/9"] = "after";
  for (const auto& [k, v] : want) RequireValue(joiner.Client(), k, v);
  seed.Kill();
  seed.Start(std::nullopt);
  seed.WaitServing();
  c.WaitAllRanges(2, 60s, 3, kShards + 2);
  for (const auto& [k, v] : want) RequireValue(seed.Client(), k, v);
}

TEST_CASE("ranges chaos: kills and partitions under load with -shards 8 stay linearizable",
          "[ranges][linearizability]") {
  RangesCluster c;
  c.Start();
  SharedHistory history;
  Counters counters;
  int kills = 0, partitions = 0, splits = 0;
  {
    LinClients clients(6, c.Addrs(), kRangeKeys, history, counters);
    std::mt19937 rng(20261207);
    std::this_thread::sleep_for(1s);
    for (int round = 0; round < 6; ++round) {
      // A split at a key the clients use, through a random node: the key moves to a new
      // range while it is written and read (best effort: a kill may refuse it).
      if (Split(c.node(rng() % 3).Client(), kRangeKeys[static_cast<std::size_t>(round) + 1])
              .status == 200)
        ++splits;
      const std::size_t victim = rng() % 3;
      if (round % 2 == 0) {
        c.node(victim).Kill();
        ++kills;
        std::this_thread::sleep_for(1500ms);
        c.node(victim).Start();
      } else {
        c.partitions().Isolate(raft::NodeIdFromName(c.node(victim).id()));
        ++partitions;
        std::this_thread::sleep_for(2s);
        c.partitions().Heal();
      }
      std::this_thread::sleep_for(1500ms);
    }
  }
  // Every range back to three voters with a leader, on every node.
  for (std::size_t i = 0; i < 3; ++i)
    c.WaitAllRanges(3, 30s, i, kShards + static_cast<std::size_t>(splits), /*at_least=*/true);
  CHECK(splits >= 3);

  CheckLinearizable(history, counters, 300,
                    fmt::format("{} kills, {} partitions, {} splits", kills, partitions, splits));

  // The replicas agree: every key reads the same on every node (linearizable reads).
  for (const std::string& k : kRangeKeys) {
    std::set<std::string> seen;
    for (std::size_t i = 0; i < 3; ++i) {
      HttpReply r = c.node(i).Client().Get(k);
      REQUIRE((r.status == 200 || r.status == 404));
      seen.insert(r.status == 200 ? r.body : "(absent)");
    }
    CHECK(seen.size() == 1);
  }
}

}  // namespace
}  // namespace kvtest
