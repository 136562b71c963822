// The byzantine program: a simulated cluster (tests/sim Cluster) of three honest voters
// n1..n3 plus n4, a voter in the configuration whose RawNode is never started: the
// program speaks for it. Used by the libFuzzer target fuzz_byzantine.cc and by the
// seeded driver byzantine_sweep.cc (the same program from random bytes).
//
// Input bytes -> program (decoding is total: every byte string is a valid program):
//   byte 0      flags: bit 0 strict mode, bits 1-2 entries committed in the prologue
//   byte 1      the cluster's seed
//   then actions until the bytes (or kMaxActions) run out; each is an opcode byte and its
//   arguments: ticks, a proposal at the leader, crash/restart of an honest node, a local
//   snapshot, or a message "from n4" to an honest node with fuzzer-chosen type, term,
//   index, log_term, commit, entries, snapshot metadata, reject flags, hint, read_seq and
//   context. Numbers are decoded relative to the receiver's state (its term, commit,
//   first and last index, the term at an index) or as absolute small / huge / random
//   values, so that the fuzzer reaches both plausible and absurd messages.
// Honest nodes' messages to n4 are dropped (n4 is not running). The byzantine message is
// stepped straight into the receiver (no network delay), so the receiver's state when it
// arrives is the state the program decoded it against.
//
// The oracle (Raft is not Byzantine fault tolerant: a member that lies about a vote, an
// ack or its leadership can make honest nodes disagree, and no validation can tell):
//   1. no crash, no RAFT_ASSERT, no exception, no sanitizer report, in every mode;
//   2. every honest node's local invariants, in every mode, after every action: terms never
//      go back (in memory within a life, durable across lives), commit <= last index,
//      applied <= commit, its durable log has consecutive indexes, terms that do not
//      decrease and are <= its durable term, a durable commit within the log, it restarts
//      from its durable state, and the simulated disk accepts what the core asks it to
//      write (harness failures that only a node's own state can cause);
//   3. strict mode only: n4 sends only messages MustRefuseReason() names (the receiver can
//      tell from its own state that no honest member sends them). Then every invariant of
//      the Checker (checker.h: election safety, log matching, state machine safety...)
//      must hold, no honest message may be refused, and after the program the honest
//      cluster must elect a leader and commit a new entry within kLivenessTicks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "raft/message.h"
#include "raft/raw_node.h"
#include "raft/storage.h"

namespace raft::sim {

// Terms and indexes above this are refused by validation: no honest cluster reaches them
// (2^32 elections or entries below the wrap), and with them the next term or index would
// be one increment or one batch away from wrapping.
constexpr std::uint64_t kByzantineCeiling = UINT64_MAX - (std::uint64_t{1} << 32);

struct ByzantineOutcome {
  enum class Kind {
    kPassed,   // the program ran to its end (and, in strict mode, the liveness check passed)
    kStopped,  // non-strict: a cross-node Checker invariant broke, as lies may make it
    kFinding,  // an oracle failed: `what` says which
  };
  Kind kind = Kind::kPassed;
  std::string what;
  int actions = 0;
  int byzantine_sent = 0;  // messages stepped into honest nodes
};

// Runs one program. Never throws SimFailure; a crash or an assert aborts the process.
// `silent`: n4 sends nothing (the control: the same programs must pass on any core).
// `trace`: print every step and message (byzantine_sweep --trace FILE).
ByzantineOutcome RunByzantineProgram(const std::uint8_t* data, std::size_t size,
                                     bool silent = false, bool trace = false);

// What the receiver can tell from its own state: why no honest member would send `m` to
// it, or "" if an honest member might. `status` is the receiver's RawNode::GetStatus(),
// `log` its storage (the simulated disk completes every write at once, so it holds the
// whole log). Deliberately left out, because an honest member may send them: commit
// beyond index + entries (a leader sends its own commit; the follower clamps), a sender
// outside the receiver's configuration (it may lag behind a membership change), forged
// votes, acks within the leader's log, and leadership claims in a new term.
std::string MustRefuseReason(const Message& m, const NodeStatus& status, const Storage& log);

}  // namespace raft::sim
