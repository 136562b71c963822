// byzantine_sweep: the byzantine program of byzantine.h from seeded random bytes, without
// libFuzzer (any compiler), for CTest and for replaying inputs the fuzzer saved.
//   byzantine_sweep --seeds A..B [--bytes N]   programs from seeds A..B (N random bytes each)
//   byzantine_sweep FILE...                    the saved inputs FILE... (e.g. fuzz_corpus/*)
//   --silent                                   n4 sends nothing (the control run)
//   --trace                                    print every step and message
// Exit status 1 on the first finding (the seed or file and the oracle's message are
// printed); a crash or RAFT_ASSERT aborts after the seed or file was printed.
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "byzantine.h"
#include "sim_rng.h"

namespace {

char g_current[256] = "";
bool g_silent = false;
bool g_trace = false;

void OnFatal(int sig) {
  const char* msg = "\nbyzantine_sweep: died while running ";
  (void)!write(2, msg, std::strlen(msg));
  (void)!write(2, g_current, std::strlen(g_current));
  (void)!write(2, "\n", 1);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

struct Tally {
  long passed = 0, stopped = 0, messages = 0, actions = 0;
};

bool RunOne(const std::vector<std::uint8_t>& bytes, const std::string& name, Tally* t) {
  std::snprintf(g_current, sizeof g_current, "%s", name.c_str());
  raft::sim::ByzantineOutcome out =
      raft::sim::RunByzantineProgram(bytes.data(), bytes.size(), g_silent, g_trace);
  t->messages += out.byzantine_sent;
  t->actions += out.actions;
  switch (out.kind) {
    case raft::sim::ByzantineOutcome::Kind::kPassed:
      ++t->passed;
      return true;
    case raft::sim::ByzantineOutcome::Kind::kStopped:
      ++t->stopped;
      return true;
    case raft::sim::ByzantineOutcome::Kind::kFinding:
      break;
  }
  std::printf("FAIL %s: %s\n", name.c_str(), out.what.c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGABRT, OnFatal);
  std::signal(SIGSEGV, OnFatal);
  std::uint64_t lo = 1, hi = 0;
  std::size_t nbytes = 1024;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seeds" && i + 1 < argc) {
      std::string r = argv[++i];
      auto dots = r.find("..");
      lo = std::strtoull(r.c_str(), nullptr, 10);
      hi = dots == std::string::npos ? lo : std::strtoull(r.c_str() + dots + 2, nullptr, 10);
    } else if (a == "--silent") {
      g_silent = true;
    } else if (a == "--trace") {
      g_trace = true;
    } else if (a == "--bytes" && i + 1 < argc) {
      nbytes = std::strtoull(argv[++i], nullptr, 10);
    } else {
      files.push_back(a);
    }
  }
  Tally t;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::printf("cannot read %s\n", f.c_str());
      return 2;
    }
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
    if (!RunOne(bytes, f, &t)) return 1;
  }
  for (std::uint64_t seed = lo; seed <= hi; ++seed) {
    raft::sim::Rng rng(seed);
    std::vector<std::uint8_t> bytes(1 + rng.Uniform(nbytes));
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng.Next());
    if (!RunOne(bytes, "seed " + std::to_string(seed), &t)) return 1;
  }
  std::printf(
      "byzantine_sweep: %ld programs ran to their end, %ld stopped at a broken "
      "cross-node invariant (non-strict); %ld actions, %ld byzantine messages\n",
      t.passed, t.stopped, t.actions, t.messages);
  return 0;
}
