// raft::Node: the runtime that turns the pure core into a running replica. It owns
// the threads, the TCP transport, the durable log and snapshot files, and feeds the
// application's StateMachine.
//
// Threads: one I/O thread (network, ticks, the core), one disk thread (log writes,
// one fdatasync per batch), one apply thread (StateMachine), one snapshot thread.
// All public methods are thread-safe and never block on the network or the disk
// except where they say so.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "raft/config.h"
#include "raft/export.h"
#include "raft/logger.h"
#include "raft/raw_node.h"
#include "raft/state_machine.h"
#include "raft/status.h"
#include "raft/tls_options.h"
#include "raft/types.h"

namespace raft {

namespace runtime {
class Env;  // src/runtime/env.h (internal)
}  // namespace runtime

// A member as the cluster knows it. Carried in the ConfChange entry that added it, so
// every replica learns it from the log (and from snapshots).
struct MemberInfo {
  NodeId id = kNoNode;
  std::string name;       // human name, e.g. "node0"; NodeIdFromName(name) == id
  std::string raft_addr;  // host:port of its Raft listener
  std::string app_data;   // opaque to libraft (kvserver: the HTTP address)
  bool operator==(const MemberInfo&) const = default;
};

// The stable 64-bit id of a node name (FNV-1a; never 0).
RAFT_EXPORT NodeId NodeIdFromName(const std::string& name);
RAFT_EXPORT std::string EncodeMemberInfo(const MemberInfo& m);
RAFT_EXPORT bool DecodeMemberInfo(std::string_view data, MemberInfo* out);

struct NodeOptions {
  MemberInfo self;          // id, name, raft_addr (advertised), app_data
  std::string listen_addr;  // host:port to bind; defaults to self.raft_addr
  std::string data_dir;     // log, hard state and snapshots live here
  std::string cluster_id = "raft";
  std::string cluster_secret;  // when set, peers must prove they know it
  // TLS on the Raft port, both directions (off when !peer_tls.enabled()). Every member of
  // a cluster must agree: a TLS node and a plain one cannot talk.
  TlsOptions peer_tls;
  // Start a new one-member cluster when data_dir holds no state. Otherwise the node
  // waits to be added by an existing cluster (or resumes from its stored state).
  bool bootstrap = false;
  // Disaster recovery when a majority is lost for good (etcd's --force-new-cluster):
  // on a data_dir that holds state, the node appends one entry per other member
  // removing it (term + 1), marks its whole log committed and starts as the only voter of
  // its cluster, with all its data; others then join it again. Entries the old cluster
  // had not committed become committed. A no-op once the node is alone; Start fails
  // (kInvalidArgument) on an empty data_dir or when this node is not a voter of its
  // stored membership. Set it for one start only (docs/operations.md has the runbook).
  bool force_new_cluster = false;
  // Seeds a new one-member cluster from a backup (Node::Backup's file) on an empty
  // data_dir: the log starts with the backup as its snapshot (its index and term), with
  // this node as the only voter and member, and the state machine restores from it;
  // others then join as usual. The file is checked end to end first (kCorruption naming
  // it). Start fails with kInvalidArgument when data_dir already holds state; `bootstrap`
  // is then not needed. Set it for the first start only (later starts resume the log).
  std::string restore_from;

  // The consensus core's settings (raft/config.h): election_ticks, heartbeat_ticks,
  // pre_vote, check_quorum, read_only and the message, in-flight, uncommitted and
  // per-Ready byte limits are passed through as given (Node::Start fails with
  // Config::Validate's error). The Node sets three fields itself and ignores what is
  // given for them: `id` (self.id), `seed` (random at every start) and `applied` (the
  // state machine's applied index after recovery).
  Config core;

  int tick_ms = 100;  // the length of one of core's ticks
  // The connection to a peer id outside the membership (a removed member, an id a dialer
  // claimed in its handshake) is closed and its address forgotten once the id has sent
  // nothing the core accepted for this long (security review F-11), so the peers the
  // transport keeps are the members plus those heard from lately. Checked about once a
  // second; 0: never.
  int peer_reap_ms = 30000;
  // Largest proposal accepted (kInvalidArgument above; a membership change counts its
  // encoded entry). Start checks that an entry this large fits in one log record and one
  // frame, that an append of core.max_msg_bytes fits in one frame and the wire's entry
  // count, and that peer_queue_bytes_max holds the largest append (kInvalidArgument
  // naming the option otherwise; docs/runtime.md lists the bounds).
  std::uint64_t max_entry_bytes = 16ull << 20;
  std::size_t max_pending_requests = 100000;         // proposals + reads queued; beyond: kBusy
  std::uint64_t peer_queue_bytes_max = 64ull << 20;  // per-peer send queue bound
  // Committed entries queued for the state machine (bytes of entry data): at this bound
  // the io thread stops handing out committed entries (RawNode::PauseCommitted) until
  // the apply thread drains below it; a leader then refuses proposals once
  // core.max_uncommitted_bytes are waiting, so a slow state machine pushes back on
  // clients instead of filling memory (security review F-12). One batch
  // (core.max_committed_bytes_per_ready) may pass the bound. Must be > 0.
  std::uint64_t max_apply_queue_bytes = 64ull << 20;

  // Compaction: snapshot every snapshot_entries applied entries, keeping
  // snapshot_trailing_entries of log behind it for slow followers.
  std::uint64_t snapshot_entries = 10000;
  std::uint64_t snapshot_trailing_entries = 1000;
  // On the leader, a compaction also keeps the log that a follower still catching up
  // needs (from the lowest match index: a follower being sent a snapshot, one that has
  // just installed one, or one briefly down), up to this many bytes of log in all: a node
  // that joins under load is caught up by one snapshot instead of one after another
  // (issue 16). 0: only snapshot_trailing_entries.
  std::uint64_t catchup_log_bytes = 64ull << 20;
  std::uint32_t snapshot_chunk_bytes = 256 * 1024;
  // Chunks of a snapshot stream sent and not yet acknowledged, at most. The io thread
  // reads and frames a whole window at a stream's start: 16 gained nothing measurable on
  // a 2 GiB stream here and, under ASan, stalled heartbeats long enough for a leader
  // change (docs/performance.md, finding 16).
  std::uint32_t snapshot_window_chunks = 4;
  // A snapshot stream from the leader longer than this is aborted and its partial file
  // removed, so a peer cannot fill the disk with one (security review F-1 d); 0: no
  // limit. Streams from any peer but the leader this node follows are refused.
  std::uint64_t max_snapshot_bytes = 64ull << 30;

  std::uint64_t segment_bytes = 64ull << 20;
  Logger* logger = nullptr;  // borrowed; must outlive the Node; nullptr = silent
};

// A backup file (Node::Backup): the state machine at one applied index, with that index,
// its term, the membership and checksums, in the snapshot file format
// (docs/storage-format.md, "Snapshot files").
struct BackupInfo {
  SnapshotMeta meta;                // index, term and configuration of the copied state
  std::vector<MemberInfo> members;  // the address book at that index
  std::uint64_t bytes = 0;          // the file's size
};

// Reads a backup file whole and checks every checksum and length (bounded memory):
// kCorruption or kIOError naming the file when it is not a complete, intact backup.
RAFT_EXPORT Result<BackupInfo> VerifyBackupFile(const std::string& path);
// Restores `sm` from the backup at `path` (Node::Backup's or Host::Backup's file),
// checked end to end first, and returns what the backup holds (the state's index, term
// and configuration). For a group of a Host: then CreateGroupFromState(g, voters, sm,
// meta.index) starts it from that state (a Node does both itself with
// NodeOptions::restore_from). Errors: VerifyBackupFile's, or the state machine's (whose
// state is then as its Restore leaves it after a failure). The caller's thread; blocks.
RAFT_EXPORT Result<SnapshotMeta> RestoreBackup(const std::string& path, StateMachine* sm);

struct MemberStatus {
  MemberInfo info;
  bool voter = false;
  Index match = 0;  // leader only
  Index next = 0;
  ProgressState state = ProgressState::kProbe;
  bool recent_active = false;
};

struct NodeStatusInfo {
  NodeId id = kNoNode;
  std::string name;
  Role role = Role::kFollower;
  Term term = 0;
  NodeId leader = kNoNode;
  Index commit = 0;
  Index applied = 0;
  Index last_index = 0;
  Index snapshot_index = 0;
  std::vector<MemberStatus> members;
  std::string failure;  // non-empty when the node stopped accepting writes (disk error)
};

// Counters for metrics, read with Node::GetMetrics().
struct RAFT_EXPORT NodeMetrics {
  std::uint64_t leader_changes = 0;
  std::uint64_t proposals_committed = 0;
  std::uint64_t proposals_failed = 0;
  std::uint64_t bytes_appended = 0;
  std::uint64_t fsyncs = 0;
  std::uint64_t snapshots_taken = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t snapshots_sent = 0;
  // Peer messages the core refused (RawNode::Step: malformed, or impossible from an honest
  // peer; docs/core.md, "Message validation").
  std::uint64_t messages_refused = 0;
  // Connections peers dialed to us that the transport closed, after their handshake,
  // because of bad input (a refused message, a malformed frame, a forged sender).
  std::uint64_t peer_conns_closed = 0;
  // Connections to peer ids outside the membership closed after NodeOptions::peer_reap_ms
  // of silence.
  std::uint64_t peers_reaped = 0;
  // Bytes of committed entries queued for the state machine now (a gauge), and how many
  // times the queue reached NodeOptions::max_apply_queue_bytes (a counter).
  std::uint64_t apply_queue_bytes = 0;
  std::uint64_t apply_pauses = 0;
  // Latency histograms: counts per bucket; bucket i covers <= kLatencyBucketsUs[i].
  static constexpr std::size_t kBuckets = 16;
  static const std::uint64_t kLatencyBucketsUs[kBuckets];
  std::uint64_t commit_latency[kBuckets + 1] = {};
  std::uint64_t commit_latency_sum_us = 0;
  std::uint64_t fsync_latency[kBuckets + 1] = {};
  std::uint64_t fsync_latency_sum_us = 0;
  std::uint64_t last_snapshot_ms = 0;
  // The apply thread's time in StateMachine::PrepareSnapshot (what a snapshot costs the
  // applies behind it): the last one, and the most since the node started.
  std::uint64_t last_snapshot_prepare_us = 0;
  std::uint64_t max_snapshot_prepare_us = 0;
};

class RAFT_EXPORT Node {
 public:
  using Callback = std::function<void(Result<std::string>)>;

  // Opens (or creates) data_dir, recovers the log and the state machine, binds the
  // listener and starts the threads. `sm` is borrowed and must outlive the Node.
  static Result<std::unique_ptr<Node>> Start(const NodeOptions& options, StateMachine* sm);
  // Internal, not exported: Start on the given runtime::Env (src/runtime/env.h) instead
  // of threads, sockets and files. The full-node simulator (tests/nodesim) runs nodes so.
  RAFT_NO_EXPORT static Result<std::unique_ptr<Node>> StartWithEnv(
      const NodeOptions& options, StateMachine* sm, std::unique_ptr<runtime::Env> env);
  ~Node();  // Stop() if still running
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Graceful stop: refuses new requests, fails pending ones with kShutdown, stops the
  // threads and closes files. Idempotent; blocks until done.
  void Stop();

  // Replicates `data`; `done` runs (on the apply thread, or the io thread for errors: it
  // must not block on this Node, e.g. wait on another of its futures) with the state machine's
  // result once the entry is applied here, or with an error: kNotLeader (message names the leader),
  // kTimeout (outcome unknown), kShutdown, kBusy, kProposalDropped, kIOError (the node stopped
  // accepting writes), kInvalidArgument (over max_entry_bytes).
  void Propose(std::string data, std::chrono::milliseconds timeout, Callback done);
  std::future<Result<std::string>> Propose(std::string data, std::chrono::milliseconds timeout);

  // Linearizable read barrier: completes once this node's state machine has applied
  // everything committed before the call (ReadIndex; on a follower via the leader).
  // The result's value is the read index as decimal text. While no leader is known the
  // request waits (it is re-sent every few ticks); kTimeout at the deadline (also on a
  // node whose storage failed, which no longer takes part in Raft: check
  // storage_failed() first to answer at once). `done` runs on the io or the apply thread
  // and must not block (as for Propose).
  void ReadBarrier(std::chrono::milliseconds timeout, Callback done);
  std::future<Result<std::string>> ReadBarrier(std::chrono::milliseconds timeout);

  // Membership (leader only; one change at a time). Complete when the change is applied.
  // PromoteLearner turns a learner into a voter and nothing else: kInvalidArgument when
  // the id is not a learner (already a voter, or never added with AddLearner).
  // The callback forms run `done` as Propose does (apply or io thread, or inline in the
  // caller for an immediate refusal); it must not block.
  void AddLearner(const MemberInfo& member, std::chrono::milliseconds timeout, Callback done);
  void PromoteLearner(NodeId id, std::chrono::milliseconds timeout, Callback done);
  void RemoveMember(NodeId id, std::chrono::milliseconds timeout, Callback done);
  std::future<Result<std::string>> AddLearner(const MemberInfo& member,
                                              std::chrono::milliseconds timeout);
  std::future<Result<std::string>> PromoteLearner(NodeId id, std::chrono::milliseconds timeout);
  std::future<Result<std::string>> RemoveMember(NodeId id, std::chrono::milliseconds timeout);
  // Starts a leadership transfer; completes when `target` leads or the attempt fails.
  // `done` runs on the io thread (or inline for an immediate refusal) and must not block.
  void TransferLeadership(NodeId target, std::chrono::milliseconds timeout,
                          std::function<void(Status)> done);
  std::future<Status> TransferLeadership(NodeId target, std::chrono::milliseconds timeout);

  NodeStatusInfo GetStatus() const;
  // Cheap views of GetStatus() for per-request checks (no member list is built).
  Role role() const;
  NodeId leader() const;
  // Whether the storage failed (NodeStatusInfo::failure is set): the node accepts no
  // writes and serves no linearizable reads until it is restarted. One atomic load.
  bool storage_failed() const;
  NodeMetrics GetMetrics() const;
  // The address book: every member known from the log and snapshots.
  std::vector<MemberInfo> Members() const;
  NodeId id() const;

  // Rotation: reads peer_tls's files again (or takes `tls`, which replaces them) and uses
  // the new certificate, key and CA for every connection opened from now on; connections
  // already open keep the session they negotiated. On an error (kInvalidArgument naming
  // the file and OpenSSL's reason: missing, unreadable, not PEM, key and certificate do
  // not match) nothing changes and the previous certificates stay in use.
  // kInvalidArgument when the node was started without TLS (it cannot be turned on
  // later). Any thread; reads the files on the caller's thread.
  Status ReloadTls();
  Status ReloadTls(const TlsOptions& tls);

  // Replaces NodeOptions::cluster_id, for a node that learns its cluster's id after
  // Start (kvserver's joiner asks the cluster before asking to be added). Connections
  // already open stay; new handshakes, both ways, use the new id (a node that does not
  // know its cluster yet can start with an id no cluster uses). Any thread; takes effect
  // on the io thread shortly after the call.
  void SetClusterId(std::string cluster_id);

  // Writes a backup to `path`: a consistent copy of the state machine at this node's
  // applied index (StateMachine::PrepareSnapshot, streamed: bounded memory), with that
  // index, its term, the membership and checksums, as `path`.tmp, fsynced, renamed into
  // place. The log and its snapshots are untouched; on a follower the copy may lag the
  // leader (a ReadBarrier first makes it include every write acknowledged before).
  // Completes with the file's BackupInfo, or: kUnavailable (nothing applied yet),
  // kShutdown, the state machine's or the file system's error (the .tmp removed). Any
  // thread; the work runs on the apply and snapshot threads.
  std::future<Result<BackupInfo>> Backup(const std::string& path);
  // The same; `done` runs exactly once, on a libraft thread (never inside this call
  // unless the node is stopped): it must not block.
  void Backup(const std::string& path, std::function<void(Result<BackupInfo>)> done);

 private:
  class RAFT_NO_EXPORT Impl;  // src/runtime/node_impl.h
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace raft
