// The apply thread: state machine, proposal and read completion, snapshot policy.
#include <algorithm>
#include <limits>

#include "core/mutation.h"
#include "runtime/node_impl.h"

namespace raft {

void Node::Impl::PostApply(ApplyTask task) {
  std::uint64_t bytes = 0;
  for (const Entry& e : task.entries) bytes += e.data.size();
  apply_queue_bytes_ += bytes;
  // std::function needs a copyable callable: the task travels behind a shared_ptr.
  auto shared = std::make_shared<ApplyTask>(std::move(task));
  env_->Post(runtime::Lane::kApply, [this, shared, bytes] {
    apply_checker_.Check();
    RunApplyTask(*shared);
    const std::uint64_t before = apply_queue_bytes_.fetch_sub(bytes);
    const std::uint64_t bound = opts_.max_apply_queue_bytes;
    if (before >= bound && before - bytes < bound && !stopping_) {
      // The io thread may have paused on this queue: let it hand out entries again.
      env_->Post(runtime::Lane::kIo, [this] {
        io_checker_.Check();
        Pump();
      });
    }
  });
}

void Node::Impl::RunApplyTask(ApplyTask& task) {
  if (task.restore) RestoreSnapshot(*task.restore, task.restore_reader.get());
  if (!task.entries.empty()) ApplyEntries(task.entries);
  for (auto& [index, cb] : task.reads) waiting_reads_.emplace(index, cb);
  ServeReads();
  MaybeSnapshot();
}

// Membership and term as of the applied index, for the snapshots taken at it.
void Node::Impl::TrackApplied(const Entry& e) {
  applied_term_ = e.term;
  ConfChange cc;
  if (e.type != EntryType::kConfChange || !DecodeConfChange(e.data, &cc)) return;
  auto next = ApplyConfChange(applied_conf_, cc);
  if (next.ok()) applied_conf_ = std::move(next).value();
  MemberInfo mi;
  if (cc.type == ConfChangeType::kRemoveNode) {
    applied_members_.erase(cc.node);
  } else if (DecodeMemberInfo(cc.context, &mi)) {
    applied_members_[mi.id] = mi;
  }
}

void Node::Impl::ApplyEntries(const std::vector<Entry>& all) {
  std::vector<Entry> entries;
  for (const auto& e : all)
    if (e.index > applied_.load()) entries.push_back(e);
  if (entries.empty()) return;
  std::vector<std::string> results;
  sm_->Apply(entries, &results);
  results.resize(entries.size());
  for (const auto& e : entries) {
    TrackApplied(e);
  }
  applied_ = entries.back().index;
  // Complete proposals: same index and term means it is our entry; another term at our
  // index means ours was overwritten and never committed.
  std::vector<std::pair<SharedCallback, Result<std::string>>> done;
  std::vector<std::uint64_t> latencies;
  auto now = env_->Now();
  {
    base::MutexLock l(&pending_mu_);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      auto it = proposals_.find(entries[i].index);
      if (it == proposals_.end()) continue;
      if (it->second.term == entries[i].term ||
          mutation::Active(mutation::Kind::kProposalByIndexOnly)) {
        done.emplace_back(it->second.cb, std::move(results[i]));
        latencies.push_back(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now - it->second.start).count()));
      } else {
        done.emplace_back(
            it->second.cb,
            Status(ErrorCode::kProposalDropped,
                   "leadership changed before the proposal committed; it was not applied"));
      }
      proposals_.erase(it);
    }
  }
  {
    base::MutexLock l(&status_mu_);
    for (auto us : latencies) {
      std::size_t b = 0;
      while (b < NodeMetrics::kBuckets && us > NodeMetrics::kLatencyBucketsUs[b]) ++b;
      ++metrics_.commit_latency[b];
      metrics_.commit_latency_sum_us += us;
    }
    metrics_.proposals_committed += latencies.size();
    metrics_.proposals_failed += done.size() - latencies.size();
  }
  for (auto& [cb, r] : done) cb->Run(std::move(r));
}

void Node::Impl::RestoreSnapshot(const SnapshotMeta& meta, runtime::SnapshotFileReader* open) {
  auto start = env_->Now();
  Result<std::unique_ptr<runtime::SnapshotFileReader>> reader =
      std::unique_ptr<runtime::SnapshotFileReader>();
  if (open == nullptr || mutation::Active(mutation::Kind::kRestoreByName)) {
    reader = snaps_->OpenReader(meta.index, meta.term);
    if (reader.ok()) open = reader->get();
  }
  Status s = !reader.ok()                                     ? reader.status()
             : mutation::Active(mutation::Kind::kSkipRestore) ? Status::Ok()
                                                              : RestoreStateMachine(open, meta);
  if (!s.ok()) {
    // The state machine is in an unknown state: nothing may be applied on top of it.
    Log(LogLevel::kError, "snapshot restore failed; aborting", {{"error", s.ToString()}});
    std::abort();
  }
  applied_ = meta.index;
  applied_term_ = meta.term;
  applied_conf_ = meta.conf;
  applied_members_.clear();
  for (const auto& m : open->header().members) applied_members_[m.id] = m;
  last_snapshot_index_ = meta.index;
  // A received .snap file is a second copy of the state: a linked snapshot taken at once
  // replaces it. A received linked snapshot costs no copy; it stays.
  snapshot_after_install_ = !open->linked();
  std::vector<SharedCallback> lost;
  {
    base::MutexLock l(&pending_mu_);
    for (auto it = proposals_.begin(); it != proposals_.end() && it->first <= meta.index;) {
      lost.push_back(it->second.cb);
      it = proposals_.erase(it);
    }
  }
  for (auto& cb : lost)
    cb->Run(Status(ErrorCode::kTimeout, "state replaced by a snapshot; the outcome is unknown"));
  {
    base::MutexLock l(&status_mu_);
    ++metrics_.snapshots_installed;
    metrics_.last_snapshot_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(env_->Now() - start).count());
  }
  Log(LogLevel::kInfo, "snapshot installed", {{"index", std::to_string(meta.index)}});
}

Status Node::Impl::RestoreStateMachine(runtime::SnapshotFileReader* reader,
                                       const SnapshotMeta& meta) {
  if (auto files = reader->Files())
    if (std::optional<Status> s = sm_->RestoreFiles(*files, meta)) return *s;
  return sm_->Restore(reader, meta);
}

void Node::Impl::ServeReads() {
  Index applied = applied_.load();
  while (!waiting_reads_.empty() && (waiting_reads_.begin()->first <= applied ||
                                     mutation::Active(mutation::Kind::kServeReadEarly))) {
    waiting_reads_.begin()->second->Run(std::to_string(waiting_reads_.begin()->first));
    waiting_reads_.erase(waiting_reads_.begin());
  }
}

Index Node::Impl::CatchUpNeed() {
  base::MutexLock l(&status_mu_);
  Index need = std::numeric_limits<Index>::max();
  if (core_status_.role != Role::kLeader) return need;
  // Every follower, not only the recently active ones: one being sent a snapshot may
  // miss a heartbeat round, and the byte budget bounds what a follower down for good costs.
  for (const PeerStatus& p : core_status_.peers)
    if (p.id != core_status_.id) need = std::min(need, p.match);
  return need;
}

void Node::Impl::MaybeSnapshot() {
  Index applied = applied_.load();
  if (snapshot_running_ ||
      (!snapshot_after_install_ && applied < last_snapshot_index_ + opts_.snapshot_entries))
    return;
  // Right after an install, nothing applied since: only worth it as a linked copy of the
  // installed snapshot (see SnapshotJob).
  const bool copy_of_installed = snapshot_after_install_ && applied == last_snapshot_index_;
  snapshot_after_install_ = false;
  const auto prepare_start = env_->Now();
  auto src = sm_->PrepareSnapshot();
  const auto prepare_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(env_->Now() - prepare_start).count());
  {
    base::MutexLock l(&status_mu_);
    metrics_.last_snapshot_prepare_us = prepare_us;
    metrics_.max_snapshot_prepare_us = std::max(metrics_.max_snapshot_prepare_us, prepare_us);
  }
  if (!src.ok()) {
    Log(LogLevel::kError, "cannot prepare snapshot", {{"error", src.status().ToString()}});
    return;
  }
  SnapshotMeta meta{applied, applied_term_, applied_conf_};
  std::vector<MemberInfo> members;
  for (const auto& [id, m] : applied_members_) members.push_back(m);
  snapshot_running_ = true;
  last_snapshot_index_ = applied;
  auto job = std::make_shared<std::unique_ptr<SnapshotSource>>(std::move(src).value());
  env_->Post(runtime::Lane::kSnapshot, [this, meta, members = std::move(members), job,
                                        copy_of_installed, prepare_us]() mutable {
    snap_checker_.Check();
    SnapshotJob(meta, std::move(members), std::move(*job), copy_of_installed, prepare_us);
  });
}

// Snapshot thread: write the file, then let the disk thread record it and compact.
void Node::Impl::SnapshotJob(SnapshotMeta meta, std::vector<MemberInfo> members,
                             std::unique_ptr<SnapshotSource> src, bool copy_of_installed,
                             std::uint64_t prepare_us) {
  auto start = env_->Now();
  runtime::SnapshotHeader header{meta, std::move(members)};
  Status s;
  if (std::optional<SnapshotFiles> files = src->ReleaseFiles()) {
    // The source's files become the snapshot: no copy of the state (docs/runtime.md,
    // "Linked snapshots").
    s = snaps_->CreateLinked(header, std::move(*files));
  } else if (copy_of_installed) {
    // The received file already holds these bytes: writing them again gains nothing.
    snapshot_running_ = false;
    return;
  } else {
    auto writer = snaps_->Create(header);
    s = writer.ok() ? src->WriteTo(writer->get()) : writer.status();
    if (s.ok()) s = (*writer)->Commit();
  }
  src.reset();
  if (!s.ok()) {
    Log(LogLevel::kError, "snapshot failed",
        {{"index", std::to_string(meta.index)}, {"error", s.ToString()}});
    snapshot_running_ = false;
    return;
  }
  auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(env_->Now() - start).count());
  env_->Post(runtime::Lane::kDisk, [this, meta, ms, prepare_us] {
    disk_checker_.Check();
    Status st;
    const Index keep = opts_.snapshot_trailing_entries;
    Index compact_to = meta.index > keep ? meta.index - keep : 0;
    const Index need = CatchUpNeed();
    SnapshotMeta log_snap = meta;  // the log's snapshot once this is recorded
    {
      base::MutexLock l(&storage_mu_);
      // The log may hold this snapshot already (a linked copy taken right after an
      // install), or a newer one (an install overtook it): then only the files change,
      // and Cleanup below sorts them out.
      auto current = disk_->Snapshot();
      const bool recorded = current.ok() && current->index >= meta.index;
      auto r = recorded ? std::move(current) : disk_->CreateSnapshot(meta.index, meta.conf);
      st = r.status();
      if (st.ok()) log_snap = *r;
      if (need < compact_to && opts_.catchup_log_bytes > 0) {
        // Keep what a follower catching up needs, within the byte budget.
        const Index budget_first = disk_->FirstIndexWithin(opts_.catchup_log_bytes);
        compact_to = std::min(compact_to, std::max(need, budget_first - 1));
      }
      if (st.ok() && compact_to + 1 > disk_->FirstIndex()) st = disk_->Compact(compact_to);
      storage_view_->Publish();
    }
    if (!st.ok()) {
      Log(LogLevel::kError, "recording snapshot failed", {{"error", st.ToString()}});
    } else {
      // `log_snap` is the log's snapshot: only this thread changes it (CreateSnapshot
      // here, ApplySnapshot in PersistReady).
      snaps_->Cleanup(log_snap.index, log_snap.term);
      Log(LogLevel::kInfo, "snapshot taken",
          {{"index", std::to_string(meta.index)},
           {"ms", std::to_string(ms)},
           {"prepare_ms", std::to_string(prepare_us / 1000)}});
      base::MutexLock l(&status_mu_);
      ++metrics_.snapshots_taken;
      metrics_.last_snapshot_ms = ms;
    }
    snapshot_running_ = false;
  });
}

}  // namespace raft
