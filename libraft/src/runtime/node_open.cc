// Node::Impl::Open: recovery as a sequence of named steps (as DiskStorage::Impl::Recover).
//
//   ValidateOptions       the size limits agree with each other and with the formats
//   LoadTls               the peer TLS context, when peer_tls is set (before any file
//                         of data_dir is touched: a bad certificate fails fast)
//   OpenStorage           data_dir, the durable log, the snapshot store, the core's view
//   LoadSnapshotMeta      the log's snapshot (index 0: none)
//   RestoreIfAsked        NodeOptions::restore_from: a backup becomes the log's snapshot
//   BootstrapIfFresh      entry 1 = "add self" for a new one-member cluster
//   ForceNewClusterIfAsked  NodeOptions::force_new_cluster: remove every other member
//   RecoverStateMachine   members from the snapshot header; restore the state machine if
//                         it is behind the snapshot; check it is not ahead of the log
//   ReplayLog             membership and address book from the log's entries
//   CreateCore            the RawNode, with NodeOptions::core plus what the Node sets
//   StartTransport        listen, and dial every known member on demand
//   PublishInitialStatus  what GetStatus() shows before the first Ready
//
// Open runs before Run() starts the threads, so no ThreadChecker is bound yet and the
// steps may touch io-thread and apply-thread state alike.
#include <fmt/format.h>

#include <algorithm>

#include "base/file_system.h"
#include "core/mutation.h"
#include "raft/errno_status.h"
#include "runtime/node_impl.h"
#include "runtime/tls_context.h"
#include "storage/format.h"
#include "wire/wire_format.h"

namespace raft {

struct Node::Impl::Recovered {
  SnapshotMeta snap;     // the log's snapshot; index 0 when there is none
  Index sm_applied = 0;  // the state machine's applied index after recovery
  HardState hard_state;  // as stored, for the "node started" line
  Index last_index = 0;  // the log's last index
};

Status Node::Impl::Open() {
  io_checker_.Check();
  apply_checker_.Check();
  Recovered r;
  if (Status s = ValidateOptions(); !s.ok()) return s;
  if (Status s = LoadTls(); !s.ok()) return s;
  if (Status s = OpenStorage(); !s.ok()) return s;
  if (Status s = LoadSnapshotMeta(&r); !s.ok()) return s;
  if (Status s = RestoreIfAsked(&r); !s.ok()) return s;
  if (Status s = BootstrapIfFresh(r); !s.ok()) return s;
  if (Status s = ForceNewClusterIfAsked(&r); !s.ok()) return s;
  if (Status s = RecoverStateMachine(&r); !s.ok()) return s;
  if (Status s = ReplayLog(r); !s.ok()) return s;
  if (Status s = CreateCore(r); !s.ok()) return s;
  if (Status s = StartTransport(); !s.ok()) return s;
  PublishInitialStatus(r);
  return Status::Ok();
}

// Every entry the Node accepts (Propose refuses data over max_entry_bytes) must fit in
// one log record, and, alone in an append, in one frame under the per-peer queue cap; an
// append of max_msg_bytes (EntrySizeBytes counts at least 24 bytes per entry, at least
// one entry per append) must fit in one frame and under the wire's entry count. A limit
// that broke one of these would surface much later: a leader failing on an entry its log
// refuses (and a client's retry failing the next leader), or an append dropped and
// retried forever.
Status Node::Impl::ValidateOptions() const {
  const std::uint64_t frame_max = kFrameBytesMax;
  const std::uint64_t max_entry = opts_.max_entry_bytes;
  const std::uint64_t max_msg = opts_.core.max_msg_bytes;
  auto bad = [](const std::string& what) {
    return Status(ErrorCode::kInvalidArgument, "NodeOptions: " + what);
  };
  if (opts_.tick_ms <= 0) return bad(fmt::format("tick_ms {} must be positive", opts_.tick_ms));
  if (opts_.core.quiesce)
    return bad(
        "core.quiesce needs a failure detector outside the core (a host of many groups); "
        "raft::Node has none, so a quiesced group would never replace a dead leader");
  if (opts_.peer_reap_ms < 0)
    return bad(fmt::format("peer_reap_ms {} must be 0 (never) or positive", opts_.peer_reap_ms));
  if (max_entry > storage::kRecordPayloadBytesMax)
    return bad(fmt::format("max_entry_bytes {} is over the log's record limit of {} bytes",
                           max_entry, storage::kRecordPayloadBytesMax));
  // (Compared without overflow: max_entry is at most the record limit by now.)
  if (wire::kMessageFixedBytes + wire::kEntryFixedBytes + max_entry > frame_max)
    return bad(fmt::format(
        "max_entry_bytes {} does not fit in one frame: at most {} bytes (the frame limit, {}, "
        "less the message and entry headers)",
        max_entry, frame_max - wire::kMessageFixedBytes - wire::kEntryFixedBytes, frame_max));
  if (max_msg > frame_max - wire::kMessageFixedBytes)
    return bad(fmt::format("core.max_msg_bytes {} does not fit in one frame: at most {} bytes",
                           max_msg, frame_max - wire::kMessageFixedBytes));
  const std::uint64_t entry_bytes_min = EntrySizeBytes(Entry{});
  if (max_msg > std::uint64_t{wire::kEntriesPerMessageMax} * entry_bytes_min)
    return bad(fmt::format(
        "core.max_msg_bytes {} allows more than {} entries per message (the wire's limit): "
        "at most {} bytes",
        max_msg, wire::kEntriesPerMessageMax,
        std::uint64_t{wire::kEntriesPerMessageMax} * entry_bytes_min));
  // The largest append: one entry of max_entry_bytes, or max_msg_bytes of entries.
  const std::uint64_t append_payload_max =
      wire::kMessageFixedBytes +
      std::max<std::uint64_t>(wire::kEntryFixedBytes + max_entry, max_msg);
  if (opts_.peer_queue_bytes_max < wire::kFrameHeaderBytes + append_payload_max)
    return bad(
        fmt::format("peer_queue_bytes_max {} cannot hold the largest append ({} bytes, from "
                    "max_entry_bytes and core.max_msg_bytes)",
                    opts_.peer_queue_bytes_max, wire::kFrameHeaderBytes + append_payload_max));
  if (opts_.max_apply_queue_bytes == 0)
    return bad("max_apply_queue_bytes must be > 0 (0 would never hand out an entry)");
  if (opts_.snapshot_chunk_bytes == 0 ||
      wire::kSnapshotChunkFixedBytes + opts_.snapshot_chunk_bytes > frame_max)
    return bad(fmt::format("snapshot_chunk_bytes {} must be in [1, {}]", opts_.snapshot_chunk_bytes,
                           frame_max - wire::kSnapshotChunkFixedBytes));
  if (opts_.snapshot_window_chunks == 0)
    return bad("snapshot_window_chunks must be > 0 (0 would never send a chunk)");
  return Status::Ok();
}

Status Node::Impl::OpenStorage() {
  if (int err = env_->file_system()->MkdirAll(opts_.data_dir); err != 0) {
    return raft::ErrnoStatus("create the data directory", opts_.data_dir, err);
  }
  DiskStorageOptions dopts;
  dopts.segment_bytes_target = opts_.segment_bytes;
  dopts.file_system = env_->file_system();
  auto disk = DiskStorage::Open(opts_.data_dir + "/log", dopts);
  if (!disk.ok()) return disk.status();
  auto snaps = runtime::SnapshotStore::Open(opts_.data_dir + "/snap", env_->file_system());
  if (!snaps.ok()) return snaps.status();
  snaps_ = std::move(snaps).value();
  base::MutexLock l(&storage_mu_);
  disk_ = std::move(disk).value();
  for (const auto& note : disk_->recovery_notes())
    Log(LogLevel::kWarn, "log recovery", {{"note", note}});
  storage_view_ = std::make_unique<LockedStorage>(&storage_mu_, disk_.get());
  storage_view_->Publish();
  return Status::Ok();
}

Status Node::Impl::LoadSnapshotMeta(Recovered* r) {
  base::MutexLock l(&storage_mu_);
  auto snap = disk_->Snapshot();
  if (!snap.ok()) return snap.status();
  r->snap = *snap;
  r->hard_state = disk_->InitialHardState();
  r->last_index = disk_->LastIndex();
  return Status::Ok();
}

Status Node::Impl::RestoreIfAsked(Recovered* r) {
  if (opts_.restore_from.empty()) return Status::Ok();
  const std::string& from = opts_.restore_from;
  if (r->last_index != 0 || r->hard_state.term != 0 || r->snap.index != 0)
    return Status(ErrorCode::kInvalidArgument,
                  "restore_from: data_dir " + opts_.data_dir +
                      " already holds state; a restore seeds an empty one");
  auto in = runtime::SnapshotStore::OpenPath(from, env_->file_system());
  if (!in.ok()) return Status(in.status().code(), "restore_from: " + in.status().ToString());
  const SnapshotMeta& was = (*in)->header().meta;
  if (was.index == 0 || was.term == 0)
    return Status(ErrorCode::kCorruption, "restore_from: " + from + " names index 0 or term 0");
  // The same state under a new membership: this node alone. The body is copied as it is
  // (its CRC checked on the way: the last Read fails on a mismatch).
  runtime::SnapshotHeader header{SnapshotMeta{was.index, was.term, ConfState{{opts_.self.id}, {}}},
                                 {opts_.self}};
  auto out = snaps_->Create(header);
  if (!out.ok()) return out.status();
  std::string buf(1 << 16, '\0');
  for (;;) {
    auto n = (*in)->Read(buf.data(), buf.size());
    if (!n.ok())
      return Status(n.status().code(), "restore_from: " + from + ": " + n.status().message());
    if (*n == 0) break;
    if (Status s = (*out)->Write(std::string_view(buf.data(), *n)); !s.ok()) return s;
  }
  if (Status s = (*out)->Commit(); !s.ok()) return s;
  {
    base::MutexLock l(&storage_mu_);
    if (Status s = disk_->ApplySnapshot(header.meta); !s.ok()) return s;
    const HardState hs{header.meta.term, kNoNode, header.meta.index};
    if (Status s = disk_->SetHardState(hs); !s.ok()) return s;
    if (Status s = disk_->Sync(); !s.ok()) return s;
    storage_view_->Publish();
    r->snap = header.meta;
    r->hard_state = hs;
    r->last_index = disk_->LastIndex();
  }
  Log(LogLevel::kWarn, "restored from a backup: a NEW cluster with this node as its only member",
      {{"from", from},
       {"index", std::to_string(header.meta.index)},
       {"term", std::to_string(header.meta.term)}});
  return Status::Ok();
}

Status Node::Impl::BootstrapIfFresh(const Recovered& r) {
  const bool fresh = r.last_index == 0 && r.hard_state.term == 0 && r.snap.index == 0;
  if (!fresh || !opts_.bootstrap) return Status::Ok();
  Entry e;
  e.term = 1;
  e.index = 1;
  e.type = EntryType::kConfChange;
  e.data = EncodeConfChange(
      ConfChange{ConfChangeType::kAddVoter, opts_.self.id, EncodeMemberInfo(opts_.self)});
  {
    base::MutexLock l(&storage_mu_);
    if (Status s = disk_->Append({e}); !s.ok()) return s;
    if (Status s = disk_->SetHardState(HardState{1, kNoNode, 1}); !s.ok()) return s;
    if (Status s = disk_->Sync(); !s.ok()) return s;
    storage_view_->Publish();
  }
  Log(LogLevel::kInfo, "bootstrapped a new one-member cluster", {{"id", opts_.self.name}});
  return Status::Ok();
}

Status Node::Impl::ForceNewClusterIfAsked(Recovered* r) {
  if (!opts_.force_new_cluster) return Status::Ok();
  if (r->last_index == 0 && r->hard_state.term == 0 && r->snap.index == 0)
    return Status(ErrorCode::kInvalidArgument,
                  "force_new_cluster: data_dir holds no state to start a cluster from");
  std::vector<Entry> removals;
  {
    base::MutexLock l(&storage_mu_);
    // The membership at the log's end: the snapshot's, then every change after it
    // (changes take effect when appended).
    ConfState conf = r->snap.conf;
    for (Index lo = disk_->FirstIndex(); lo <= r->last_index;) {
      auto ents = disk_->Entries(lo, r->last_index + 1, 16 << 20);
      if (!ents.ok()) return ents.status();
      for (const auto& e : *ents) {
        ConfChange cc;
        if (e.type != EntryType::kConfChange || !DecodeConfChange(e.data, &cc)) continue;
        if (auto next = ApplyConfChange(conf, cc); next.ok()) conf = std::move(next).value();
      }
      lo += ents->size();
    }
    if (!conf.voters.count(opts_.self.id))
      return Status(ErrorCode::kInvalidArgument,
                    "force_new_cluster: this node is not a voter of its stored membership");
    const Term term = r->hard_state.term + 1;
    Index index = r->last_index;
    std::vector<NodeId> others(conf.learners.begin(), conf.learners.end());
    for (NodeId id : conf.voters)
      if (id != opts_.self.id) others.push_back(id);
    for (NodeId id : others) {
      Entry e;
      e.term = term;
      e.index = ++index;
      e.type = EntryType::kConfChange;
      e.data = EncodeConfChange(ConfChange{ConfChangeType::kRemoveNode, id, {}});
      removals.push_back(std::move(e));
    }
    if (!removals.empty()) {
      if (Status s = disk_->Append(removals); !s.ok()) return s;
      if (Status s = disk_->SetHardState(HardState{term, kNoNode, index}); !s.ok()) return s;
      if (Status s = disk_->Sync(); !s.ok()) return s;
      storage_view_->Publish();
      r->hard_state = disk_->InitialHardState();
      r->last_index = disk_->LastIndex();
    }
  }
  Log(LogLevel::kWarn,
      removals.empty() ? "force_new_cluster: already the only member; nothing to do"
                       : "force_new_cluster: every other member removed; this node now forms "
                         "a one-member cluster with its data",
      {{"removed", std::to_string(removals.size())},
       {"commit", std::to_string(r->hard_state.commit)}});
  return Status::Ok();
}

Status Node::Impl::RecoverStateMachine(Recovered* r) {
  const SnapshotMeta& snap = r->snap;
  applied_conf_ = snap.conf;
  Index sm_applied = sm_->AppliedIndex();
  if (snap.index > 0) {
    // One reader: its header names the members; its body restores a state machine that
    // is behind the snapshot.
    auto reader = snaps_->OpenReader(snap.index, snap.term);
    if (!reader.ok())
      return Status(ErrorCode::kCorruption,
                    "the log's snapshot " + std::to_string(snap.index) +
                        " has no readable file: " + reader.status().ToString());
    for (const auto& m : (*reader)->header().members) applied_members_[m.id] = m;
    if (snap.index > sm_applied) {
      if (Status s = RestoreStateMachine(reader->get(), snap); !s.ok()) return s;
      sm_applied = snap.index;
      Log(LogLevel::kInfo, "state machine restored from snapshot",
          {{"index", std::to_string(snap.index)}});
    }
  }
  for (const auto& [id, m] : applied_members_) members_[id] = m;
  Index last_index;
  {
    base::MutexLock l(&storage_mu_);
    last_index = disk_->LastIndex();
  }
  // The commit index is written without its own fsync (Ready::must_sync), so it may lag
  // what the state machine applied; the core raises it (Config::applied). Applied beyond
  // the log's end, though, means the log lost entries it had made durable.
  if (sm_applied > last_index)
    return Status(ErrorCode::kCorruption,
                  "state machine applied index " + std::to_string(sm_applied) +
                      " is beyond the log's last index " + std::to_string(last_index));
  r->sm_applied = sm_applied;
  r->last_index = last_index;
  applied_ = sm_applied;
  queued_through_ = sm_applied;
  applied_term_ = snap.term;
  last_snapshot_index_ = snap.index;
  return Status::Ok();
}

Status Node::Impl::ReplayLog(const Recovered& r) {
  for (Index lo = storage_view_->FirstIndex(); lo <= r.last_index;) {
    Result<std::vector<Entry>> ents = std::vector<Entry>();
    {
      base::MutexLock l(&storage_mu_);
      ents = disk_->Entries(lo, r.last_index + 1, 16 << 20);
    }
    if (!ents.ok()) return ents.status();
    LearnMembers(*ents);
    for (const auto& e : *ents) {
      if (e.index > r.sm_applied) break;
      TrackApplied(e);
    }
    lo += ents->size();
  }
  return Status::Ok();
}

Status Node::Impl::CreateCore(const Recovered& r) {
  {
    base::MutexLock l(&storage_mu_);
    hard_state_ = written_hard_state_ = disk_->InitialHardState();
  }
  // NodeOptions::core as given, but for the three fields the Node owns (node.h).
  Config cfg = opts_.core;
  cfg.id = opts_.self.id;
  cfg.seed = env_->Random64();
  // Read contexts of this incarnation: "<16 hex digits>-<counter>" (node_impl.h).
  const std::uint64_t nonce =
      mutation::Active(mutation::Kind::kReadContextReuse) ? 0 : env_->Random64();
  read_ctx_prefix_ = fmt::format("{:016x}-", nonce);
  cfg.applied = r.sm_applied;
  auto raw = RawNode::Create(cfg, storage_view_.get());
  if (!raw.ok()) return raw.status();
  raw_ = std::move(raw).value();
  return Status::Ok();
}

Status Node::Impl::LoadTls() {
  auto tls = runtime::PeerTls::Open(opts_.peer_tls);
  if (!tls.ok()) return tls.status();
  peer_tls_ = std::move(tls).value();
  return Status::Ok();
}

Status Node::Impl::StartTransport() {
  runtime::TransportOptions topts;
  topts.self = opts_.self.id;
  topts.self_addr = opts_.self.raft_addr;
  topts.listen_addr = opts_.listen_addr;
  topts.cluster_id = opts_.cluster_id;
  topts.cluster_secret = opts_.cluster_secret;
  topts.peer_queue_bytes_max = opts_.peer_queue_bytes_max;
  topts.snapshot_chunk_bytes = opts_.snapshot_chunk_bytes;
  topts.snapshot_window_chunks = opts_.snapshot_window_chunks;
  topts.snapshot_bytes_max = opts_.max_snapshot_bytes;
  topts.frame_bytes_max = kFrameBytesMax;
  topts.logger = opts_.logger;
  topts.tls = peer_tls_ ? peer_tls_->holder() : nullptr;
  topts.io_thread = &io_checker_;
  transport_ = env_->NewTransport(topts, this, snaps_.get());
  if (Status s = transport_->Listen(); !s.ok()) return s;
  for (const auto& [id, m] : members_) {
    transport_->SetPeerAddress(id, m.raft_addr);
    transport_->SetPeerName(id, m.name);
  }
  return Status::Ok();
}

void Node::Impl::PublishInitialStatus(const Recovered& r) {
  {
    base::MutexLock l(&status_mu_);
    core_status_ = raw_->GetStatus();
    members_view_.clear();  // members known from the snapshot header count too
    for (const auto& [id, mi] : members_) members_view_.push_back(mi);
  }
  Log(LogLevel::kInfo, "node started",
      {{"id", opts_.self.name},
       {"raft_addr", opts_.self.raft_addr},
       {"term", std::to_string(r.hard_state.term)},
       {"applied", std::to_string(r.sm_applied)},
       {"last_index", std::to_string(r.last_index)}});
}

}  // namespace raft
