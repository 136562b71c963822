// Checker: the safety invariants, checked as the run goes (a violation throws SimFailure
// naming the node, index and terms involved).
//
//   election safety      at most one leader per term, over all time (OnRole)
//   durability           a message leaves only once what it asserts is durable: its term,
//                        a vote grant's vote, an append ack's entries (OnSend, at send time)
//   ack stability        within one term a node never drops or changes an entry it
//                        acknowledged (OnWriteIntent: the write the core asks for)
//   log matching         over durable logs: (index, term) determines the entry and the
//                        term of its predecessor (OnDurableWrite)
//   monotonic state      durable term and commit never go back, across crashes too
//   leader completeness  a new leader's log holds every entry committed in an earlier term
//                        (OnLeaderReady; a stale candidate may still win an older term)
//   electability        no voter lacking a committed entry could win an election
//                        (CheckElectability; catches Figure 8 before the bad election)
//   state machine safety one entry per index over all nodes and time, applied in order,
//                        never beyond the node's commit index; equal KV digests at one
//                        applied index everywhere (OnApply, OnState)
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include "raft/raw_node.h"
#include "sim_node.h"

namespace raft::sim {

// A broken invariant or a failed liveness bound: the run fails with this message.
class SimFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Checker {
 public:
  void OnRole(NodeId id, Role role, Term term);
  void OnSend(SimNode& n, const Message& m);
  void OnWriteIntent(const SimNode& n, const Ready& rd, Term term_now) const;
  void OnLeaderReady(const SimNode& n, const Ready& rd) const;
  // After a (possibly torn) write of `entries` and maybe a snapshot reached the disk.
  void OnDurableWrite(SimNode& n, const std::vector<Entry>& entries);
  // `term_now`: the applying node's current term, an upper bound of the term in which the
  // entry was committed (commit knowledge only arrives in messages of terms <= it).
  void OnApply(const SimNode& n, const Entry& e, Index commit, Term term_now);
  void OnState(NodeId id, Index applied, std::uint64_t digest);
  // Leader completeness, proactively (Raft 5.4.3): a voter whose durable log lacks the
  // newest applied (= committed) entry must be strictly less up-to-date than a majority of
  // the voters, so it can never win an election. Sound for a fixed voter set only: the
  // cluster calls it when no membership change is in play.
  void CheckElectability(const std::map<NodeId, SimNode>& nodes, const std::set<NodeId>& voters);

  // Entries applied anywhere (= known committed), by index.
  const std::map<Index, Entry>& applied() const { return applied_; }
  // Membership after the committed configuration entries applied so far.
  const ConfState& committed_conf() const { return committed_conf_; }
  void set_committed_conf(const ConfState& c) { committed_conf_ = c; }
  const std::map<Term, NodeId>& leaders() const { return leaders_; }
  std::int64_t now = 0;  // for messages

 private:
  [[noreturn]] void Fail(const std::string& what) const;

  std::map<Term, NodeId> leaders_;
  std::map<Index, Entry> applied_;
  std::map<Index, Term> commit_term_max_;  // per applied index: >= the term it committed in
  Index conf_applied_index_ = 0;
  ConfState committed_conf_;
  std::map<Index, std::uint64_t> digests_;
  struct EntryId {
    std::uint64_t hash = 0;
    Term prev_term = 0;
    bool prev_known = false;
  };
  std::map<std::pair<Index, Term>, EntryId> entries_;
};

std::uint64_t HashEntry(const Entry& e);

}  // namespace raft::sim
