// libFuzzer target (issue 14, "Every peer message validated"): the byzantine program of
// byzantine.h from the fuzzer's bytes. A finding prints the oracle's message and aborts,
// so libFuzzer saves the input; crashes, RAFT_ASSERTs and sanitizer reports are findings
// by themselves. Build: option RAFT_FUZZ (tests/sim/CMakeLists.txt); run: docs/testing.md.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "byzantine.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  raft::sim::ByzantineOutcome out = raft::sim::RunByzantineProgram(data, size);
  if (out.kind == raft::sim::ByzantineOutcome::Kind::kFinding) {
    std::fprintf(stderr, "byzantine finding after %d actions (%d byzantine messages): %s\n",
                 out.actions, out.byzantine_sent, out.what.c_str());
    std::abort();
  }
  return 0;
}
