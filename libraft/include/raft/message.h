// Messages exchanged between Raft peers. Only these cross the network; local
// inputs (ticks, proposals, reports) are RawNode methods instead.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "raft/export.h"
#include "raft/types.h"

namespace raft {

enum class MessageType : std::uint8_t {
  kAppend = 1,          // leader -> follower: entries after (log_term, index)
  kAppendResponse = 2,  // follower -> leader: accepted up to index, or reject + hint
  kVote = 3,            // candidate -> all: vote for me in `term`; (log_term, index) = my last
  kVoteResponse = 4,
  kPreVote = 5,  // would you vote for me in `term` (not yet adopted)?
  kPreVoteResponse = 6,
  kHeartbeat = 7,           // leader -> follower: commit = min(match, commit), read_seq
  kHeartbeatResponse = 8,   // echoes read_seq
  kSnapshot = 9,            // leader -> follower: install `snapshot` (bytes moved by runtime)
  kTimeoutNow = 10,         // leader -> transfer target: campaign now (index/log_term = last)
  kReadIndex = 11,          // follower -> leader: request a read index for `context`
  kReadIndexResponse = 12,  // leader -> follower: index = read index (reject if unknown)
};

constexpr int kMessageTypeMax = 12;

// Bounds every message must respect (RaftCore refuses it otherwise; docs/core.md,
// "Message validation"). Far below 2^64, so that term + 1 and index + count never wrap;
// an honest cluster reaches neither (one term per election, one index per entry).
constexpr Term kTermMax = Term{1} << 62;
constexpr Index kIndexMax = Index{1} << 62;
// A message may carry a term at most this far above the receiver's own; one further
// above moves the receiver only this far up, and is refused. One frame can then no longer
// push a cluster to kTermMax (an honest gap is one term per election the receiver missed:
// 2^32 of them take over a century at one election a second).
constexpr Term kTermJumpMax = Term{1} << 32;
RAFT_EXPORT const char* MessageTypeName(MessageType t);
RAFT_EXPORT bool IsResponse(MessageType t);

// Field meaning per type (unused fields are zero/empty):
//   kAppend:          index/log_term = prev entry, entries, commit
//   kAppendResponse:  accept: index = last index matched; reject: index = the rejected
//                     prev index, reject_hint/log_term = follower's hint (index, term)
//   kVote/kPreVote:   index/log_term = candidate's last entry; campaign_transfer set when
//                     leadership transfer (bypasses the leader-lease check)
//   k*VoteResponse:   reject
//   kHeartbeat:       commit, read_seq, quiesce (the leader's last round before it
//                     quiesces: Config::quiesce);  kHeartbeatResponse: read_seq
//   kSnapshot:        snapshot
//   kTimeoutNow:      index/log_term = the leader's last entry; the target obeys only if
//                     it follows the sender and its own log ends exactly there
//   kReadIndex:       context;  kReadIndexResponse: index, context, reject
struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term = 0;
  Term log_term = 0;
  Index index = 0;
  Index commit = 0;
  bool reject = false;
  Index reject_hint = 0;
  bool campaign_transfer = false;
  bool quiesce = false;
  std::uint64_t read_seq = 0;
  std::vector<Entry> entries;
  SnapshotMeta snapshot;
  std::string context;

  bool operator==(const Message&) const = default;
};

}  // namespace raft
