#include "lin_clients.h"

#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <optional>
#include <random>
#include <thread>

#include "kv_client.h"
#include "lin_checker.h"

namespace kvtest {

using namespace std::chrono_literals;
using raft::lin::HistoryRecorder;
using raft::lin::Input;
using raft::lin::Output;

HistoryRecorder::OpId SharedHistory::Invoke(std::uint64_t client, Input input) {
  std::lock_guard lock(mu_);
  return recorder_.Invoke(client, Now(), std::move(input));
}

void SharedHistory::Complete(HistoryRecorder::OpId id, Output output) {
  std::lock_guard lock(mu_);
  recorder_.Complete(id, Now(), std::move(output));
}

void SharedHistory::Discard(HistoryRecorder::OpId id) {
  std::lock_guard lock(mu_);
  recorder_.Discard(id);
}

raft::lin::History SharedHistory::history() {
  std::lock_guard lock(mu_);
  return recorder_.history();
}

raft::lin::Tick SharedHistory::Now() {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                 start_)
                .count();
  last_ = std::max<raft::lin::Tick>(last_ + 1, ns);
  return last_;
}

void Counters::Unexpected(const std::string& what) {
  if (unexpected++ == 0) {
    std::lock_guard lock(mu);
    first_unexpected = what;
  }
}

void LinClient(std::uint64_t id, std::vector<std::string> addrs, std::vector<std::string> keys,
               SharedHistory& history, Counters& counters, std::atomic<bool>& stop) {
  std::mt19937 rng(static_cast<std::uint32_t>(id * 7919 + 1));
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

LinClients::LinClients(int n, const std::vector<std::string>& addrs,
                       const std::vector<std::string>& keys, SharedHistory& history,
                       Counters& counters) {
  for (int id = 1; id <= n; ++id)
    threads_.emplace_back(LinClient, static_cast<std::uint64_t>(id), addrs, keys, std::ref(history),
                          std::ref(counters), std::ref(stop_));
}

LinClients::~LinClients() {
  stop_ = true;
  for (auto& t : threads_) t.join();
}

void CheckLinearizable(SharedHistory& history, Counters& counters, int min_definite,
                       const std::string& context) {
  auto h = history.history();
  INFO(h.size() << " operations: " << counters.definite << " definite, " << counters.unknown
                << " unknown outcome; " << context);
  {
    std::lock_guard lock(counters.mu);
    INFO("first unexpected reply: " << counters.first_unexpected);
    CHECK(counters.unexpected == 0);
  }
  REQUIRE(counters.definite > min_definite);
  auto result = raft::lin::CheckHistory(h, {.states_max = 5'000'000});
  INFO(result.ToString());
  REQUIRE(result.verdict != raft::lin::Verdict::kInvalidHistory);
  REQUIRE(result.verdict != raft::lin::Verdict::kNotLinearizable);
  if (result.verdict == raft::lin::Verdict::kTimeout)
    WARN("checker undecided: " << result.ToString());
}

}  // namespace kvtest
