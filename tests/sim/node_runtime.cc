// The simulated node runtime: the durability contract of raw_node.h, message delivery
// and applying committed entries to the KV state machine.
#include <fmt/format.h>

#include "clients.h"
#include "cluster.h"

namespace raft::sim {
namespace {

std::string DescribeReady(const Ready& rd) {
  std::string s;
  if (rd.soft_state) {
    s += fmt::format(" soft={{{} lead=n{}}}", RoleName(rd.soft_state->role), rd.soft_state->leader);
  }
  if (rd.hard_state) s += " hard=" + DescribeHardState(*rd.hard_state);
  if (rd.snapshot) s += fmt::format(" snap={}/{}", rd.snapshot->index, rd.snapshot->term);
  if (!rd.entries.empty()) {
    s += fmt::format(" ents=[{}..{}]@t{}", rd.entries.front().index, rd.entries.back().index,
                     rd.entries.back().term);
  }
  if (!rd.committed_entries.empty()) {
    s += fmt::format(" apply=[{}..{}]", rd.committed_entries.front().index,
                     rd.committed_entries.back().index);
  }
  if (!rd.read_states.empty()) s += fmt::format(" reads={}", rd.read_states.size());
  if (rd.removed) s += " REMOVED";
  return s;
}

}  // namespace

void Cluster::ProcessReady(SimNode& n) {
  if (!n.running()) return;
  if (n.pending) {
    FlushEarlyMessages(n);
    return;
  }
  while (n.running() && !n.pending && n.raw->HasReady()) {
    Term term_now = n.raw->term();
    Ready rd = n.raw->GetReady();
    if (rd.Empty()) {
      throw SimFailure(
          fmt::format("tick {}: n{} HasReady() was true but GetReady() returned an "
                      "empty Ready (a runtime loop would spin forever)",
                      now_, n.id));
    }
    if (trace_->on()) Log(fmt::format("n{} ready{}", n.id, DescribeReady(rd)));
    if (rd.soft_state && rd.soft_state->role == Role::kLeader) checker_.OnLeaderReady(n, rd);
    checker_.OnWriteIntent(n, rd, term_now);
    // Step 1: messages that may leave at once.
    for (const Message& m : rd.messages) SendFromNode(n, m);
    // Step 2: hand the write to the disk; durable at sync_tick.
    PendingWrite w;
    if (rd.snapshot) {
      auto it = n.received_snapshots.find(rd.snapshot->index);
      if (it == n.received_snapshots.end()) {
        throw SimFailure(
            fmt::format("tick {}: n{} must install snapshot {} whose bytes it never "
                        "received",
                        now_, n.id, rd.snapshot->index));
      }
      w.snapshot_data = it->second;
    }
    // A commit-only hard state needs no fsync (raw_node.h); like the runtime, the
    // simulated disk completes it at once, and (more pessimistic than the runtime, which
    // writes it with the next fsync) never makes it durable: a crash always loses it.
    bool io = rd.must_sync;
    int delay =
        io ? static_cast<int>(rng_.Range(n.disk_delay_min_ticks, n.disk_delay_max_ticks)) : 0;
    w.sync_tick = now_ + delay;
    w.rd = std::move(rd);
    n.pending = std::move(w);
    if (options_.apply_durable_early && !n.pending->rd.snapshot) {
      // The runtime's ApplyDurableCommitted: entries below this Ready's own are durable.
      const Ready& prd = n.pending->rd;
      const Index stable_through = prd.entries.empty() ? UINT64_MAX : prd.entries.front().index - 1;
      for (const Entry& e : prd.committed_entries) {
        if (e.index > stable_through) break;
        ApplyDurableEntry(n, e, "early");
        n.pending->applied_early_through = e.index;
      }
    }
    if (delay == 0) {
      CompleteWrite(n);
    } else {
      Log(fmt::format("n{} disk write in flight until tick {}", n.id, now_ + delay));
    }
  }
}

void Cluster::FlushEarlyMessages(SimNode& n) {
  if (!n.running() || !n.pending) return;
  if (options_.use_take_messages) {
    for (const Message& m : n.raw->TakeMessages()) SendFromNode(n, m);
  }
  TakeCommitted(n);
}

void Cluster::TakeCommitted(SimNode& n) {
  if (!options_.apply_durable_early) return;
  std::vector<Entry> ents = n.raw->TakeCommitted();
  if (ents.empty()) return;
  if (n.pending) {
    const Ready& prd = n.pending->rd;
    if (!prd.committed_entries.empty() &&
        prd.committed_entries.back().index > n.pending->applied_early_through) {
      throw SimFailure(fmt::format(
          "tick {}: n{} TakeCommitted handed out [{}..{}] while the outstanding Ready's "
          "committed entry {} (not durable yet) is unapplied",
          now_, n.id, ents.front().index, ents.back().index, prd.committed_entries.back().index));
    }
  }
  if (trace_->on()) {
    Log(fmt::format("n{} took committed [{}..{}]", n.id, ents.front().index, ents.back().index));
  }
  for (const Entry& e : ents) ApplyDurableEntry(n, e, "TakeCommitted");
  if (clients_ != nullptr) clients_->ServeReads(n);
}

void Cluster::ApplyDurableEntry(SimNode& n, const Entry& e, const char* via) {
  auto t = n.storage->TermAt(e.index);
  if (!t.ok() || *t != e.term) {
    throw SimFailure(
        fmt::format("tick {}: n{} applies entry {}/{} ({}) that its disk does not "
                    "hold",
                    now_, n.id, e.index, e.term, via));
  }
  ApplyEntry(n, e, n.raw->GetStatus().hard_state.commit);
}

void Cluster::CompleteWrite(SimNode& n) {
  PendingWrite w = std::move(*n.pending);
  n.pending.reset();
  const Ready& rd = w.rd;
  MemoryStorage& s = *n.storage;
  if (rd.snapshot) {
    Status st = s.ApplySnapshot(*rd.snapshot);
    if (!st.ok()) {
      throw SimFailure(fmt::format("tick {}: n{} cannot persist snapshot {}: {}", now_, n.id,
                                   rd.snapshot->index, st.ToString()));
    }
    n.snapshot_data = w.snapshot_data;
  }
  if (!rd.entries.empty()) {
    Status st = s.Append(rd.entries);
    if (!st.ok()) {
      throw SimFailure(
          fmt::format("tick {}: n{} cannot persist entries [{}..{}] over log "
                      "[{}..{}]: {}",
                      now_, n.id, rd.entries.front().index, rd.entries.back().index, s.FirstIndex(),
                      s.LastIndex(), st.ToString()));
    }
  }
  if (rd.hard_state && rd.must_sync) s.SetHardState(*rd.hard_state);
  if (rd.hard_state) n.reported_commit = rd.hard_state->commit;
  checker_.OnDurableWrite(n, rd.entries);
  if (rd.snapshot) RestoreSnapshot(n, *rd.snapshot, w.snapshot_data);
  // Step 3: messages that assert durable state.
  for (const Message& m : rd.messages_after_persist) SendFromNode(n, m);
  // Step 4: apply, serve reads.
  for (const Entry& e : rd.committed_entries)
    if (e.index > w.applied_early_through) ApplyEntry(n, e);
  n.read_states.insert(n.read_states.end(), rd.read_states.begin(), rd.read_states.end());
  if (clients_ != nullptr) {
    for (const ReadState& r : rd.read_states) clients_->OnReadState(n, r);
  }
  // Step 5.
  n.raw->Advance(rd);
  if (clients_ != nullptr) clients_->ServeReads(n);
  if (rd.removed) {
    Log(fmt::format("n{} learned it was removed: shutting down for good", n.id));
    n.raw.reset();
    n.retired = true;
    last_role_.erase(n.id);
    if (clients_ != nullptr) clients_->OnCrash(n.id);
  }
}

void Cluster::TornWrite(SimNode& n) {
  const PendingWrite& w = *n.pending;
  if (w.rd.snapshot) {
    if (!rng_.Chance(0.5)) return;
    Status st = n.storage->ApplySnapshot(*w.rd.snapshot);
    if (!st.ok()) {
      throw SimFailure(fmt::format("tick {}: n{} torn write: cannot persist snapshot {}: {}", now_,
                                   n.id, w.rd.snapshot->index, st.ToString()));
    }
    n.snapshot_data = w.snapshot_data;
  }
  std::size_t keep = rng_.Uniform(w.rd.entries.size() + 1);
  std::vector<Entry> prefix(w.rd.entries.begin(),
                            w.rd.entries.begin() + static_cast<std::ptrdiff_t>(keep));
  if (!prefix.empty()) {
    Status st = n.storage->Append(prefix);
    if (!st.ok()) {
      throw SimFailure(fmt::format("tick {}: n{} torn write: cannot persist {} entries: {}", now_,
                                   n.id, prefix.size(), st.ToString()));
    }
  }
  Log(fmt::format("n{} torn write: {} of {} entries reached the disk{}", n.id, keep,
                  w.rd.entries.size(), w.rd.snapshot ? " after the snapshot" : ""));
  checker_.OnDurableWrite(n, prefix);
}

void Cluster::RestoreSnapshot(SimNode& n, const SnapshotMeta& meta, const std::string& data) {
  if (meta.index <= n.applied) {
    throw SimFailure(fmt::format("tick {}: n{} asked to install snapshot {} at applied index {}",
                                 now_, n.id, meta.index, n.applied));
  }
  if (!n.kv.Deserialize(data)) {
    throw SimFailure(fmt::format("harness: n{} got unreadable snapshot bytes", n.id));
  }
  n.applied = meta.index;
  n.applied_conf = meta.conf;
  n.received_snapshots.erase(n.received_snapshots.begin(),
                             n.received_snapshots.upper_bound(meta.index));
  checker_.OnState(n.id, meta.index, n.kv.Digest());
  Log(fmt::format("n{} installed snapshot {}/{} {}", n.id, meta.index, meta.term,
                  DescribeConf(meta.conf)));
}

void Cluster::SendFromNode(SimNode& n, const Message& m) {
  checker_.OnSend(n, m);
  std::string data;
  if (m.type == MessageType::kSnapshot) {
    auto snap = n.storage->Snapshot();
    if (snap->index != m.snapshot.index) {
      throw SimFailure(fmt::format("tick {}: n{} offers snapshot {} but stores snapshot {}", now_,
                                   n.id, m.snapshot.index, snap->index));
    }
    data = n.snapshot_data;
  }
  bool queued = net_.Send(m, std::move(data), now_, rng_);
  if (trace_->on()) Log((queued ? "  send " : "  LOST ") + DescribeMessage(m));
  if (!queued && m.type == MessageType::kSnapshot) n.raw->ReportSnapshot(m.to, false);
  if (!queued && m.type == MessageType::kAppend && !net_.Connected(m.from, m.to)) {
    n.raw->ReportUnreachable(m.to);
  }
}

void Cluster::Deliver(Envelope e) {
  const Message& m = e.msg;
  auto to_it = nodes_.find(m.to);
  auto from_it = nodes_.find(m.from);
  SimNode* to = to_it == nodes_.end() ? nullptr : &to_it->second;
  SimNode* from = from_it == nodes_.end() ? nullptr : &from_it->second;
  if (to != nullptr && to->running() && now_ < to->paused_until) {
    net_.Requeue(std::move(e), to->paused_until);
    return;
  }
  bool ok = to != nullptr && to->running() && net_.Connected(m.from, m.to);
  if (!ok) {
    net_.NoteDropped();
    if (trace_->on()) Log("  drop " + DescribeMessage(m));
    if (m.type == MessageType::kSnapshot && from != nullptr && from->running()) {
      from->raw->ReportSnapshot(m.to, false);
      ProcessReady(*from);
    }
    return;
  }
  net_.NoteDelivered();
  if (trace_->on()) Log("  recv " + DescribeMessage(m));
  if (m.type == MessageType::kSnapshot) to->received_snapshots[m.snapshot.index] = e.snapshot_data;
  Status s = to->raw->Step(m);
  if (!s.ok() && !(options_.allow_term_jump_refusals &&
                   s.message().find("kTermJumpMax") != std::string::npos)) {
    throw SimFailure(
        fmt::format("tick {}: n{} refused [{}]: {}", now_, m.to, DescribeMessage(m), s.ToString()));
  }
  ProcessReady(*to);
  if (m.type == MessageType::kSnapshot && from != nullptr && from->running()) {
    from->raw->ReportSnapshot(m.to, true);
    ProcessReady(*from);
  }
}

void Cluster::ApplyEntry(SimNode& n, const Entry& e, Index known_commit) {
  Index commit = std::max(
      {n.reported_commit, n.durable_hs().commit, n.storage->FirstIndex() - 1, known_commit});
  checker_.OnApply(n, e, commit, n.raw->term());
  lin::Output out;
  KvOp op;
  bool is_op = false;
  if (e.type == EntryType::kConfChange) {
    ConfChange cc;
    if (DecodeConfChange(e.data, &cc)) {
      auto next = ApplyConfChange(n.applied_conf, cc);
      if (next.ok()) n.applied_conf = *next;
    }
  } else if (DecodeKvOp(e.data, &op)) {
    out = n.kv.Apply(op.input);
    is_op = true;
  }
  n.applied = e.index;
  checker_.OnState(n.id, e.index, n.kv.Digest());
  if (clients_ != nullptr) clients_->OnApplied(n, e, is_op ? &op : nullptr, out);
}

void Cluster::ObserveRoles() {
  for (auto& [id, n] : nodes_) {
    if (!n.running()) continue;
    std::pair<Role, Term> rt{n.raw->role(), n.raw->term()};
    auto it = last_role_.find(id);
    if (it != last_role_.end() && it->second == rt) continue;
    last_role_[id] = rt;
    checker_.OnRole(id, rt.first, rt.second);
    Log(fmt::format("n{} is {} in term {}", id, RoleName(rt.first), rt.second));
  }
}

}  // namespace raft::sim
