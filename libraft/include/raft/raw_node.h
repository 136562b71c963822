// RawNode: the consensus core. A pure, single-threaded, deterministic Raft state
// machine. It never touches sockets, clocks, files, threads or a global RNG: ticks
// and messages go in through method calls, and the work it wants done comes out as
// a Ready batch.
//
// Thread safety: none. One thread (or one strand) owns a RawNode.
//
// THE DURABILITY CONTRACT
// For each Ready `rd`, the application must, in this order:
//   1. Send rd.messages. They depend on nothing that is not yet durable (appends and
//      heartbeats from a leader, pre-vote requests, snapshot offers, heartbeat responses
//      in a durable term) and may leave at once,
//      in parallel with step 2. (A leader's own entries count toward commit only
//      after step 5, so writing them in parallel with replication is safe.)
//   2. Persist, atomically with respect to crashes as a group: rd.snapshot (if set: the
//      state machine's snapshot data must already be durable), then rd.entries (which may
//      replace a suffix of the log at and after rd.entries.front().index), then
//      rd.hard_state (if set). When rd.must_sync is false, nothing in rd needs to reach
//      the disk before steps 3-5: the only new durable state is a higher commit index,
//      which the Raft paper keeps volatile. A runtime may then skip the fsync (and write
//      the commit index later, or not at all); after a crash that loses it, the node
//      restarts with an older commit index and relearns the newer one from the leader.
//   3. Only then send rd.messages_after_persist: vote grants and requests, append
//      acknowledgements and every other response. They assert state persisted in step 2.
//   4. Apply rd.committed_entries to the state machine in order (may overlap step 3),
//      and serve rd.read_states once applied index >= their index. (Committed entries
//      already durable here may be applied before step 2 completes; TakeCommitted hands
//      out those that become committed while a Ready is outstanding.)
//   5. Call Advance(rd). The core then treats everything in rd as durable and applied.
// Calling GetReady() again before Advance() is a bug (aborts).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/config.h"
#include "raft/export.h"
#include "raft/message.h"
#include "raft/status.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace raft {

enum class Role : std::uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
RAFT_EXPORT const char* RoleName(Role r);

// A read whose linearization point is `index`: serve it once applied >= index.
struct ReadState {
  Index index = 0;
  std::string context;  // as given to ReadIndex()
  bool operator==(const ReadState&) const = default;
};

struct SoftState {
  NodeId leader = kNoNode;
  Role role = Role::kFollower;
  bool operator==(const SoftState&) const = default;
};

struct RAFT_EXPORT Ready {
  std::optional<SoftState> soft_state;          // set when leader or role changed
  std::optional<HardState> hard_state;          // set when it must be persisted
  std::optional<SnapshotMeta> snapshot;         // install before entries
  std::vector<Entry> entries;                   // to persist
  std::vector<Entry> committed_entries;         // to apply, in order
  std::vector<Message> messages;                // may leave now
  std::vector<Message> messages_after_persist;  // only after step 2 is durable
  std::vector<ReadState> read_states;
  // Set when a voter must leave: the node was removed from the configuration.
  bool removed = false;
  // True iff step 2 must be durable before steps 3-5: a snapshot, entries, or a new term
  // or vote. False when hard_state differs from the last one only in its commit index.
  bool must_sync = false;

  bool Empty() const;
};

// Replication state of one peer as seen by the leader.
enum class ProgressState : std::uint8_t { kProbe, kReplicate, kSnapshot };
RAFT_EXPORT const char* ProgressStateName(ProgressState s);

struct PeerStatus {
  NodeId id = kNoNode;
  bool voter = false;
  Index match = 0;
  Index next = 0;
  ProgressState state = ProgressState::kProbe;
  bool recent_active = false;
};

struct NodeStatus {
  NodeId id = kNoNode;
  Role role = Role::kFollower;
  NodeId leader = kNoNode;
  HardState hard_state;
  Index applied = 0;
  Index last_index = 0;
  ConfState conf;
  NodeId lead_transferee = kNoNode;
  bool quiesced = false;          // Config::quiesce: asleep until an input wakes it
  std::vector<PeerStatus> peers;  // filled on the leader only
};

class RaftCore;  // internal

class RAFT_EXPORT RawNode {
 public:
  // `storage` is borrowed: it must outlive the RawNode and reflect everything persisted
  // through Ready (the application writes to it between GetReady() and Advance()).
  static Result<std::unique_ptr<RawNode>> Create(const Config& config, const Storage* storage);
  ~RawNode();
  RawNode(const RawNode&) = delete;
  RawNode& operator=(const RawNode&) = delete;

  // Advances logical time by one tick.
  void Tick();

  // Feeds a message from a peer. A malformed one, or one no honest peer could send given
  // this node's state, is refused with kInvalidArgument naming the field, before anything
  // changes (docs/core.md, "Message validation"; one exception: a term more than
  // kTermJumpMax ahead moves this node that far up). Stale ones are ignored (Ok).
  Status Step(const Message& m);

  // Leader only. Appends `data` as a normal entry and returns its position: the entry
  // is committed iff the entry applied at that index has that term.
  // kNotLeader (message names the leader), kProposalDropped.
  Result<LogPosition> Propose(std::string data);

  // Leader only. One membership change at a time; refused (kConfChangePending) while
  // another is uncommitted or before an entry of the leader's term has committed.
  Result<LogPosition> ProposeConfChange(const ConfChange& cc);

  // Requests a linearizable read point. The answer comes as a ReadState in a later Ready.
  // On a follower the request is forwarded to the leader. kNotLeader if no leader known.
  Status ReadIndex(std::string context);

  // Leader only: hands leadership to `target` (a voter). Proposals are refused while the
  // transfer runs; it is aborted after an election timeout.
  Status TransferLeadership(NodeId target);

  // Starts an election now (subject to pre-vote). No-op on a leader or a non-voter, and
  // with kLeaseBased while this node may still be counted in a leader's lease (less than
  // election_ticks after it last heard from a leader, or after it started).
  void Campaign();

  // The transport could not deliver to `id`; the leader falls back to probing it.
  void ReportUnreachable(NodeId id);
  // The connection from `id` ended (EOF or error: a killed process, a reset). If `id` is
  // this follower's leader, the follower stops vouching for it (leaving its lease,
  // thesis 4.2.3, so others may win its pre-vote and vote) and campaigns within a random
  // 1..election_ticks ticks instead of a full election timeout. A leader that is alive
  // keeps its place: the followers that still hear from it refuse the pre-vote. No safety
  // property depends on it; it only shortens failover after a crash. With kLeaseBased it
  // is ignored: the leader may be alive (a reset connection) and serving reads from a
  // lease that counts on this follower's promise.
  void ReportLeaderLost(NodeId id);
  // Outcome of streaming the snapshot offered to `id` by a kSnapshot message.
  void ReportSnapshot(NodeId id, bool success);

  // Config::quiesce. Quiesced(): asleep, Tick() is a no-op. Unquiesce() wakes it (a no-op
  // when awake): the host calls it when it loses the process of this group's leader (a
  // follower then campaigns after a normal election timeout unless the leader speaks) or,
  // on a leader, a quorum of its followers' processes (check-quorum runs again).
  bool Quiesced() const;
  void Unquiesce();

  bool HasReady() const;
  Ready GetReady();
  void Advance(const Ready& rd);

  // Messages that may leave now (the kind found in Ready::messages: a leader's appends
  // and heartbeats, pre-vote requests, snapshot offers), produced since the last
  // GetReady(). Callable while a Ready is being persisted, so that replication and
  // heartbeats never wait behind the disk (a stalled disk must not stall check-quorum).
  // Messages that need persistence stay for the next Ready.
  std::vector<Message> TakeMessages();

  // Committed entries that are durable on this node and were not handed out yet, in index
  // order, at most Config::max_committed_bytes_per_ready of them (at least one). Callable
  // at any time, including while a Ready is being persisted: an entry committed by an
  // acknowledgement that arrives during an fdatasync need not wait for that fdatasync
  // (step 2 of the outstanding Ready) to reach the state machine. Never returns an entry
  // of the outstanding Ready (not durable yet), nor anything while a snapshot waits to be
  // installed. Apply them in order after every committed entry handed out before (by
  // GetReady or TakeCommitted); the next GetReady does not repeat them. Like the Ready's
  // committed entries, they count as applied from the next Advance.
  std::vector<Entry> TakeCommitted();

  // Backpressure from the state machine: while paused, neither GetReady nor TakeCommitted
  // hands out committed entries, and committed entries alone do not make HasReady true;
  // everything else (persistence, messages, commit index, snapshots to install) flows as
  // usual. Entries not handed out still count against Config::max_uncommitted_bytes on a
  // leader, so proposals are refused (kProposalDropped) instead of queuing without bound.
  // Pausing never affects safety, only when entries reach the state machine.
  void PauseCommitted(bool paused);

  NodeStatus GetStatus() const;
  NodeId id() const;
  Role role() const;
  NodeId leader() const;
  Term term() const;

 private:
  explicit RawNode(std::unique_ptr<RaftCore> core);
  std::unique_ptr<RaftCore> core_;
};

}  // namespace raft
