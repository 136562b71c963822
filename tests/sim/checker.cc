#include "checker.h"

#include <fmt/format.h>

#include "trace.h"

namespace raft::sim {
namespace {

// What a node's log says about index i after `rd` (if any) is written over its storage.
struct ViewTerm {
  enum Kind { kTerm, kCovered, kMissing } kind = kMissing;
  Term term = 0;
};

ViewTerm TermInView(const SimNode& n, const Ready* rd, Index i) {
  if (rd != nullptr && !rd->entries.empty() && i >= rd->entries.front().index) {
    if (i > rd->entries.back().index) return {};
    return {ViewTerm::kTerm, rd->entries[i - rd->entries.front().index].term};
  }
  if (rd != nullptr && rd->snapshot) {
    if (i == rd->snapshot->index) return {ViewTerm::kTerm, rd->snapshot->term};
    if (i < rd->snapshot->index) return {ViewTerm::kCovered, 0};
    return {};
  }
  const MemoryStorage& s = *n.storage;
  if (i + 1 < s.FirstIndex()) return {ViewTerm::kCovered, 0};
  auto t = s.TermAt(i);
  if (!t.ok()) return {};
  return {ViewTerm::kTerm, *t};
}

}  // namespace

std::uint64_t HashEntry(const Entry& e) {
  std::uint64_t h = 1469598103934665603ull ^ static_cast<std::uint64_t>(e.type);
  for (char c : e.data) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

void Checker::Fail(const std::string& what) const {
  throw SimFailure(fmt::format("tick {}: {}", now, what));
}

void Checker::OnRole(NodeId id, Role role, Term term) {
  if (role != Role::kLeader) return;
  auto [it, fresh] = leaders_.emplace(term, id);
  if (!fresh && it->second != id) {
    Fail(fmt::format("election safety: n{} and n{} are both leaders of term {}", it->second, id,
                     term));
  }
}

void Checker::OnSend(SimNode& n, const Message& m) {
  HardState d = n.durable_hs();
  bool pre = m.type == MessageType::kPreVote || m.type == MessageType::kPreVoteResponse;
  if (!pre && m.term > d.term) {
    Fail(fmt::format("durability: n{} sent [{}] while its durable term is {}", n.id,
                     DescribeMessage(m), d.term));
  }
  switch (m.type) {
    case MessageType::kVoteResponse:
      if (!m.reject && d.term == m.term && d.vote != m.to) {
        Fail(
            fmt::format("durability: n{} granted its vote in term {} to n{} but its durable "
                        "hard state is {}",
                        n.id, m.term, m.to, DescribeHardState(d)));
      }
      break;
    case MessageType::kVote:
      if (d.term == m.term && d.vote != n.id) {
        Fail(
            fmt::format("durability: n{} asked for votes in term {} before its own vote was "
                        "durable ({})",
                        n.id, m.term, DescribeHardState(d)));
      }
      break;
    case MessageType::kAppendResponse: {
      if (m.reject || m.index == 0) break;
      const MemoryStorage& s = *n.storage;
      if (m.index > s.LastIndex()) {
        Fail(
            fmt::format("durability: n{} acknowledged index {} in term {} but its durable log "
                        "ends at {}",
                        n.id, m.index, m.term, s.LastIndex()));
      }
      if (n.ack_term != m.term) {
        n.ack_term = m.term;
        n.ack_index = 0;
      }
      if (m.index > n.ack_index) {
        n.ack_index = m.index;
        auto t = s.TermAt(m.index);
        n.ack_entry_term = t.ok() ? *t : 0;
      }
      break;
    }
    default:
      break;
  }
}

void Checker::OnWriteIntent(const SimNode& n, const Ready& rd, Term term_now) const {
  if (n.ack_index == 0 || n.ack_term != term_now) return;
  ViewTerm v = TermInView(n, &rd, n.ack_index);
  // An entry of a term above the acknowledgement's came from a later leader, which may
  // replace it. A torn write can make that entry durable while the later term is not
  // (the log is written before the hard state), so after a restart the node is back in
  // the acknowledgement's term with the later entry in its log (found with lease runs'
  // bounce fault, seed 4106 of `--profile all --lease`).
  bool ok = v.kind == ViewTerm::kCovered ||
            (v.kind == ViewTerm::kTerm &&
             (n.ack_entry_term == 0 || v.term == n.ack_entry_term || v.term > n.ack_term));
  if (!ok) {
    Fail(
        fmt::format("ack stability: n{} acknowledged index {} (term {}) in term {}, and now in "
                    "the same term writes entries [{}..{}] that {} it",
                    n.id, n.ack_index, n.ack_entry_term, term_now,
                    rd.entries.empty() ? 0 : rd.entries.front().index,
                    rd.entries.empty() ? 0 : rd.entries.back().index,
                    v.kind == ViewTerm::kMissing ? "truncate" : "overwrite"));
  }
}

void Checker::OnLeaderReady(const SimNode& n, const Ready& rd) const {
  Term leader_term = n.raw->term();
  for (auto it = applied_.begin(); it != applied_.end(); ++it) {
    if (commit_term_max_.at(it->first) >= leader_term) continue;
    ViewTerm v = TermInView(n, &rd, it->first);
    if (v.kind == ViewTerm::kCovered) continue;
    if (v.kind == ViewTerm::kMissing || v.term != it->second.term) {
      Fail(
          fmt::format("leader completeness: n{} became leader of term {} without committed "
                      "entry {} (term {}); its log has {}",
                      n.id, leader_term, it->first, it->second.term,
                      v.kind == ViewTerm::kMissing ? std::string("nothing there")
                                                   : fmt::format("term {}", v.term)));
    }
  }
}

void Checker::OnDurableWrite(SimNode& n, const std::vector<Entry>& entries) {
  const MemoryStorage& s = *n.storage;
  for (const Entry& e : entries) {
    if (e.index < s.FirstIndex()) continue;
    auto prev = s.TermAt(e.index - 1);
    EntryId id{HashEntry(e), prev.ok() ? *prev : 0, prev.ok()};
    auto [it, fresh] = entries_.emplace(std::make_pair(e.index, e.term), id);
    if (fresh) continue;
    if (it->second.hash != id.hash) {
      Fail(
          fmt::format("log matching: n{} holds entry {}/{} with other contents than another "
                      "node's entry {}/{}",
                      n.id, e.index, e.term, e.index, e.term));
    }
    if (id.prev_known && it->second.prev_known && it->second.prev_term != id.prev_term) {
      Fail(fmt::format("log matching: entry {}/{} follows term {} on n{} but term {} elsewhere",
                       e.index, e.term, id.prev_term, n.id, it->second.prev_term));
    }
    if (id.prev_known && !it->second.prev_known) it->second = id;
  }
  HardState d = n.durable_hs();
  if (d.term < n.durable_seen.term) {
    Fail(fmt::format("durable term of n{} went back from {} to {}", n.id, n.durable_seen.term,
                     d.term));
  }
  Index commit = std::max(d.commit, s.FirstIndex() - 1);
  if (commit < n.durable_seen.commit) {
    Fail(fmt::format("durable commit of n{} went back from {} to {}", n.id, n.durable_seen.commit,
                     commit));
  }
  n.durable_seen = HardState{d.term, d.vote, commit};
}

void Checker::OnApply(const SimNode& n, const Entry& e, Index commit, Term term_now) {
  if (e.index != n.applied + 1) {
    Fail(fmt::format("n{} applied entry {} right after {}", n.id, e.index, n.applied));
  }
  if (e.index > commit) {
    Fail(fmt::format("n{} applied entry {} beyond its commit index {}", n.id, e.index, commit));
  }
  auto [it, fresh] = applied_.emplace(e.index, e);
  if (!fresh) {
    if (it->second != e) {
      Fail(
          fmt::format("state machine safety: n{} applied {}/{} at index {} where {}/{} was "
                      "applied before",
                      n.id, e.index, e.term, e.index, it->second.index, it->second.term));
    }
    return;
  }
  commit_term_max_[e.index] = term_now;
  if (e.type == EntryType::kConfChange && e.index > conf_applied_index_) {
    conf_applied_index_ = e.index;
    ConfChange cc;
    if (DecodeConfChange(e.data, &cc)) {
      auto next = ApplyConfChange(committed_conf_, cc);
      if (next.ok()) committed_conf_ = *next;
    }
  }
}

void Checker::CheckElectability(const std::map<NodeId, SimNode>& nodes,
                                const std::set<NodeId>& voters) {
  if (applied_.empty() || voters.empty()) return;
  const Entry& e = applied_.rbegin()->second;
  auto last_pos = [](const SimNode& n) {
    Index li = n.storage->LastIndex();
    auto t = n.storage->TermAt(li);
    return std::make_pair(t.ok() ? *t : 0, li);
  };
  for (NodeId c : voters) {
    auto it = nodes.find(c);
    if (it == nodes.end() || !it->second.started || it->second.retired) continue;
    const MemoryStorage& s = *it->second.storage;
    if (e.index + 1 <= s.FirstIndex()) continue;  // inside its snapshot
    auto t = s.TermAt(e.index);
    if (t.ok() && *t == e.term) continue;
    auto mine = last_pos(it->second);
    std::size_t grants = 0;
    for (NodeId v : voters) {
      auto vt = nodes.find(v);
      if (vt == nodes.end() || !vt->second.started) continue;
      if (mine >= last_pos(vt->second)) ++grants;
    }
    if (grants >= voters.size() / 2 + 1) {
      Fail(
          fmt::format("leader completeness at risk: n{} lacks committed entry {}/{} (its durable "
                      "log ends at {}/{}) yet {} of {} voters would find its log up to date",
                      c, e.index, e.term, mine.second, mine.first, grants, voters.size()));
    }
  }
}

void Checker::OnState(NodeId id, Index applied, std::uint64_t digest) {
  auto [it, fresh] = digests_.emplace(applied, digest);
  if (!fresh && it->second != digest) {
    Fail(fmt::format("state machine safety: n{} has a different state at applied index {}", id,
                     applied));
  }
}

}  // namespace raft::sim
