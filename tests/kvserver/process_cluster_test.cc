// kvserver as real processes on loopback: replication through followers, crashes and
// restarts, catch-up by snapshot, membership changes, graceful shutdown under load.
//
// Every node runs with -tick-ms 20 -election-ticks 10 (an election timeout of 200-400 ms),
// so failover and joins take well under a second when things work; the bounds below are
// several times that to survive a loaded 2-core machine.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "process_harness.h"

namespace kvtest {
namespace {

using Clock = std::chrono::steady_clock;

// Acknowledged writes, recorded by writer threads (no Catch2 assertions off the main
// thread: the main thread checks the record afterwards).
struct AckLog {
  std::mutex mu;
  std::map<std::string, std::string> acked;  // key -> value, only for 200 replies
  std::map<int, int> replies;                // status (0 = no response) -> count

  void Record(const std::string& key, const std::string& value, int status) {
    std::lock_guard lock(mu);
    ++replies[status];
    if (status == 200) acked[key] = value;
  }
  std::string Summary() {
    std::lock_guard lock(mu);
    std::string s = fmt::format("{} acknowledged; replies:", acked.size());
    for (auto [status, count] : replies) s += fmt::format(" {}x{}", status, count);
    return s;
  }
};

// Writes unique keys "<prefix><n>" round-robin over `addrs` until `stop`, each with its
// own value, recording what was acknowledged.
class Writer {
 public:
  Writer(std::string prefix, std::vector<std::string> addrs, AckLog& log)
      : prefix_(std::move(prefix)), addrs_(std::move(addrs)), log_(log) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Writer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int attempts() const { return attempts_; }

 private:
  void Run() {
    for (int n = 0; !stop_; ++n) {
      std::string key = fmt::format("{}{:05}", prefix_, n);
      std::string value = fmt::format("value-of-{}", key);
      KvClient client(addrs_[static_cast<std::size_t>(n) % addrs_.size()], 5s);
      HttpReply r = client.Put(key, value);
      log_.Record(key, value, r.status);
      ++attempts_;
      if (r.status != 200) std::this_thread::sleep_for(20ms);  // don't spin on a dead node
    }
  }

  std::string prefix_;
  std::vector<std::string> addrs_;
  AckLog& log_;
  std::atomic<bool> stop_{false};
  std::atomic<int> attempts_{0};
  std::thread thread_;
};

// Requires every acknowledged write to be readable with its value through `client`.
void RequireAllAcked(AckLog& log, const KvClient& client, bool stale, const std::string& what) {
  std::lock_guard lock(log.mu);
  std::size_t missing = 0;
  std::string first_missing;
  for (const auto& [key, value] : log.acked) {
    HttpReply r = client.Get(key, stale);
    if (r.status != 200 || r.body != value) {
      if (missing++ == 0) first_missing = fmt::format("{} -> {}", key, r.Describe());
    }
  }
  INFO(what << ": " << missing << " of " << log.acked.size()
            << " acknowledged writes missing or wrong via " << client.addr()
            << (stale ? " (stale reads)" : " (linearizable reads)")
            << "; first: " << first_missing);
  REQUIRE(missing == 0);
}

// Writes `count` keys "<prefix><n>" through `addr` using `threads` threads; requires all
// to be acknowledged.
std::map<std::string, std::string> WriteMany(const std::string& addr, const std::string& prefix,
                                             int count, int threads) {
  AckLog log;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      KvClient client(addr);
      for (int n = t; n < count; n += threads) {
        std::string key = fmt::format("{}{:04}", prefix, n);
        std::string value =
            fmt::format("v{}-{}", n, std::string(static_cast<std::size_t>(n % 7), 'x'));
        HttpReply r;
        for (int attempt = 0; attempt < 50; ++attempt) {  // 503: not written; retry
          r = client.Put(key, value);
          if (r.status != 503) break;
          std::this_thread::sleep_for(50ms);
        }
        log.Record(key, value, r.status);
      }
    });
  }
  for (auto& w : workers) w.join();
  INFO("writing " << count << " keys through " << addr << ": " << log.Summary());
  REQUIRE(log.acked.size() == static_cast<std::size_t>(count));
  return log.acked;
}

TEST_CASE("three nodes: writes through a follower are visible on every node", "[cluster]") {
  ProcessCluster cluster;
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  std::size_t follower = cluster.Follower(leader);
  KvClient via = cluster.node(follower).Client();

  std::map<std::string, std::string> written;
  std::vector<std::uint64_t> indexes;  // "index" of each reply, 0 when absent
  for (int i = 0; i < 20; ++i) {
    std::string key = fmt::format("f/{:02}", i);
    std::string value = fmt::format("value {}", i);
    HttpReply r = via.Put(key, value);
    INFO("PUT " << key << " through follower " << cluster.node(follower).id() << ": "
                << r.Describe());
    REQUIRE(r.status == 200);
    auto doc = r.Json();
    REQUIRE(doc.is_object());
    indexes.push_back(JsonU64(doc, "index"));
    REQUIRE_FALSE(doc.contains("prev_value"));  // only with ?prev_kv=true
    written[key] = value;
  }
  // Each write reports its log index (docs/http-api.md), increasing.
  INFO("indexes reported: " << fmt::format("{}", fmt::join(indexes, " ")));
  CHECK(indexes.front() > 0);
  CHECK(std::is_sorted(indexes.begin(), indexes.end(), std::less_equal<>()));
  // Linearizable reads on every node see every acknowledged write, with no waiting.
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    KvClient c = cluster.node(i).Client();
    for (const auto& [k, v] : written) RequireValue(c, k, v);
  }
  // Stale reads converge too.
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    cluster.WaitCaughtUp(i);
    KvClient c = cluster.node(i).Client();
    for (const auto& [k, v] : written) RequireValue(c, k, v, /*stale=*/true);
  }

  // Overwrite through the follower reports the previous value when asked; CAS failure
  // and DELETE are forwarded too.
  HttpReply r = via.Put("f/00", "second", "prev_kv=true");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  REQUIRE(r.Json().value("prev_value", std::string()) == "value 0");
  r = via.Put("f/01", "second", "prev_kv=false");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  REQUIRE_FALSE(r.Json().contains("prev_value"));
  REQUIRE(via.Put("f/01", "x", "prev_kv=yes").status == 400);
  r = via.Put("f/01", "third", "prev_kv=true");
  REQUIRE(r.Json().value("prev_value", std::string()) == "second");
  r = via.Cas("f/00", "wrong", "third");
  INFO(r.Describe());
  REQUIRE(r.status == 412);
  REQUIRE(r.Json().value("current", std::string()) == "second");
  r = via.Del("f/01");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    KvClient c = cluster.node(i).Client();
    RequireValue(c, "f/00", "second");
    HttpReply g = c.Get("f/01");
    INFO("GET f/01 after delete via " << c.addr() << ": " << g.Describe());
    REQUIRE(g.status == 404);
  }
}

TEST_CASE(
    "kill -9 the leader: a new leader serves, no acknowledged write is lost, the "
    "restarted node catches up",
    "[cluster][crash]") {
  ProcessCluster cluster;
  cluster.Start(3);
  std::size_t old_leader = cluster.WaitLeader();
  std::vector<std::string> survivors;
  for (std::size_t i = 0; i < 3; ++i) {
    if (i != old_leader) survivors.push_back(cluster.node(i).http_addr());
  }

  AckLog log;
  auto before = WriteMany(cluster.node(old_leader).http_addr(), "pre/", 40, 2);
  for (const auto& [k, v] : before) log.Record(k, v, 200);
  {
    // Writers keep going through both followers while the leader dies.
    Writer w1("during-a/", {survivors[0]}, log);
    Writer w2("during-b/", {survivors[1]}, log);
    std::this_thread::sleep_for(300ms);
    cluster.node(old_leader).Kill();
    auto killed_at = Clock::now();

    // A new leader accepts a write within a few seconds.
    KvClient c(survivors[0], 3s);
    HttpReply r;
    bool served = WaitUntil(5s, [&] {
      r = c.Put("after-kill", "x");
      return r.status == 200;
    });
    auto failover = std::chrono::duration_cast<Millis>(Clock::now() - killed_at);
    INFO("first write after kill -9 of " << cluster.node(old_leader).id() << ": " << r.Describe()
                                         << " after " << failover.count() << " ms");
    REQUIRE(served);
    std::this_thread::sleep_for(500ms);
    w1.Stop();
    w2.Stop();
  }
  INFO("writers: " << log.Summary());
  std::size_t new_leader = cluster.WaitLeader();
  REQUIRE(new_leader != old_leader);
  for (const auto& addr : survivors) RequireAllAcked(log, KvClient(addr), false, "survivor");

  // More writes while the old leader is down, then restart it on its data.
  auto while_down = WriteMany(cluster.node(new_leader).http_addr(), "down/", 30, 2);
  for (const auto& [k, v] : while_down) log.Record(k, v, 200);
  cluster.node(old_leader).Start();
  cluster.node(old_leader).WaitServing();
  cluster.WaitCaughtUp(old_leader);
  RequireAllAcked(log, cluster.node(old_leader).Client(), /*stale=*/true, "restarted node");
  RequireAllAcked(log, cluster.node(old_leader).Client(), /*stale=*/false, "restarted node");
  cluster.WaitVoters(3);
}

// Metric samples "name{labels} value" whose name matches `name_re`, summed.
double SumMetric(const std::string& text, const std::regex& name_re) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto name_end = line.find_first_of("{ ");
    if (name_end == std::string::npos) continue;
    std::string name = line.substr(0, name_end);
    if (!std::regex_search(name, name_re)) continue;
    auto sp = line.rfind(' ');
    try {
      sum += std::stod(line.substr(sp + 1));
    } catch (...) {
    }
  }
  return sum;
}

TEST_CASE("a fourth node joins after log compaction and is caught up by snapshot",
          "[cluster][snapshot]") {
  ProcessCluster cluster({.extra_args = {"-snapshot-entries", "50", "-snapshot-trailing", "10"}});
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  auto data = WriteMany(cluster.node(leader).http_addr(), "snap/", 300, 4);

  // The leader has compacted its log: the new node cannot be fed from index 1.
  nlohmann::json lst;
  bool compacted = WaitUntil(10s, [&] {
    lst = cluster.node(leader).StatusJson();
    return JsonU64(lst, "snapshot_index") >= 200;
  });
  INFO("leader status: " << lst.dump());
  REQUIRE(compacted);
  const std::uint64_t leader_snapshot = JsonU64(lst, "snapshot_index");

  // Join through a follower (the join is forwarded to the leader).
  NodeProcess& fourth = cluster.AddNode();
  fourth.Start(cluster.node(cluster.Follower(leader)).http_addr());
  fourth.WaitServing();
  cluster.WaitVoters(4, 30s);
  cluster.WaitCaughtUp(3);

  auto st = fourth.StatusJson();
  INFO("new node status: " << st.dump());
  REQUIRE(JsonU64(st, "snapshot_index") >= leader_snapshot);
  HttpReply m = fourth.Client().Metrics();
  INFO("new node /metrics: " << m.Describe());
  REQUIRE(m.status == 200);
  double installed = SumMetric(m.body, std::regex("snapshot.*install|install.*snapshot"));
  INFO("sum of snapshot-install metric samples: " << installed);
  REQUIRE(installed >= 1);

  KvClient c = fourth.Client();
  for (const auto& [k, v] : data) RequireValue(c, k, v, /*stale=*/true);
  // And it keeps replicating after the snapshot.
  PutOk(cluster.node(leader).Client(), "after-join", "yes");
  RequireValue(c, "after-join", "yes");
}

TEST_CASE("leave: removed members stop counting, the leader can remove itself",
          "[cluster][membership]") {
  ProcessCluster cluster;
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  std::size_t leaving = cluster.Follower(leader, 0);
  std::size_t staying = cluster.Follower(leader, 1);
  KvClient via_staying = cluster.node(staying).Client();

  // Unknown member: 404. A known id at other addresses: 409.
  HttpReply r = via_staying.Leave("no-such-node");
  INFO(r.Describe());
  REQUIRE(r.status == 404);
  r = cluster.node(leader).Client().Join(cluster.node(staying).id(), "127.0.0.1:1", "127.0.0.1:2");
  INFO(r.Describe());
  REQUIRE(r.status == 409);
  // The same id and addresses again: idempotent.
  r = cluster.node(leader).Client().Join(cluster.node(staying).id(),
                                         cluster.node(staying).raft_addr(),
                                         cluster.node(staying).http_addr());
  INFO(r.Describe());
  REQUIRE(r.status == 200);

  // Remove a follower, through the other follower (forwarded to the leader).
  r = via_staying.Leave(cluster.node(leaving).id());
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  cluster.WaitVoters(2);
  auto st = cluster.node(leader).StatusJson();
  INFO(st.dump());
  REQUIRE(Members(st).count(cluster.node(leaving).id()) == 0);
  INFO("removed node log:\n" << cluster.node(leaving).LogTail(20));
  REQUIRE(cluster.node(leaving).Terminate() == 0);

  // Two voters still commit.
  PutOk(via_staying, "two-voters", "ok");
  RequireValue(cluster.node(leader).Client(), "two-voters", "ok");

  // Remove the leader itself: the remaining node leads a one-node cluster.
  r = via_staying.Leave(cluster.node(leader).id());
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  nlohmann::json sst;
  bool alone = WaitUntil(10s, [&] {
    sst = cluster.node(staying).StatusJson();
    return IsLeaderRole(sst) && Members(sst).size() == 1;
  });
  INFO("remaining node status: " << sst.dump());
  REQUIRE(alone);
  PutOk(via_staying, "one-voter", "ok");
  RequireValue(via_staying, "two-voters", "ok");
  REQUIRE(cluster.node(leader).Terminate() == 0);
  REQUIRE(cluster.node(staying).Terminate() == 0);
}

TEST_CASE(
    "SIGTERM under write load, then restart every node: every acknowledged write is "
    "present",
    "[cluster][shutdown]") {
  ProcessCluster cluster;
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  std::vector<std::string> addrs;
  for (std::size_t i = 0; i < 3; ++i) addrs.push_back(cluster.node(i).http_addr());

  AckLog log;
  {
    Writer w1("load-a/", addrs, log);
    Writer w2("load-b/", {addrs[2], addrs[0], addrs[1]}, log);
    std::this_thread::sleep_for(800ms);
    // A follower, then the leader (which should hand over leadership), then the last one
    // (which has no quorum left: its in-flight writes must not hold up the exit forever).
    std::vector<std::size_t> order = {cluster.Follower(leader, 0), leader,
                                      cluster.Follower(leader, 1)};
    for (std::size_t i : order) {
      auto t0 = Clock::now();
      int code = cluster.node(i).Terminate(20s);
      auto took = std::chrono::duration_cast<Millis>(Clock::now() - t0);
      INFO(cluster.node(i).id() << " exited with " << code << " after " << took.count()
                                << " ms; log tail:\n"
                                << cluster.node(i).LogTail(25));
      REQUIRE(code == 0);
      std::this_thread::sleep_for(300ms);
    }
    w1.Stop();
    w2.Stop();
  }
  INFO("writers: " << log.Summary());
  {
    std::lock_guard lock(log.mu);
    REQUIRE(log.acked.size() >= 20);  // the load was real
  }

  for (std::size_t i = 0; i < 3; ++i) cluster.node(i).Start();
  for (std::size_t i = 0; i < 3; ++i) cluster.node(i).WaitServing();
  cluster.WaitLeader();
  cluster.WaitVoters(3);
  for (std::size_t i = 0; i < 3; ++i) {
    RequireAllAcked(log, cluster.node(i).Client(), /*stale=*/false, "after restart");
  }
}

TEST_CASE("a node restarted on existing data with -join starts and keeps its membership",
          "[cluster][restart]") {
  ProcessCluster cluster;
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  PutOk(cluster.node(leader).Client(), "before", "1");

  // node1 joined with -join; node0 bootstrapped without it. Restart both with -join
  // (one at a time, so that a quorum stays up).
  for (std::size_t i : {std::size_t{1}, std::size_t{0}}) {
    REQUIRE(cluster.node(i).Terminate() == 0);
    std::size_t other = i == 0 ? 1 : 2;
    cluster.WaitLeader();
    PutOk(cluster.node(other).Client(), fmt::format("while-{}-down", i), "2");
    cluster.node(i).Start(cluster.node(2).http_addr());
    cluster.node(i).WaitServing();
    cluster.WaitCaughtUp(i);
    RequireValue(cluster.node(i).Client(), fmt::format("while-{}-down", i), "2", true);
    RequireValue(cluster.node(i).Client(), "before", "1");
    cluster.WaitVoters(3);
    REQUIRE(cluster.node(i).Alive());
    // The issue asks for a log line saying -join was ignored.
    std::string log = cluster.node(i).Log();
    std::string last_run = log.substr(log.rfind("==== harness: start"));
    last_run = last_run.substr(last_run.find('\n') + 1);  // skip the harness's own line
    INFO("log of the restart:\n" << last_run.substr(0, 3000));
    CHECK(std::regex_search(last_run, std::regex("join.*ignor|ignor.*join", std::regex::icase)));
  }
}

TEST_CASE(
    "without a quorum writes and linearizable reads fail fast with 503/504; stale reads "
    "work; the cluster recovers",
    "[cluster][quorum]") {
  ProcessCluster cluster;
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  PutOk(cluster.node(leader).Client(), "q", "before");
  std::size_t survivor = cluster.Follower(leader, 0);
  std::size_t other = cluster.Follower(leader, 1);
  cluster.WaitCaughtUp(survivor);
  cluster.node(leader).Kill();
  cluster.node(other).Kill();

  KvClient c = cluster.node(survivor).Client(15s);
  auto t0 = Clock::now();
  HttpReply w = c.Put("q", "during");
  auto took = std::chrono::duration_cast<Millis>(Clock::now() - t0);
  INFO("PUT without quorum: " << w.Describe() << " after " << took.count() << " ms");
  REQUIRE((w.status == 503 || w.status == 504));
  if (w.status == 503) CHECK(w.retry_after == "1");
  CHECK(!w.Json().is_discarded());
  HttpReply g = c.Get("q");
  INFO("linearizable GET without quorum: " << g.Describe());
  REQUIRE((g.status == 503 || g.status == 504));
  RequireValue(c, "q", "before", /*stale=*/true);
  HttpReply h;
  bool unhealthy = WaitUntil(5s, [&] {
    h = c.Health();
    return h.status == 503;
  });
  INFO("GET /health without quorum: " << h.Describe());
  CHECK(unhealthy);

  cluster.node(leader).Start();
  cluster.node(other).Start();
  cluster.WaitLeader();
  cluster.WaitVoters(3);
  PutOk(c, "q", "after");
  for (std::size_t i = 0; i < 3; ++i) RequireValue(cluster.node(i).Client(), "q", "after");
}

// Security review F-16: a join whose node never shows up (or goes away before it is
// promoted) left a learner in the membership forever. The leader removes a learner it
// has not heard from for -learner-timeout-ms; voters and live learners are untouched.
TEST_CASE("the leader removes a learner it has not heard from for -learner-timeout-ms",
          "[cluster][join]") {
  ClusterOptions options;
  options.extra_args = {"-learner-timeout-ms", "3000"};
  ProcessCluster cluster(options);
  cluster.Start(2);
  const std::size_t leader = cluster.WaitLeader();
  auto members = [&] { return Members(cluster.node(leader).StatusJson()); };
  // A join for a node that does not exist: the leader adds it as a learner and waits for
  // a catch-up that never comes (the client gives up at once; the join goes on).
  const std::string ghost_raft = "127.0.0.1:" + std::to_string(PickFreePort());
  const std::string ghost_http = "127.0.0.1:" + std::to_string(PickFreePort());
  cluster.node(leader).Client(500ms).Join("ghost", ghost_raft, ghost_http);
  REQUIRE(WaitUntil(10s, [&] { return members().count("ghost") == 1; }));
  CHECK_FALSE(members()["ghost"]);  // a learner
  const auto added = Clock::now();
  CHECK(WaitUntil(
      20s, [&] { return members().count("ghost") == 0; }, 100ms));
  const auto took = std::chrono::duration_cast<Millis>(Clock::now() - added);
  INFO("the ghost learner was removed after " << took.count() << " ms");
  CHECK(took >= 2500ms);
  CHECK(WaitUntil(5s, [&] {  // logged once the removal has committed: may trail /status
    return cluster.node(leader).Log().find("removed a learner the leader has not heard from") !=
           std::string::npos;
  }));
  // The real members are untouched, and a real node still joins (and stays) afterwards.
  NodeProcess& n2 = cluster.AddNode();
  n2.Start(cluster.node(0).http_addr());
  n2.WaitServing();
  cluster.WaitVoters(3);
  std::this_thread::sleep_for(4s);  // longer than the timeout: live members stay
  auto m = members();
  CHECK(m.size() == 3);
  for (const auto& [name, voter] : m) CHECK(voter);
  PutOk(cluster.node(cluster.WaitLeader()).Client(), "after-reap", "v");
  RequireValue(n2.Client(), "after-reap", "v");
}

// Issue 15, "Recovery and identity": two of three nodes are lost for good (killed, their
// data gone). The survivor cannot write; restarted with -force-new-cluster it forms a
// one-member cluster with all its data, new nodes join it, and a later plain restart
// keeps the new membership. Also: the first node says loudly that it bootstraps, a
// joiner never does, and -force-new-cluster refuses an empty data directory.
TEST_CASE("-force-new-cluster: a survivor of a lost majority restarts alone with its data",
          "[cluster][recovery]") {
  ProcessCluster cluster;
  cluster.Start(3);
  CHECK(cluster.node(0).Log().find("bootstrapping a NEW cluster") != std::string::npos);
  for (std::size_t i : {1, 2}) {
    CHECK(cluster.node(i).Log().find("bootstrapping a NEW cluster") == std::string::npos);
    CHECK(cluster.node(i).Log().find("bootstrapped a new one-member cluster") == std::string::npos);
  }
  std::size_t leader = cluster.WaitLeader();
  std::map<std::string, std::string> written =
      WriteMany(cluster.node(leader).http_addr(), "fnc/", 60, 3);
  const std::size_t survivor = cluster.Follower(leader);
  cluster.WaitCaughtUp(survivor);
  for (std::size_t i = 0; i < 3; ++i) {
    if (i == survivor) continue;
    cluster.node(i).Kill();
    std::filesystem::remove_all(cluster.node(i).spec().data_dir);  // lost for good
  }
  NodeProcess& s = cluster.node(survivor);
  // Alone in a three-member cluster: no quorum, no writes. The answer is 503 when the
  // survivor knows no leader, or 504 after -request-timeout-ms (5 s) when it won an election
  // between the two kills and holds the write it cannot commit: the client waits longer.
  CHECK(s.Client(10s).Put("fnc/lost", "x").status >= 500);

  s.Kill();
  s.Start(std::nullopt, {"-force-new-cluster"});
  s.WaitServing();
  REQUIRE(WaitUntil(10s, [&] {
    auto st = s.StatusJson();
    return IsLeaderRole(st) && st["members"].size() == 1;
  }));
  CHECK(s.Log().find("force_new_cluster: every other member removed") != std::string::npos);
  for (const auto& [k, v] : written) RequireValue(s.Client(), k, v);
  PutOk(s.Client(), "fnc/after", "1");

  // New nodes join the recovered cluster and get everything.
  for (std::size_t i : cluster.AddJoiners(s.http_addr(), 2, 1)) {
    for (const auto& [k, v] : written) RequireValue(cluster.node(i).Client(), k, v, true);
    RequireValue(cluster.node(i).Client(), "fnc/after", "1", true);
  }
  // The flag left in place would remove the new members: that restart is refused.
  REQUIRE(s.Terminate() == 0);
  s.Start(std::nullopt, {"-force-new-cluster"});
  REQUIRE(s.WaitExit(10s) == std::optional<int>(1));
  CHECK(s.Log().find("-force-new-cluster was already applied") != std::string::npos);
  // A plain restart of the survivor keeps the new three-member cluster.
  s.Start();
  s.WaitServing();
  cluster.WaitVoters(3);
  PutOk(cluster.node(cluster.WaitLeader()).Client(), "fnc/final", "2");
  RequireValue(s.Client(), "fnc/final", "2");

  // On an empty data directory there is nothing to recover: exit 1, saying so.
  NodeProcess& empty = cluster.AddNode();
  empty.Start(std::nullopt, {"-force-new-cluster"});
  REQUIRE(empty.WaitExit(10s) == std::optional<int>(1));
  CHECK(empty.Log().find("holds no Raft state") != std::string::npos);
}

// Issue 15: every cluster has its own id, generated at bootstrap, learned by a joiner
// before it asks to be added, kept in <data>/cluster-id across restarts and shown in
// /status. A node of another cluster is refused on the Raft port: two clusters never mix.
TEST_CASE("cluster ids: generated, learned by joiners, kept; two clusters never mix",
          "[cluster][identity]") {
  ProcessCluster a;
  a.Start(2);
  ProcessCluster b;
  b.Start(1);
  auto id_of = [](NodeProcess& n) { return n.StatusJson().value("cluster_id", ""); };
  const std::string ida = id_of(a.node(0)), idb = id_of(b.node(0));
  CHECK(std::regex_match(ida, std::regex("[0-9a-f]{32}")));
  CHECK(std::regex_match(idb, std::regex("[0-9a-f]{32}")));
  CHECK(ida != idb);
  CHECK(id_of(a.node(1)) == ida);  // learned when it joined
  CHECK(a.node(1).Log().find("learned the cluster id: cluster_id=" + ida) != std::string::npos);
  std::ifstream stored(a.node(1).spec().data_dir / "cluster-id");
  std::string line;
  std::getline(stored, line);
  CHECK(line == ida);
  REQUIRE(a.node(1).Terminate() == 0);
  a.node(1).Start();
  a.node(1).WaitServing();
  CHECK(id_of(a.node(1)) == ida);

  std::size_t leader = a.WaitLeader();
  PutOk(a.node(leader).Client(), "a-key", "a");
  PutOk(b.node(0).Client(), "b-key", "b");
  // Cluster A is told to add B's node (under another name): A's leader dials it, and B's
  // node refuses the handshake. B keeps its own data and never sees A's.
  a.node(leader).Client(500ms).Join("intruder", b.node(0).raft_addr(), b.node(0).http_addr());
  CHECK(WaitUntil(10s, [&] {
    return b.node(0).Log().find("cluster id '" + ida + "' is not '" + idb + "'") !=
           std::string::npos;
  }));
  std::this_thread::sleep_for(1s);
  RequireValue(b.node(0).Client(), "b-key", "b");
  CHECK(b.node(0).Client().Get("a-key").status == 404);
  auto bst = b.node(0).StatusJson();
  CHECK(bst["members"].size() == 1);
  PutOk(a.node(a.WaitLeader()).Client(), "a-after", "ok");  // A goes on (quorum of 2)

  // A node that insists on another id (-cluster-id) is refused when it joins, and stops.
  NodeProcess& wrong = a.AddNode({"-cluster-id", "some-other-cluster"});
  wrong.Start(a.node(0).http_addr());
  REQUIRE(wrong.WaitExit(20s).has_value());
  CHECK(
      wrong.Log().find("is " + ida + ", but this node was given -cluster-id some-other-cluster") !=
      std::string::npos);
}

// Authentication (-auth-file, -join-token-file, -peer-secret-file): process_auth_test.cc.

TEST_CASE("--flag=value syntax, --help and bad flags", "[cli]") {
  ProcessCluster cluster;
  NodeProcess& n = cluster.AddNode();
  n.mutable_spec().equals_syntax = true;
  n.Start();
  n.WaitServing();
  cluster.WaitLeader();
  PutOk(n.Client(), "k", "v");
  REQUIRE(n.Terminate() == 0);

  // Processes that must exit on their own: --help (0), an unknown flag and a bad value (2).
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string output_has;
  };
  std::vector<Case> cases = {
      {{"--help"}, 0, "snapshot-entries"},
      {{"-id", "x", "-no-such-flag", "1"}, 2, "no-such-flag"},
      {{"-id", "x", "-tick-ms", "abc"}, 2, "tick-ms"},
  };
  int k = 0;
  for (const auto& c : cases) {
    const auto out_path = cluster.root() / fmt::format("cli{}.log", k++);
    std::string cmd = "timeout 10 '" + KvserverBinary() + "'";
    for (const auto& a : c.args) cmd += " '" + a + "'";
    cmd += " >'" + out_path.string() + "' 2>&1 </dev/null";
    int status = std::system(cmd.c_str());
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(out_path);
    std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO("kvserver " << c.args.front() << "...: exit " << code << ", output:\n" << out);
    CHECK(code == c.code);
    CHECK(out.find(c.output_has) != std::string::npos);
  }
}

// A joiner stopped before its join completed asks again when restarted with -join: here
// one that never reached the cluster (its -join address was dead), so it holds Raft state
// but no cluster id and no entry. Before, the restart ignored -join ("existing data") and
// took the pre-id cluster id "kvserver": the node never joined. A voter restarted with
// -join still ignores it.
TEST_CASE("a joiner stopped before its join completed joins when restarted with -join",
          "[cluster][join]") {
  ProcessCluster cluster;
  cluster.Start(2);
  NodeProcess& late = cluster.AddNode();
  late.Start("127.0.0.1:" + std::to_string(PickFreePort()));  // nobody there
  REQUIRE(
      WaitUntil(10s, [&] { return late.Log().find("join attempt failed") != std::string::npos; }));
  late.Kill();
  REQUIRE(std::filesystem::exists(late.spec().data_dir / "raft" / "log"));
  late.Start(cluster.node(0).http_addr());
  late.WaitServing();
  cluster.WaitVoters(3, 30s);
  CHECK(late.Log().find("this node is not a voter yet: joining again") != std::string::npos);
  CHECK(late.StatusJson().value("cluster_id", "") ==
        cluster.node(0).StatusJson().value("cluster_id", "x"));
  PutOk(cluster.node(cluster.WaitLeader()).Client(), "late/k", "v");
  RequireValue(late.Client(), "late/k", "v");
  // A voter now: restarted with -join, it does not ask again.
  REQUIRE(late.Terminate() == 0);
  late.Start(cluster.node(0).http_addr());
  late.WaitServing();
  CHECK(late.Log().find("existing data found; -join ignored") != std::string::npos);
  cluster.WaitVoters(3);
}

// Several /join requests for one joiner at once (a joiner restarted, or whose request
// timed out, asks again while the leader still waits on the first): every one answers
// 200 once the node is a voter. Before, the flows that lost the race to add or promote
// were refused by the core ("already a voter": 400), and a joiner so refused shut down
// (seen in process_snapshot_test on a loaded machine).
TEST_CASE("concurrent joins for one node all succeed", "[cluster][join]") {
  ProcessCluster cluster;
  cluster.Start(2);
  const std::size_t leader = cluster.WaitLeader();
  NodeProcess& late = cluster.AddNode();
  auto join = [&] {
    return cluster.node(leader).Client(30s).Join(late.id(), late.raft_addr(), late.http_addr());
  };
  // Two flows wait for the joiner to catch up before it even runs; its own join is a third.
  auto first = std::async(std::launch::async, join);
  auto second = std::async(std::launch::async, join);
  REQUIRE(WaitUntil(
      10s, [&] { return Members(cluster.node(leader).StatusJson()).count(late.id()) == 1; }));
  late.Start(cluster.node(leader).http_addr());
  const HttpReply a = first.get();
  const HttpReply b = second.get();
  INFO(a.Describe() << " / " << b.Describe());
  CHECK(a.status == 200);
  CHECK(b.status == 200);
  cluster.WaitVoters(3, 30s);
  late.WaitServing();
  // Serving comes before the join's answer is logged (the flows answer as it commits).
  CHECK(WaitUntil(10s, [&] { return late.Log().find("joined the cluster") != std::string::npos; }));
  CHECK(late.Alive());
  PutOk(cluster.node(leader).Client(), "late/k", "v");
  RequireValue(late.Client(), "late/k", "v");
}

}  // namespace
}  // namespace kvtest
