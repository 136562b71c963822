// raft::Host: one process hosting many Raft groups (docs/multi-raft.md). Every group has
// its own consensus core, state machine and membership; what a process has once is
// shared by all of its groups: one transport connection per peer process (protocol
// version 4: frames name their group, heartbeats are coalesced per pair of processes),
// one log on disk with one fdatasync per batch for every group (storage::SharedLog), one
// ticker that ticks only the awake groups (idle groups quiesce), and one failure
// detector that wakes the sleeping groups of a process that is lost.
//
// A replica is named by its process: in every group, the replica on process `p` has node
// id `p`, and a process holds at most one replica of a group. The processes and their
// Raft addresses are given at Start (HostOptions::peers) and changed at run time
// (SetPeer, RemovePeer): a group can name only a process its host knows.
//
// Threads: the lanes of raft::Node (runtime/env.h): io (transport, ticks, every group's
// core), disk (the shared log: one round of every group's pending writes, one Sync),
// apply (every group's StateMachine, in each group's log order). All public methods are
// thread-safe; the ones that block say so.
//
// Snapshots (docs/multi-raft.md, "Group snapshots"): each group's state machine is
// snapshotted every HostOptions::snapshot_entries applied entries into the group's own
// snapshot store (<data_dir>/groups/<g>/snap), the group's log is compacted behind it and
// the shared log's dead segments reclaimed; a replica too far behind is sent the
// snapshot over the shared connection (protocol version 4, frame types 9-10).
//
// Not built yet: a replica returning to a process that removed its group (the shared log
// does not reuse a removed group's id).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "raft/export.h"
#include "raft/logger.h"
#include "raft/node.h"  // BackupInfo
#include "raft/raw_node.h"
#include "raft/state_machine.h"
#include "raft/status.h"
#include "raft/tls_options.h"
#include "raft/types.h"

namespace raft {

namespace runtime {
class Env;  // src/runtime/env.h (internal)
}  // namespace runtime

// A group hosted by a raft::Host; 0 means none.
using GroupId = std::uint64_t;

struct HostOptions {
  NodeId self = kNoNode;    // this process: its replica's id in every group (> 0)
  std::string listen_addr;  // the Raft port, "host:port"
  // Told to peers in the handshake; empty: listen_addr.
  std::string advertise_addr;
  // The other processes and their Raft addresses at start (self may be listed; it is
  // skipped); Host::SetPeer and RemovePeer change them later.
  std::map<NodeId, std::string> peers;
  // Holds the shared log (<data_dir>/log); created if missing.
  std::string data_dir;
  // Checked in every handshake; with a secret, a mutual proof of it
  // (docs/wire-protocol.md 4.1), as NodeOptions's.
  std::string cluster_id = "raft";
  std::string cluster_secret;
  // TLS on the Raft port, both directions, as NodeOptions::peer_tls (off when not
  // enabled); every process of a cluster must agree.
  TlsOptions peer_tls;
  // The core's timing, the same for every group (raft/config.h).
  int tick_ms = 100;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  // Idle groups stop ticking and heartbeating (Config::quiesce); the idle target
  // depends on it.
  bool quiesce = true;
  // A proposal over this is refused with kInvalidArgument.
  std::uint64_t max_entry_bytes = 1 << 20;
  // Requests (proposals, reads) in flight over all groups; more get kBusy.
  std::size_t max_pending_requests = 100000;
  // Segments of the shared log roll at this size (SharedLogOptions).
  std::uint64_t log_segment_bytes = 64ull << 20;
  // Compaction, per group, as NodeOptions's: a snapshot every snapshot_entries applied
  // entries (0: never; the group's log then grows until the group is removed), keeping
  // snapshot_trailing_entries of log behind it for followers a little behind (one further
  // behind is sent the snapshot).
  std::uint64_t snapshot_entries = 10000;
  std::uint64_t snapshot_trailing_entries = 1000;
  // Snapshot streams: chunk size, chunks in flight unacknowledged, and the longest stream
  // a receiver takes (longer ones are aborted and their file removed; 0: no limit).
  std::uint32_t snapshot_chunk_bytes = 256 * 1024;
  std::uint32_t snapshot_window_chunks = 4;
  std::uint64_t max_snapshot_bytes = 64ull << 30;
  Logger* logger = nullptr;  // borrowed; nullptr: no logs
};

struct GroupStatusInfo {
  GroupId group = 0;
  Role role = Role::kFollower;
  NodeId leader = kNoNode;
  Term term = 0;
  Index commit = 0;
  Index applied = 0;  // by this process's state machine
  Index last_index = 0;
  Index snapshot_index = 0;  // of the group's latest snapshot in the log (0: none)
  bool asleep = false;       // quiesced
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;
  // On the leader only: each other member's match index (what its log is known to hold),
  // by process; what a caller promoting a learner waits on.
  std::vector<std::pair<NodeId, Index>> match;
};

struct HostMetrics {
  std::uint64_t groups = 0;
  std::uint64_t awake_groups = 0;
  // Disk rounds: each wrote the pending Readies of any number of groups and made them
  // durable with one Sync of the shared log.
  std::uint64_t disk_rounds = 0;
  std::uint64_t readies_persisted = 0;
  std::uint64_t log_syncs = 0;  // fdatasyncs of the shared log (recovery's included)
  std::uint64_t proposals_committed = 0;
  std::uint64_t proposals_failed = 0;
  std::uint64_t frames_refused = 0;  // group frames the host refused (a lying peer)
  std::uint64_t wakes_by_detector = 0;
  std::uint64_t leaders_lost = 0;         // followers told at once their leader's connection ended
  std::uint64_t snapshots_taken = 0;      // recorded in the log (and the log compacted)
  std::uint64_t snapshots_installed = 0;  // received and restored into a state machine
  std::uint64_t snapshots_sent = 0;       // streams a peer received whole
  std::uint64_t segments_reclaimed = 0;   // shared-log segments deleted after compaction
};

class RAFT_EXPORT Host {
 public:
  using Callback = std::function<void(Result<std::string>)>;

  // Opens (or creates) data_dir and its shared log (recovery), binds the listener and
  // starts the lanes. No group runs until CreateGroup.
  static Result<std::unique_ptr<Host>> Start(const HostOptions& options);
  // Internal, not exported: Start on the given runtime::Env instead of threads, sockets
  // and files (as Node::StartWithEnv).
  RAFT_NO_EXPORT static Result<std::unique_ptr<Host>> StartWithEnv(
      const HostOptions& options, std::unique_ptr<runtime::Env> env);
  ~Host();  // Stop() if still running
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Graceful stop: refuses new requests, fails pending ones with kShutdown, finishes the
  // disk round in flight, stops the lanes and closes the log. Idempotent; blocks.
  void Stop();

  // The groups the shared log held at Start: those to CreateGroup again after a restart.
  std::vector<GroupId> LoggedGroups() const;

  // Starts hosting group `g` (> 0) with the state machine `sm` (borrowed: it must outlive
  // the group). A group new to the log is bootstrapped with `voters` (process ids; they
  // must include self), durably, before its core starts; with no voters the replica
  // joins instead: it starts empty and waits for the group's leader to add it
  // (AddLearner) and send it the log. A group the log already holds resumes from it
  // (`voters` are then ignored) and `sm` gets the committed entries after its
  // AppliedIndex(). Every bootstrapped replica of a group must get the same voters. `done` runs
  // once the group runs (ok) or with the error: kInvalidArgument (g is 0 or already hosted, voters
  // without self or naming a process not in HostOptions::peers), kShutdown (the host is stopping),
  // a storage error. It runs on a lane (or at once in the caller for a refusal) and must not block
  // on this Host.
  void CreateGroup(GroupId g, const std::vector<NodeId>& voters, StateMachine* sm,
                   std::function<void(Status)> done);
  Status CreateGroup(GroupId g, const std::vector<NodeId>& voters, StateMachine* sm);  // blocks
  // Starts hosting a group whose state `sm` already holds (a range split off another: its
  // keys were the other range's), as of index `at` (> 0) of the group: every replica
  // bootstrapped with `voters` (not empty) must hold the same state. A group new to the
  // log starts from a snapshot at `at` (term 1, `voters` the members), taken of `sm` and
  // written into the group's store before the log records it, so that a replica added
  // later (AddLearner) is sent that state, which the group's log does not hold; the first
  // entry is `at` + 1. `sm->AppliedIndex()` is `at`, or below it for a state machine that
  // is not durable (0: at a restart it is restored from the log's snapshot, as any
  // group's); above it is refused (kInvalidArgument). A group the log already holds
  // resumes from it, as CreateGroup (a restart; also one that crashed after the log
  // recorded the group, whatever `sm` holds then). Errors and `done` as CreateGroup's;
  // PrepareSnapshot's error, or the store's, is answered and the group not started.
  void CreateGroupFromState(GroupId g, const std::vector<NodeId>& voters, StateMachine* sm,
                            Index at, std::function<void(Status)> done);
  Status CreateGroupFromState(GroupId g, const std::vector<NodeId>& voters, StateMachine* sm,
                              Index at);  // blocks
  // Stops hosting `g` and deletes its state from the log (durably). Its pending requests
  // fail with kShutdown; its state machine is not called again once `done` runs.
  // kInvalidArgument if not hosted. `done` as CreateGroup's.
  void RemoveGroup(GroupId g, std::function<void(Status)> done);
  Status RemoveGroup(GroupId g);  // blocks

  // As Node's, for group `g` (kInvalidArgument if it is not hosted). `done` runs on the
  // apply or the io lane and must not block on this Host.
  void Propose(GroupId g, std::string data, std::chrono::milliseconds timeout, Callback done);
  std::future<Result<std::string>> Propose(GroupId g, std::string data,
                                           std::chrono::milliseconds timeout);
  void ReadBarrier(GroupId g, std::chrono::milliseconds timeout, Callback done);
  std::future<Result<std::string>> ReadBarrier(GroupId g, std::chrono::milliseconds timeout);
  // Moving a replica of group `g`, one change at a time, on the group's leader (else
  // kNotLeader); the other groups are not touched. `done` as Propose's, once the change
  // is applied here. AddLearner: the replica on process `p` (created there with no
  // voters) becomes a non-voting member and catches up from the log; PromoteLearner: a
  // learner becomes a voter (kInvalidArgument for anything else: PromoteLearner never
  // adds a new voter); RemoveReplica: a voter or learner leaves the group (its process
  // keeps hosting the group until it calls RemoveGroup). kInvalidArgument for a process
  // not in HostOptions::peers; kConfChangePending while a change is in flight.
  void AddLearner(GroupId g, NodeId p, std::chrono::milliseconds timeout, Callback done);
  void PromoteLearner(GroupId g, NodeId p, std::chrono::milliseconds timeout, Callback done);
  void RemoveReplica(GroupId g, NodeId p, std::chrono::milliseconds timeout, Callback done);

  // The processes this host talks to. SetPeer adds process `p` (a new machine joining
  // the cluster: only then may a group name it, e.g. AddLearner) or changes its address
  // (new connections dial it; an open one stays until it breaks). RemovePeer forgets it:
  // this host closes its connection to it and dials it no more, and groups may no longer
  // add it (remove it from the groups it is a member of first: what it sends still
  // arrives while it is). kInvalidArgument for p 0 or self, an empty address, or
  // (RemovePeer) a process not known; kShutdown once stopping. Any thread; the
  // transport's side takes effect on the io lane right after.
  Status SetPeer(NodeId p, const std::string& addr);
  Status RemovePeer(NodeId p);
  std::map<NodeId, std::string> Peers() const;  // without self
  // Replaces HostOptions::cluster_id, as Node::SetClusterId: for a process that learns
  // its cluster's id after Start (kvserver's joiner in ranges mode). Open connections
  // stay; new handshakes use the new id. Any thread; takes effect on the io lane.
  void SetClusterId(std::string cluster_id);

  // Asks the leader of `g` (this process) to hand leadership to `target`; `done` runs on
  // the io lane once `target` leads (ok), at the deadline (kTimeout), or at once with
  // kNotLeader / kInvalidArgument.
  void TransferLeadership(GroupId g, NodeId target, std::chrono::milliseconds timeout,
                          std::function<void(Status)> done);

  // Writes a backup of group `g` to `path`, as Node::Backup does (the state machine at
  // its applied index, streamed; the group's term and configuration there; no members:
  // a host's members are process ids): `path`.tmp, fsynced, renamed. RestoreBackup
  // reads it back. On a follower it may lag the leader (a ReadBarrier first makes it
  // hold every write acknowledged before). `done` runs once, on a lane (or here for a
  // refusal), with the file's BackupInfo or: kInvalidArgument (not hosted),
  // kUnavailable (nothing applied yet), kShutdown, the state machine's or the file
  // system's error (the .tmp removed). It must not block on this Host.
  void Backup(GroupId g, const std::string& path, std::function<void(Result<BackupInfo>)> done);

  // As of the group's last handled Ready. kInvalidArgument if not hosted.
  Result<GroupStatusInfo> GroupStatus(GroupId g) const;
  // The leader of `g` as of its last handled Ready (kNoNode: none known, or `g` is not
  // hosted). Cheap (no copy of the status): for routing each request.
  NodeId GroupLeader(GroupId g) const;
  std::vector<GroupStatusInfo> GroupStatuses() const;  // by group id
  HostMetrics GetMetrics() const;
  // Empty while the shared log works. Else why this host stopped taking part in Raft (a
  // write or sync of the log failed: writes get kIOError, reads time out): the owner
  // restarts it, and recovery decides from what is on disk.
  std::string Failure() const;
  NodeId self() const;
  // As Node::ReloadTls: new connections use the files read again (or `tls`); open ones
  // keep their session; on an error the certificates in use stay. kInvalidArgument when
  // the host started without TLS. Any thread.
  Status ReloadTls();
  Status ReloadTls(const TlsOptions& tls);

  class Impl;

 private:
  explicit Host(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace raft
