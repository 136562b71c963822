// Plain value types shared by the consensus core, storage and transport.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "raft/export.h"
#include "raft/status.h"

namespace raft {

using NodeId = std::uint64_t;  // 0 means "none"
using Term = std::uint64_t;
using Index = std::uint64_t;  // log indexes start at 1; 0 means "before the log"

constexpr NodeId kNoNode = 0;

enum class EntryType : std::uint8_t {
  kNormal = 0,      // application data; empty data is the leader's term-start no-op
  kConfChange = 1,  // data is an encoded ConfChange (EncodeConfChange)
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::kNormal;
  std::string data;

  bool operator==(const Entry&) const = default;
};

// Bytes an entry counts for in size limits (payload plus a fixed overhead).
inline std::uint64_t EntrySizeBytes(const Entry& e) { return e.data.size() + 24; }

// Durable per-node state. Must be persisted before any message that depends on it leaves.
struct HardState {
  Term term = 0;
  NodeId vote = kNoNode;
  Index commit = 0;

  bool operator==(const HardState&) const = default;
};

// Cluster membership. Voters elect and count toward commit; learners only receive the log.
struct ConfState {
  std::set<NodeId> voters;
  std::set<NodeId> learners;

  bool operator==(const ConfState&) const = default;
  bool Contains(NodeId id) const { return voters.count(id) || learners.count(id); }
};

// One membership step. Exactly one voter is added or removed per change.
enum class ConfChangeType : std::uint8_t {
  kAddLearner = 0,  // add a non-voting member (demoting a voter is refused)
  kAddVoter = 1,    // add a new voter, or promote an existing learner
  kRemoveNode = 2,  // remove a voter or learner
};

struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddVoter;
  NodeId node = kNoNode;
  std::string context;  // opaque to the core (the runtime keeps addresses here)

  bool operator==(const ConfChange&) const = default;
};

// Pure codec for ConfChange entry payloads. Decode fails on malformed input.
RAFT_EXPORT std::string EncodeConfChange(const ConfChange& cc);
RAFT_EXPORT bool DecodeConfChange(const std::string& data, ConfChange* out);

// Metadata of a snapshot: the state machine after applying every entry <= index.
// The snapshot's bytes never pass through the core; the runtime moves them.
struct SnapshotMeta {
  Index index = 0;
  Term term = 0;
  ConfState conf;  // membership as of `index`

  bool operator==(const SnapshotMeta&) const = default;
};

// (term, index) identifies an entry uniquely (Log Matching Property).
struct LogPosition {
  Term term = 0;
  Index index = 0;
  bool operator==(const LogPosition&) const = default;
};

}  // namespace raft

namespace raft {
// Applies one membership change to `conf`. kInvalidArgument when the change is not a
// single-voter step (adding an existing voter, removing an absent node, node 0,
// demoting a voter to learner).
RAFT_EXPORT Result<ConfState> ApplyConfChange(const ConfState& conf, const ConfChange& cc);
}  // namespace raft
