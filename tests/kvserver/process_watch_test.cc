// Watch, indexes and TTL keys against real processes (issue 15, "Watch and indexes",
// "Keys with a time to live"; docs/http-api.md "Watch" and "Keys with a time to live").
//
//   build/tests/kvserver/process_watch_test            # or '[watch]', '[ttl]'
#include <fmt/format.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "process_harness.h"

namespace kvtest {
namespace {

struct WatchEvent {
  std::uint64_t index = 0;
  std::string type, key, value;
  bool operator==(const WatchEvent&) const = default;
};

std::string Show(const WatchEvent& e) {
  return fmt::format("{} {} {}={}", e.index, e.type, e.key, e.value);
}

// A client of GET /watch as docs/http-api.md tells one to be: on any end of the stream
// it reconnects to the next node from the last index seen + 1. Runs on its own thread
// until `stop`; records every event and counts reconnections.
class Watcher {
 public:
  Watcher(std::vector<std::string> addrs, std::string prefix, std::uint64_t from)
      : addrs_(std::move(addrs)), prefix_(std::move(prefix)), next_(from) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Watcher() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t next() const { return next_.load(); }
  std::vector<WatchEvent> events() const {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }
  int connects() const { return connects_.load(); }
  std::string errors() const {
    std::lock_guard<std::mutex> l(mu_);
    return errors_;
  }

 private:
  void Run() {
    for (std::size_t attempt = 0; !stop_; ++attempt) {
      const std::string& addr = addrs_[attempt % addrs_.size()];
      httplib::Client cli("http://" + addr);
      cli.set_connection_timeout(std::chrono::seconds(1));
      cli.set_read_timeout(std::chrono::seconds(8));
      std::string pending;
      int status = 0;
      const std::string path =
          "/watch?prefix=" + PercentEncode(prefix_) + "&from_index=" + std::to_string(next_);
      auto r = cli.Get(
          path, httplib::Headers{},
          [&](const httplib::Response& res) {
            status = res.status;
            if (status == 200) ++connects_;
            return true;
          },
          [&](const char* data, std::size_t n) {
            if (status != 200) {
              std::lock_guard<std::mutex> l(mu_);
              errors_ += fmt::format("{} answered {}: {}\n", addr, status, std::string(data, n));
              return false;
            }
            pending.append(data, n);
            for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;
                 pending.erase(0, nl + 1)) {
              auto j = nlohmann::json::parse(pending.substr(0, nl), nullptr, false);
              if (j.is_discarded()) {
                std::lock_guard<std::mutex> l(mu_);
                errors_ += "malformed line: " + pending.substr(0, nl) + "\n";
                continue;
              }
              const std::string type = j.value("type", "");
              if (type == "progress") {
                next_ = std::max(next_.load(), j["index"].get<std::uint64_t>() + 1);
              } else if (type == "error") {
                std::lock_guard<std::mutex> l(mu_);
                errors_ += j.dump() + "\n";
              } else {
                WatchEvent e{j["index"].get<std::uint64_t>(), type, j.value("key", ""),
                             j.value("value", "")};
                std::lock_guard<std::mutex> l(mu_);
                if (e.index < next_) {
                  errors_ += "repeated or out of order: " + Show(e) + "\n";
                  continue;
                }
                next_ = e.index + 1;
                events_.push_back(std::move(e));
              }
            }
            return !stop_.load();
          });
      (void)r;
      if (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  const std::vector<std::string> addrs_;
  const std::string prefix_;
  std::atomic<std::uint64_t> next_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connects_{0};
  mutable std::mutex mu_;
  std::vector<WatchEvent> events_;  // guarded by mu_
  std::string errors_;              // guarded by mu_
  std::thread thread_;
};

std::vector<std::string> Addrs(ProcessCluster& cluster) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < cluster.size(); ++i) out.push_back(cluster.node(i).http_addr());
  return out;
}

// Issue 15: "concurrent writers and watchers across a leader kill; every watcher sees
// exactly the committed sequence for its prefix". The committed sequence is read after
// the fact from the history of a node (a watch from index 1 that has every change), and
// every acknowledged write must be in it at its index.
TEST_CASE("watch: writers and watchers across a leader kill see exactly the committed sequence",
          "[watch]") {
  ProcessCluster cluster;
  cluster.Start(3);
  const std::size_t leader = cluster.WaitLeader();
  const std::vector<std::string> addrs = Addrs(cluster);
  // Watchers start on different nodes (the address list rotated), one per prefix and one
  // for everything.
  std::vector<std::unique_ptr<Watcher>> watchers;
  const std::vector<std::string> prefixes = {"p0/", "p1/", ""};
  for (std::size_t w = 0; w < prefixes.size(); ++w) {
    std::vector<std::string> rotated;
    for (std::size_t i = 0; i < addrs.size(); ++i) rotated.push_back(addrs[(w + i) % addrs.size()]);
    watchers.push_back(std::make_unique<Watcher>(rotated, prefixes[w], 1));
  }

  struct Acked {
    std::string type, key, value;
  };
  std::mutex acked_mu;
  std::map<std::uint64_t, Acked> acked;  // index -> acknowledged write
  std::atomic<bool> stop{false};
  std::atomic<int> unknown{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int n = 0; !stop; ++n) {
        const KvClient client(addrs[static_cast<std::size_t>(n + w) % addrs.size()], 2s);
        const std::string key = fmt::format("p{}/w{}-{}", w % 2, w, n % 20);
        const bool del = n % 5 == 4;
        const std::string value = fmt::format("{}-{}", w, n);
        HttpReply r = del ? client.Del(key) : client.Put(key, value);
        if (!r.Ok()) {
          ++unknown;
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
        auto j = r.Json();
        // A delete of an absent key changes nothing and has no event.
        if (del && !j.value("deleted", false)) continue;
        std::lock_guard<std::mutex> l(acked_mu);
        acked[j["index"].get<std::uint64_t>()] = {del ? "delete" : "put", key, del ? "" : value};
      }
    });
  }
  std::this_thread::sleep_for(2s);
  cluster.node(leader).Kill();
  std::this_thread::sleep_for(3s);
  cluster.node(leader).Start();
  std::this_thread::sleep_for(2s);
  stop = true;
  for (auto& t : writers) t.join();
  // The last index: one more write, acknowledged.
  const std::size_t now_leader = cluster.WaitLeader();
  HttpReply last = cluster.node(now_leader).Client().Put("p0/last", "end");
  REQUIRE(last.Ok());
  const std::uint64_t end = last.Json()["index"].get<std::uint64_t>();
  acked[end] = {"put", "p0/last", "end"};
  // Watchers catch up (a quiet prefix learns how far it got from a progress line).
  REQUIRE(WaitUntil(20s, [&] {
    for (const auto& w : watchers)
      if (w->next() <= end) return false;
    return true;
  }));
  for (auto& w : watchers) w->Stop();

  // The committed sequence: the whole history, from a node that was never killed.
  const std::size_t reference = (leader + 1) % cluster.size();
  Watcher all({addrs[reference]}, "", 1);
  REQUIRE(WaitUntil(20s, [&] { return all.next() > end; }));
  all.Stop();
  std::vector<WatchEvent> committed;
  for (const WatchEvent& e : all.events())
    if (e.index <= end) committed.push_back(e);
  INFO("acknowledged writes " << acked.size() << ", without an answer " << unknown.load()
                              << ", committed changes " << committed.size());
  REQUIRE(committed.size() >= acked.size());
  // Every acknowledged write is in it, at its index.
  std::map<std::uint64_t, WatchEvent> by_index;
  for (const WatchEvent& e : committed) by_index[e.index] = e;
  for (const auto& [index, a] : acked) {
    INFO("acknowledged at " << index << ": " << a.type << " " << a.key);
    REQUIRE(by_index.count(index) == 1);
    CHECK(by_index[index] == WatchEvent{index, a.type, a.key, a.value});
  }
  // Every watcher saw exactly the committed sequence for its prefix (no gap, nothing
  // twice, nothing else), though it was moved between nodes by the kill.
  for (std::size_t w = 0; w < watchers.size(); ++w) {
    std::vector<WatchEvent> want, got;
    for (const WatchEvent& e : committed)
      if (e.key.starts_with(prefixes[w])) want.push_back(e);
    for (const WatchEvent& e : watchers[w]->events())
      if (e.index <= end) got.push_back(e);
    INFO("watcher of '" << prefixes[w] << "': " << watchers[w]->connects() << " streams; "
                        << watchers[w]->errors());
    CHECK(watchers[w]->errors().empty());
    REQUIRE(got.size() == want.size());
    CHECK(got == want);
  }
  // The watcher whose first node was the killed leader had to move.
  CHECK(watchers[(cluster.size() - leader) % cluster.size()]->connects() >= 2);
}

TEST_CASE("watch: 410 past the retained history; bad parameters; a stream ends at shutdown",
          "[watch]") {
  ClusterOptions options;
  options.extra_args = {"-watch-history", "64"};
  ProcessCluster cluster(options);
  cluster.Start(1);
  KvClient client = cluster.node(0).Client();
  for (int i = 0; i < 200; ++i) PutOk(client, fmt::format("h{}", i), "v");
  HttpReply gone = client.Request("GET", "/watch?from_index=1");
  INFO(gone.Describe());
  REQUIRE(gone.status == 410);
  const std::uint64_t oldest = gone.Json()["oldest_index"].get<std::uint64_t>();
  CHECK(oldest > 100);
  CHECK(client.Request("GET", "/watch?from_index=x").status == 400);
  CHECK(client.Request("GET", "/watch?from_index=0").status == 400);
  CHECK(client.Request("PUT", "/watch").status == 405);
  CHECK(client.Put("k", "v", "prev_index=1&prev_value=v").status == 400);
  CHECK(client.Put("k", "v", "ttl=0").status == 400);
  CHECK(client.Put("k", "v", "ttl=soon").status == 400);
  // From the oldest retained index: every event up to now, then the stream stays open
  // until the node shuts down (SIGTERM ends it: the client sees the end, not a hang).
  Watcher w({cluster.node(0).http_addr()}, "h1", oldest);
  REQUIRE(WaitUntil(10s, [&] { return !w.events().empty(); }));
  CHECK(w.events().front().index >= oldest);
  auto m = client.Metrics();
  CHECK(m.body.find("kv_watchers 1") != std::string::npos);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(cluster.node(0).Terminate() == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  w.Stop();
  CHECK(w.errors().empty());
}

// Issue 15: "PUT /kv/k?ttl=SECONDS; the key disappears after about that long on every
// replica ... a new leader takes over pending expiries; watch shows expiry events. A TTL
// key can be refreshed by a PUT." Also X-Raft-Index and prev_index, and kvctl.
TEST_CASE("ttl: keys expire on every replica, through a leader change; refresh; prev_index",
          "[ttl]") {
  ProcessCluster cluster;
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  KvClient client = cluster.node(leader).Client();
  const std::vector<std::string> addrs = Addrs(cluster);
  Watcher watch(addrs, "t/", 1);

  // X-Raft-Index and CAS on it.
  HttpReply put = client.Put("t/plain", "1");
  REQUIRE(put.Ok());
  const std::uint64_t put_index = put.Json()["index"].get<std::uint64_t>();
  HttpReply got = client.Request("GET", "/kv/t%2Fplain");
  REQUIRE(got.Ok());
  CHECK(got.raft_index == std::to_string(put_index));
  HttpReply stale_cas = client.Put("t/plain", "2", fmt::format("prev_index={}", put_index + 100));
  REQUIRE(stale_cas.status == 412);
  CHECK(stale_cas.Json()["current_index"].get<std::uint64_t>() == put_index);
  HttpReply cas = client.Put("t/plain", "2", fmt::format("prev_index={}", put_index));
  REQUIRE(cas.Ok());
  CHECK(client.Put("t/new", "n", "prev_index=0").Ok());
  CHECK(client.Put("t/new", "n", "prev_index=0").status == 412);

  // Expiry on every replica; a refreshed key outlives its first TTL.
  REQUIRE(client.Put("t/short", "s", "ttl=2").Ok());
  REQUIRE(client.Put("t/refreshed", "r", "ttl=2").Ok());
  std::this_thread::sleep_for(1s);
  REQUIRE(client.Put("t/refreshed", "r2", "ttl=6").Ok());
  REQUIRE(WaitUntil(10s, [&] {
    for (std::size_t i = 0; i < cluster.size(); ++i)
      if (cluster.node(i).Client().Get("t/short", true).status != 404) return false;
    return true;
  }));
  for (std::size_t i = 0; i < cluster.size(); ++i)
    RequireValue(cluster.node(i).Client(), "t/refreshed", "r2", true);

  // A new leader carries out expiries the old one had pending.
  REQUIRE(client.Put("t/orphan", "o", "ttl=3").Ok());
  REQUIRE(WaitUntil(10s, [&] {
    for (std::size_t i = 0; i < cluster.size(); ++i)
      if (!cluster.node(i).Client().Get("t/orphan", true).Ok()) return false;
    return true;
  }));
  cluster.node(leader).Kill();
  std::vector<std::size_t> alive;
  for (std::size_t i = 0; i < cluster.size(); ++i)
    if (i != leader) alive.push_back(i);
  REQUIRE(WaitUntil(20s, [&] {
    for (std::size_t i : alive)
      if (cluster.node(i).Client().Get("t/orphan", true).status != 404) return false;
    for (std::size_t i : alive)
      if (cluster.node(i).Client().Get("t/refreshed", true).status != 404) return false;
    return true;
  }));
  cluster.node(leader).Start();
  cluster.WaitCaughtUp(leader);
  CHECK(cluster.node(leader).Client().Get("t/orphan", true).status == 404);

  // The watch saw each expiry once, as an expire event, in index order.
  REQUIRE(WaitUntil(15s, [&] {
    std::set<std::string> expired;
    for (const auto& e : watch.events())
      if (e.type == "expire") expired.insert(e.key);
    return expired == std::set<std::string>{"t/short", "t/refreshed", "t/orphan"};
  }));
  std::map<std::string, int> expiries;
  std::uint64_t prev = 0;
  for (const auto& e : watch.events()) {
    CHECK(e.index > prev);
    prev = e.index;
    if (e.type == "expire") ++expiries[e.key];
  }
  CHECK(expiries ==
        std::map<std::string, int>{{"t/orphan", 1}, {"t/refreshed", 1}, {"t/short", 1}});
  INFO(watch.errors());
  CHECK(watch.errors().empty());
}

TEST_CASE("kvctl watch prints changes from an index; kvctl put -ttl", "[watch][kvctl]") {
  ProcessCluster cluster;
  cluster.Start(1);
  KvClient client = cluster.node(0).Client();
  const std::string addr = cluster.node(0).http_addr();
  const std::string kvctl = KVCTL_BIN;
  HttpReply first = client.Put("w/a", "1");
  REQUIRE(first.Ok());
  const std::uint64_t from = first.Json()["index"].get<std::uint64_t>();
  REQUIRE(RunCommand(fmt::format("{} -addr {} put -ttl 1 w/b 'two words'", kvctl, addr)).output ==
          "OK\n");
  PutOk(client, "x/other", "not watched");
  // kvctl watch runs until stopped: `timeout` stops it once the expiry had time to come.
  const std::string out =
      RunCommand(fmt::format("timeout -s INT 6 {} -addr {} watch w/ -from {}", kvctl, addr, from))
          .output;
  INFO(out);
  CHECK(out.find(fmt::format("{} put w/a 1\n", from)) == 0);
  CHECK(out.find("put w/b two words\n") != std::string::npos);
  CHECK(out.find("expire w/b\n") != std::string::npos);
  CHECK(out.find("x/other") == std::string::npos);
}

// kvctl watch was given one address and only ever asked that node: when it died, the
// watch retried it until it gave up. It learns the members from /status, like the other
// commands, and goes on at one of them from where it was.
TEST_CASE("kvctl watch goes on at a member it learned when its only -addr node dies",
          "[watch][kvctl]") {
  ProcessCluster cluster;
  cluster.Start(3);
  const std::size_t leader = cluster.WaitLeader();
  KvClient client = cluster.node(leader).Client();
  HttpReply first = client.Put("lw/1", "before");
  REQUIRE(first.Ok());
  const std::uint64_t from = first.Json()["index"].get<std::uint64_t>();
  std::string out;
  std::thread watch([&] {
    out = RunCommand(fmt::format("timeout -s INT 10 {} -addr {} watch lw/ -from {}", KVCTL_BIN,
                                 cluster.node(leader).http_addr(), from))
              .output;
  });
  // It streams from `leader` once the leader counts it (not after a guessed sleep).
  REQUIRE(WaitUntil(
      10s, [&] { return client.Metrics().body.find("kv_watchers 1") != std::string::npos; }));
  cluster.node(leader).Kill();
  const std::size_t now = cluster.WaitLeader();
  PutOk(cluster.node(now).Client(), "lw/2", "after");
  watch.join();
  INFO(out);
  CHECK(out.find(fmt::format("{} put lw/1 before\n", from)) == 0);
  CHECK(out.find("put lw/2 after\n") != std::string::npos);
}

}  // namespace
}  // namespace kvtest
