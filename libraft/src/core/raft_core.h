// RaftCore: the state and step functions behind RawNode. Split by concern:
//   raft_core.cc  construction, term/role transitions, common Step, ticks, elections
//   follower.cc   Append/Heartbeat/Snapshot handling, ReadIndex forwarding
//   leader.cc     replication, commit, heartbeats, ReadIndex, transfer, membership
//   ready.cc      Ready/Advance: the durability contract
//   validate.cc   every message's fields checked before Step acts on it
// Thread safety: none; one owner thread.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "core/membership.h"
#include "core/prng.h"
#include "core/progress.h"
#include "core/raft_log.h"
#include "core/read_only.h"
#include "raft/config.h"
#include "raft/message.h"
#include "raft/raw_node.h"
#include "raft/storage.h"

namespace raft {

class RaftCore {
 public:
  static Result<std::unique_ptr<RaftCore>> Create(const Config& config, const Storage* storage);

  void Tick();
  Status Step(const Message& m);
  Result<LogPosition> Propose(std::string data);
  Result<LogPosition> ProposeConfChange(const ConfChange& cc);
  Status ReadIndex(std::string context);
  Status TransferLeadership(NodeId target);
  void Campaign() {
    Unquiesce();
    Hup(/*transfer=*/false);
  }
  void ReportUnreachable(NodeId id);
  void ReportLeaderLost(NodeId id);
  void ReportSnapshot(NodeId id, bool success);
  bool quiesced() const { return quiesced_; }
  void Unquiesce();

  bool HasReady() const;
  Ready GetReady();
  void Advance(const Ready& rd);
  std::vector<Message> TakeMessages();
  std::vector<Entry> TakeCommitted();
  void PauseCommitted(bool paused) { committed_paused_ = paused; }
  NodeStatus GetStatus() const;

  NodeId id() const { return cfg_.id; }
  Role role() const { return role_; }
  NodeId leader() const { return lead_; }
  Term term() const { return term_; }

 private:
  RaftCore(const Config& config, const Storage* storage);

  // --- ready.cc ---
  void AcceptApplying(const std::vector<Entry>& ents);

  // --- validate.cc ---
  // kInvalidArgument (naming the field and its bound) when `m` is malformed or could not
  // have come from an honest peer given our state; Ok otherwise. Reads state, changes
  // nothing: Step returns the refusal before acting (docs/core.md, "Message validation").
  Status Validate(const Message& m) const;
  Status StepTowardsTerm(const Message& m);  // m.term > term_ + kTermJumpMax

  // --- raft_core.cc ---
  void Reset(Term term);
  void BecomeFollower(Term term, NodeId lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void Hup(bool transfer);
  void StartElection(bool pre_vote, bool transfer);
  void HandleVoteRequest(const Message& m);
  void StepCandidate(const Message& m);
  bool Promotable() const;
  void ResetRandomizedElectionTimeout();
  bool PastElectionTimeout() const { return election_elapsed_ >= randomized_election_timeout_; }
  void TickElection();
  void TickHeartbeat();
  void Send(Message m);
  void OnConfigChanged();  // SyncProgress + leader reactions
  void SyncProgress();     // one Progress per member, no other effect
  const ConfState& conf() const { return conf_.Current(); }
  bool CommittedInTerm() const { return log_.TermOrZero(log_.committed()) == term_; }
  Status NotLeader() const;

  // --- follower.cc ---
  void StepFollower(const Message& m);
  void HeardFromLeader(NodeId from);  // a leader's Append, Heartbeat or Snapshot arrived
  void HandleAppend(const Message& m);
  void SendAppendAck(NodeId to, Index index);  // accept; records acked_in_term_
  void DropAcksFrom(Index index);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  bool Restore(const SnapshotMeta& meta);

  // --- ready.cc ---
  bool RemovalToReport() const;

  // --- quiesce.cc ---
  // Leader: everything is replicated to every member, committed and idle.
  bool CanQuiesce() const;
  void Quiesce();  // leader: the last heartbeat round, flagged; then asleep
  // Follower: the leader's quiesce round `m` (already applied to our commit); true when
  // it put us to sleep (the round is then not answered: an answer would wake the leader).
  bool MaybeQuiesceFollower(const Message& m);
  // `m` leaves a quiesced node asleep: the quiesce round itself, late answers to rounds
  // before it, anything of an older term (ignored or answered with our term).
  bool KeepsQuiesced(const Message& m) const;

  // --- leader.cc ---
  void StepLeader(const Message& m);
  Result<LogPosition> AppendAsLeader(std::vector<Entry> ents);
  bool SendAppend(NodeId to, bool send_if_empty);
  bool SendSnapshot(NodeId to);
  void SendHeartbeats(bool quiesce = false);
  void FlushLeader();
  void MaybeCommitAsLeader();
  void HandleAppendResponse(const Message& m);
  void HandleHeartbeatResponse(const Message& m);
  void LeaderReadIndex(std::string context, NodeId from);
  void ReleaseReads();
  void RespondRead(PendingRead r);
  void AbortLeaderTransfer() { lead_transferee_ = kNoNode; }
  void SendTimeoutNow(NodeId to);
  bool LeaseValid() const;
  // kLeaseBased only: this node may still be counted in a leader's lease (it heard from a
  // leader, or started, less than election_ticks ago), so it neither votes for nor
  // becomes another leader except through that leader's own transfer.
  bool LeasePromised() const {
    return cfg_.read_only == ReadOnlyOption::kLeaseBased && ticks_ < lease_promised_until_tick_;
  }

  Config cfg_;
  Prng prng_;
  RaftLog log_;
  ConfigHistory conf_;
  std::map<NodeId, Progress> prs_;  // every member, self included

  Term term_ = 0;
  NodeId vote_ = kNoNode;
  NodeId lead_ = kNoNode;
  Role role_ = Role::kFollower;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  std::map<NodeId, bool> votes_;
  bool campaign_transfer_ = false;
  // kLeaseBased: the tick (of ticks_) until which this node keeps its promise to a
  // leader's lease. Set to ticks_ + election_ticks whenever a leader's message arrives,
  // and to election_ticks at creation (a restarted node may have promised before it
  // crashed). Unlike election_elapsed_ and lead_, no term or role change clears it.
  std::uint64_t lease_promised_until_tick_ = 0;
  // Follower: the highest index this node acknowledged (an accepting AppendResponse) in
  // term_, or nullopt when unknown (since a restart, until the term changes). A leader's
  // heartbeat commits at most its match for us, so an honest heartbeat commit never
  // exceeds it (Validate).
  std::optional<Index> acked_in_term_;

  // Leader state.
  NodeId lead_transferee_ = kNoNode;
  bool timeout_now_sent_ = false;  // this term: no lease from now on (see LeaseValid)
  Index pending_conf_index_ = 0;
  std::uint64_t uncommitted_bytes_ = 0;
  ReadOnlyQueue read_only_;
  std::uint64_t ticks_ = 0;   // logical clock: Tick() calls since creation
  std::uint64_t hb_seq_ = 0;  // sequence of the latest heartbeat round (never reset)
  std::deque<std::pair<std::uint64_t, std::uint64_t>> hb_sent_;  // (seq, tick sent), recent
  std::vector<PendingRead> reads_before_commit_;                 // wait for the term's first commit
  bool bcast_pending_ = false;         // proposals appended since the last flush
  bool commit_bcast_pending_ = false;  // commit advanced since the last flush
  bool heartbeat_pending_ = false;     // a ReadIndex round needs a heartbeat
  // Config::quiesce: asleep (quiesce.cc). quiesce_seq_: the leader's quiesce round.
  bool quiesced_ = false;
  std::uint64_t quiesce_seq_ = 0;

  // Output.
  std::vector<Message> msgs_;
  std::vector<Message> msgs_after_persist_;
  std::vector<ReadState> read_states_;
  HardState prev_hard_;
  SoftState prev_soft_;
  Term durable_term_ = 0;
  bool ready_outstanding_ = false;
  bool was_member_ = false;
  bool removed_reported_ = false;
  bool committed_paused_ = false;  // PauseCommitted: hand out no committed entries
};

}  // namespace raft
