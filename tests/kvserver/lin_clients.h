// Concurrent HTTP clients whose operations are recorded for the linearizability checker
// of tests/lin (kv_history.h), shared by the process tests that check linearizability
// under faults.
//
// Outcome mapping (kv_history.h, "Outcomes"): a reply of 200 / 404 (GET) / 412 (CAS) is a
// definite outcome. 503 and 504, a transport error or a timeout leave a write pending (an
// unknown outcome: it may or may not have been applied; that is always sound). A GET
// without a definite answer constrains nothing and is dropped.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kv_history.h"

namespace kvtest {

// The history of every client, stamped in one strictly increasing clock. Thread-safe.
class SharedHistory {
 public:
  SharedHistory() : start_(std::chrono::steady_clock::now()) {}
  raft::lin::HistoryRecorder::OpId Invoke(std::uint64_t client, raft::lin::Input input);
  void Complete(raft::lin::HistoryRecorder::OpId id, raft::lin::Output output);
  void Discard(raft::lin::HistoryRecorder::OpId id);
  raft::lin::History history();

 private:
  raft::lin::Tick Now();  // strictly increasing under mu_: no two events share a stamp

  std::mutex mu_;
  std::chrono::steady_clock::time_point start_;
  raft::lin::Tick last_ = 0;
  raft::lin::HistoryRecorder recorder_;
};

struct Counters {
  std::atomic<int> definite{0};
  std::atomic<int> unknown{0};
  std::atomic<int> unexpected{0};  // statuses the API does not allow here
  std::mutex mu;
  std::string first_unexpected;
  void Unexpected(const std::string& what);
};

// One client until `stop`: random GET (40%), PUT (40%), CAS (10%) and DELETE (10%) on
// `keys`, each on a random node of `addrs`, recorded in `history`.
void LinClient(std::uint64_t id, std::vector<std::string> addrs, std::vector<std::string> keys,
               SharedHistory& history, Counters& counters, std::atomic<bool>& stop);

// What a linearizability test checks once its clients stopped: no reply the API does not
// allow, more than `min_definite` definite outcomes (the run did something), and a
// history the checker finds linearizable (undecided: a warning). `context` is printed
// with any failure. Catch2 assertions: the test's thread only.
void CheckLinearizable(SharedHistory& history, Counters& counters, int min_definite,
                       const std::string& context);

// `n` LinClients (ids 1..n), each on a thread, until this is destroyed: the destructor
// stops and joins them on every exit from the test's block, a failed REQUIRE included (a
// joinable std::thread destroyed during unwinding would abort the test binary).
class LinClients {
 public:
  LinClients(int n, const std::vector<std::string>& addrs, const std::vector<std::string>& keys,
             SharedHistory& history, Counters& counters);
  ~LinClients();
  LinClients(const LinClients&) = delete;
  LinClients& operator=(const LinClients&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace kvtest
