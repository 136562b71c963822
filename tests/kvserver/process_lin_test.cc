// Linearizability of kvserver as seen by real HTTP clients: concurrent GET / PUT / CAS /
// DELETE on a few keys against every node while the leader is killed with -9 and
// restarted, checked with the WGL checker of tests/lin.
//
// Outcome mapping (kv_history.h, "Outcomes"): a reply of 200 / 404 (GET) / 412 (CAS) is a
// definite outcome. 503 and 504, a transport error or a timeout leave a write pending (an
// unknown outcome: it may or may not have been applied; that is always sound). A GET
// without a definite answer constrains nothing and is dropped.
#include <fmt/format.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <random>
#include <thread>

#include "kv_history.h"
#include "lin_checker.h"
#include "process_harness.h"

namespace kvtest {
namespace {

using raft::lin::HistoryRecorder;
using raft::lin::Input;
using raft::lin::Output;

class SharedHistory {
 public:
  SharedHistory() : start_(std::chrono::steady_clock::now()) {}

  HistoryRecorder::OpId Invoke(std::uint64_t client, Input input) {
    std::lock_guard lock(mu_);
    return recorder_.Invoke(client, Now(), std::move(input));
  }
  void Complete(HistoryRecorder::OpId id, Output output) {
    std::lock_guard lock(mu_);
    recorder_.Complete(id, Now(), std::move(output));
  }
  void Discard(HistoryRecorder::OpId id) {
    std::lock_guard lock(mu_);
    recorder_.Discard(id);
  }
  raft::lin::History history() {
    std::lock_guard lock(mu_);
    return recorder_.history();
  }

 private:
  // Strictly increasing under mu_, so that no two events share a stamp.
  raft::lin::Tick Now() {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - start_)
                  .count();
    last_ = std::max<raft::lin::Tick>(last_ + 1, ns);
    return last_;
  }

  std::mutex mu_;
  std::chrono::steady_clock::time_point start_;
  raft::lin::Tick last_ = 0;
  HistoryRecorder recorder_;
};

struct Counters {
  std::atomic<int> definite{0};
  std::atomic<int> unknown{0};
  std::atomic<int> unexpected{0};  // statuses the API does not allow here
  std::mutex mu;
  std::string first_unexpected;
  void Unexpected(const std::string& what) {
    if (unexpected++ == 0) {
      std::lock_guard lock(mu);
      first_unexpected = what;
    }
  }
};

void Client(std::uint64_t id, std::vector<std::string> addrs, SharedHistory& history,
            Counters& counters, std::atomic<bool>& stop) {
  std::mt19937 rng(static_cast<std::uint32_t>(id * 7919 + 1));
  const std::vector<std::string> keys = {"x", "y", "z"};
  std::optional<std::string> last_seen;
  for (int n = 0; !stop; ++n) {
    KvClient c(addrs[rng() % addrs.size()], 3s);
    const std::string& key = keys[rng() % keys.size()];
    const std::string value = fmt::format("c{}-{}", id, n);
    unsigned pick = rng() % 10;
    if (pick < 4) {  // GET
      auto op = history.Invoke(id, Input::Get(key));
      HttpReply r = c.Get(key);
      if (r.status == 200 || r.status == 404) {
        history.Complete(op, Output::Value(r.status == 200 ? std::optional(r.body) : std::nullopt));
        last_seen = r.status == 200 ? std::optional(r.body) : std::nullopt;
        ++counters.definite;
      } else {
        history.Discard(op);  // a read without an answer has no effect
        if (r.status != 0 && r.status != 503 && r.status != 504) {
          counters.Unexpected("GET " + key + ": " + r.Describe());
        }
      }
    } else if (pick < 8) {  // PUT
      auto op = history.Invoke(id, Input::Put(key, value));
      HttpReply r = c.Put(key, value);
      if (r.status == 200) {
        history.Complete(op, Output::Ack());
        ++counters.definite;
      } else {
        ++counters.unknown;
        if (r.status != 0 && r.status != 503 && r.status != 504) {
          counters.Unexpected("PUT " + key + ": " + r.Describe());
        }
      }
    } else if (pick < 9) {  // CAS against the last value this client saw (or absent)
      auto op = history.Invoke(id, Input::Cas(key, last_seen, value));
      HttpReply r = last_seen ? c.Cas(key, *last_seen, value) : c.PutIfAbsent(key, value);
      if (r.status == 200 || r.status == 412) {
        history.Complete(op, Output::Swapped(r.status == 200));
        ++counters.definite;
      } else {
        ++counters.unknown;
        if (r.status != 0 && r.status != 503 && r.status != 504) {
          counters.Unexpected("CAS " + key + ": " + r.Describe());
        }
      }
    } else {  // DELETE
      auto op = history.Invoke(id, Input::Delete(key));
      HttpReply r = c.Del(key);
      if (r.status == 200) {
        history.Complete(op, Output::Ack());
        ++counters.definite;
      } else {
        ++counters.unknown;
        if (r.status != 0 && r.status != 503 && r.status != 504) {
          counters.Unexpected("DELETE " + key + ": " + r.Describe());
        }
      }
    }
    if (counters.unknown > 0 && n % 4 == 0) std::this_thread::sleep_for(5ms);
  }
}

TEST_CASE("concurrent clients on every node see a linearizable history across a leader crash",
          "[cluster][linearizability]") {
  ProcessCluster cluster;
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  std::vector<std::string> addrs;
  for (std::size_t i = 0; i < 3; ++i) addrs.push_back(cluster.node(i).http_addr());

  SharedHistory history;
  Counters counters;
  {
    // Stops and joins the clients on every exit from this block, a failed REQUIRE included
    // (a joinable std::thread destroyed during unwinding would abort the test binary).
    struct Clients {
      std::atomic<bool> stop{false};
      std::vector<std::thread> threads;
      ~Clients() {
        stop = true;
        for (auto& t : threads) t.join();
      }
    } clients;
    for (std::uint64_t id = 1; id <= 4; ++id) {
      clients.threads.emplace_back(Client, id, addrs, std::ref(history), std::ref(counters),
                                   std::ref(clients.stop));
    }
    std::this_thread::sleep_for(1500ms);
    cluster.node(leader).Kill();
    std::this_thread::sleep_for(1500ms);
    cluster.node(leader).Start();
    std::this_thread::sleep_for(1500ms);
  }

  auto h = history.history();
  INFO(h.size() << " operations: " << counters.definite << " definite, " << counters.unknown
                << " unknown outcome");
  {
    std::lock_guard lock(counters.mu);
    INFO("first unexpected reply: " << counters.first_unexpected);
    CHECK(counters.unexpected == 0);
  }
  REQUIRE(counters.definite > 100);  // the run did something
  auto result = raft::lin::CheckHistory(h, {.states_max = 5'000'000});
  INFO(result.ToString());
  REQUIRE(result.verdict != raft::lin::Verdict::kInvalidHistory);
  REQUIRE(result.verdict != raft::lin::Verdict::kNotLinearizable);
  if (result.verdict == raft::lin::Verdict::kTimeout)
    WARN("checker undecided: " << result.ToString());
}

}  // namespace
}  // namespace kvtest
