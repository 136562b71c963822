#include "byzantine.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include "cluster.h"
#include "kv_machine.h"

namespace raft::sim {
namespace {

constexpr NodeId kByzantine = 4;
constexpr NodeId kStranger = 5;  // a spare that never starts: not in any configuration
constexpr int kHonest = 3;
constexpr int kMaxActions = 400;
constexpr int kLivenessTicks = 600;

// Reads the input front to back; past the end every read is 0, so decoding is total.
class Bytes {
 public:
  Bytes(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  bool empty() const { return i_ >= n_; }
  std::uint8_t U8() { return i_ < n_ ? d_[i_++] : 0; }
  std::uint64_t U64() {
    std::uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v = (v << 8) | U8();
    return v;
  }
  std::string Str(std::size_t max) {
    std::size_t len = U8() % (max + 1);
    std::string s;
    for (std::size_t k = 0; k < len; ++k) s.push_back(static_cast<char>(U8()));
    return s;
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_;
  std::size_t i_ = 0;
};

std::optional<Term> TermIn(const Storage& log, Index i) {
  auto t = log.TermAt(i);
  if (!t.ok()) return std::nullopt;
  return *t;
}

// The receiver's state a message is decoded against.
struct View {
  NodeStatus st;
  const Storage* log;
  Index first() const { return log->FirstIndex(); }
  Index last() const { return st.last_index; }
  Index commit() const { return st.hard_state.commit; }
  Term term() const { return st.hard_state.term; }
};

std::uint64_t Plus(std::uint64_t base, int delta) {
  if (delta < 0) {
    auto d = static_cast<std::uint64_t>(-delta);
    return base > d ? base - d : 0;
  }
  return base + static_cast<std::uint64_t>(delta);
}

Term DecodeTerm(Bytes& in, const View& v) {
  std::uint8_t b = in.U8();
  std::uint64_t small = b >> 3;
  switch (b & 7) {
    case 0:
      return v.term();
    case 1:
      return v.term() + 1 + small % 4;
    case 2:
      return Plus(v.term(), -static_cast<int>(small % 8) - 1);
    case 3:
      return small;
    case 4:
      return UINT64_MAX - small;
    case 5:
      return in.U64();
    case 6:
      return kByzantineCeiling + small - 16;
    default:
      return (std::uint64_t{1} << 63) + small;
  }
}

Index DecodeIndex(Bytes& in, const View& v) {
  std::uint8_t b = in.U8();
  int delta = static_cast<int>(b >> 3) - 8;
  switch (b & 7) {
    case 0:
      return Plus(v.last(), delta);
    case 1:
      return Plus(v.commit(), delta);
    case 2:
      return Plus(v.first() - 1, delta);
    case 3:
      return static_cast<Index>(b >> 3);
    case 4:
      return UINT64_MAX - (b >> 3);
    case 5:
      return in.U64();
    case 6:
      return v.last();
    default:
      return v.commit();
  }
}

// log_term for an index: usually the receiver's own term there, so that appends match.
Term DecodeLogTerm(Bytes& in, const View& v, Index at) {
  std::uint8_t b = in.U8();
  if (b < 160) {
    if (auto t = TermIn(*v.log, at)) return *t;
    if (at == v.first() - 1 || at == 0) return 0;
  }
  return DecodeTerm(in, v);
}

std::vector<Entry> DecodeEntries(Bytes& in, const View& v, const Message& m) {
  std::uint8_t b = in.U8();
  std::size_t count = b & 7;
  if (count == 7) count = 7 + in.U8() % 40;
  int layout = (b >> 3) & 3;
  int terms = (b >> 5) & 7;
  std::vector<Entry> ents(count);
  Index start = layout == 1 ? DecodeIndex(in, v) : m.index + 1;
  std::size_t odd = count == 0 ? 0 : in.U8() % count;  // layout 3: where the gap or dup is
  for (std::size_t i = 0; i < count; ++i) {
    Entry& e = ents[i];
    switch (layout) {
      case 2:
        e.index = DecodeIndex(in, v);
        break;
      case 3:
        e.index = start + i + (i >= odd ? 1 : 0) - (i == odd + 1 ? 2 : 0);
        break;
      default:
        e.index = start + i;
        break;
    }
    auto mine = TermIn(*v.log, e.index);
    switch (terms) {
      case 0:
        e.term = m.term;
        break;
      case 1:
        e.term = mine ? *mine : m.term;
        break;
      case 2:
        e.term = std::min(m.term, m.log_term + i / 2);
        break;
      case 3:
        e.term = DecodeTerm(in, v);
        break;
      case 4:
        e.term = mine ? *mine + 1 : m.term;
        break;  // conflicts with the receiver
      case 5:
        e.term = Plus(m.term, -static_cast<int>(i));
        break;  // decreasing
      case 6:
        e.term = i < odd && mine ? *mine : m.term;
        break;
      default:
        e.term = m.term + i;
        break;  // above the message's term
    }
    std::uint8_t kind = in.U8();
    if (kind % 8 == 0) {
      e.type = EntryType::kConfChange;
      ConfChange cc;
      cc.type = static_cast<ConfChangeType>((kind >> 3) % 3);
      cc.node = (kind >> 5) % 6;
      e.data = (kind & 0x80) != 0 ? in.Str(6) : EncodeConfChange(cc);
    } else {
      e.data = fmt::format("B|{}", in.Str(6));
    }
  }
  return ents;
}

ConfState DecodeConf(Bytes& in) {
  std::uint8_t voters = in.U8(), learners = in.U8();
  ConfState c;
  for (NodeId id = 1; id <= 6; ++id) {
    if (voters & (1u << id)) c.voters.insert(id);
    if (learners & (1u << id)) c.learners.insert(id);
  }
  return c;
}

// The fields of a message "from" n4 to `to`, decoded against the receiver's state.
Message DecodeMessage(Bytes& in, const View& v, NodeId to) {
  Message m;
  std::uint8_t head = in.U8();
  int type = head % 13;  // 0: an unknown type
  if ((head >> 4) == 15) type = 13 + (head & 3);
  m.type = static_cast<MessageType>(type);
  std::uint8_t who = in.U8();
  m.from = who < 224 ? kByzantine : who < 240 ? kStranger : who < 248 ? kNoNode : to;
  m.to = who == 255 ? kByzantine : to;
  m.term = DecodeTerm(in, v);
  m.index = DecodeIndex(in, v);
  m.log_term = DecodeLogTerm(in, v, m.index);
  std::uint8_t more = in.U8();
  m.commit = (more & 1) != 0 ? DecodeIndex(in, v) : 0;
  m.reject = (more & 2) != 0;
  m.reject_hint = (more & 4) != 0 ? DecodeIndex(in, v) : 0;
  m.campaign_transfer = (more & 8) != 0;
  if ((more & 16) != 0) m.read_seq = (more & 32) != 0 ? in.U64() : in.U8();
  if ((more & 64) != 0) m.context = in.Str(8);
  if (m.type == MessageType::kAppend || (more & 128) != 0) m.entries = DecodeEntries(in, v, m);
  if (m.type == MessageType::kSnapshot) {
    m.snapshot.index = DecodeIndex(in, v);
    m.snapshot.term = DecodeLogTerm(in, v, m.snapshot.index);
    if ((in.U8() & 3) == 0) {
      m.snapshot.conf = DecodeConf(in);
    } else {
      m.snapshot.conf = v.st.conf;
    }
  }
  return m;
}

bool LeaderType(MessageType t) {
  return t == MessageType::kAppend || t == MessageType::kHeartbeat || t == MessageType::kSnapshot ||
         t == MessageType::kTimeoutNow || t == MessageType::kReadIndexResponse;
}

// Harness failures that only the node's own state can cause (node_runtime.cc, cluster.cc):
// findings in every mode. Every other SimFailure is a cross-node Checker invariant, which
// lies may break.
bool LocalFailure(const std::string& what) {
  for (const char* s :
       {"cannot persist", "cannot restart", "disk does not hold", "asked to install snapshot",
        "HasReady() was true", "offers snapshot", "durability:", "went back", "right after",
        "beyond its commit index", "TakeCommitted handed out", "never received"}) {
    if (what.find(s) != std::string::npos) return true;
  }
  return false;
}

class Program {
 public:
  Program(const std::uint8_t* data, std::size_t size, bool silent, bool trace)
      : in_(data, size), silent_(silent), trace_(trace) {}

  ByzantineOutcome Run() {
    std::uint8_t flags = in_.U8();
    strict_ = (flags & 1) != 0;
    int prologue = (flags >> 1) & 3;
    ClusterOptions o;
    o.voters = kHonest + 1;  // n4 is the byzantine voter
    o.allow_term_jump_refusals = true;
    o.spares = 1;  // n5: never started
    Cluster c(o, in_.U8(), &trace_);
    c_ = &c;
    try {
      c.Crash(kByzantine);
      if (!c.RunUntil([&] { return c.Leader() != kNoNode; }, 300))
        return Fail("prologue: no leader within 300 ticks");
      for (int i = 0; i < prologue; ++i) {
        if (c.ProposeAndCommit(fmt::format("M|p{}", i), 300) == 0)
          return Fail("prologue: no commit within 300 ticks");
      }
      CheckLocal();
      while (!in_.empty() && out_.actions < kMaxActions &&
             out_.kind == ByzantineOutcome::Kind::kPassed) {
        Step();
        ++out_.actions;
        CheckLocal();
      }
      if (out_.kind == ByzantineOutcome::Kind::kPassed && strict_) Liveness();
    } catch (const SimFailure& f) {
      std::string what = f.what();
      if (strict_ || LocalFailure(what)) return Fail(what);
      out_.kind = ByzantineOutcome::Kind::kStopped;
      out_.what = what;
    }
    return out_;
  }

 private:
  ByzantineOutcome Fail(std::string what) {
    out_.kind = ByzantineOutcome::Kind::kFinding;
    out_.what = std::move(what);
    return out_;
  }

  void Step() {
    Cluster& c = *c_;
    std::uint8_t op = in_.U8();
    if (op < 48) {
      c.RunTicks(1 + op % 6);
    } else if (op < 64) {
      NodeId l = c.Leader();
      if (l != kNoNode) c.Offer(l, fmt::format("M|{}", ++proposals_));
    } else if (op < 70) {
      NodeId id = 1 + op % kHonest;
      if (c.Running(id)) {
        c.Crash(id);
      } else {
        c.Restart(id);
      }
    } else if (op < 76) {
      c.TakeSnapshot(1 + op % kHonest, in_.U8() % 4);
    } else {
      SendByzantine(1 + op % kHonest);
    }
  }

  void SendByzantine(NodeId to) {
    SimNode& n = c_->node(to);
    if (!n.running()) return;
    View v{n.raw->GetStatus(), n.storage.get()};
    Message m = DecodeMessage(in_, v, to);
    std::uint8_t bytes_kind = in_.U8();
    if (silent_ || (strict_ && MustRefuseReason(m, v.st, *v.log).empty())) return;
    if (m.type == MessageType::kSnapshot) {
      // The runtime moves the bytes beside the message; here: an honest node's snapshot
      // bytes, or an empty state machine.
      const std::string& honest = c_->node(1 + bytes_kind % kHonest).snapshot_data;
      n.received_snapshots[m.snapshot.index] =
          (bytes_kind & 4) != 0 || honest.empty() ? KvMachine().Serialize() : honest;
    }
    ++out_.byzantine_sent;
    if (trace_.on()) c_->Log("byzantine " + DescribeMessage(m));
    (void)n.raw->Step(m);  // a refusal is the point; the program goes on
    c_->Kick(to);
  }

  // Oracle 2, after every action.
  void CheckLocal() {
    for (NodeId id = 1; id <= kHonest; ++id) {
      SimNode& n = c_->node(id);
      const MemoryStorage& s = *n.storage;
      HardState d = s.InitialHardState();
      Term& durable = durable_term_[id];
      if (d.term < durable)
        return Local(id, fmt::format("durable term went from {} to {}", durable, d.term));
      durable = d.term;
      if (d.commit > s.LastIndex())
        return Local(id, fmt::format("durable commit {} beyond its log's last index {}", d.commit,
                                     s.LastIndex()));
      Term prev = 0;
      for (Index i = s.FirstIndex() - 1; i <= s.LastIndex(); ++i) {
        auto t = s.TermAt(i);
        if (!t.ok()) return Local(id, fmt::format("durable log has no term at {}", i));
        if (*t < prev)
          return Local(id, fmt::format("durable log's terms decrease at index {} ({} after {})", i,
                                       *t, prev));
        prev = *t;
        if (i == UINT64_MAX) break;
      }
      if (prev > d.term)
        return Local(
            id, fmt::format("durable log holds term {} above its durable term {}", prev, d.term));
      if (!n.running()) continue;
      NodeStatus st = n.raw->GetStatus();
      auto [it, fresh] = life_term_.emplace(id, std::make_pair(n.incarnation, st.hard_state.term));
      if (!fresh) {
        if (it->second.first == n.incarnation && st.hard_state.term < it->second.second)
          return Local(
              id, fmt::format("term went from {} to {}", it->second.second, st.hard_state.term));
        it->second = {n.incarnation, st.hard_state.term};
      }
      if (st.hard_state.commit > st.last_index)
        return Local(
            id, fmt::format("commit {} beyond last index {}", st.hard_state.commit, st.last_index));
      if (st.applied > st.hard_state.commit)
        return Local(id, fmt::format("core's applied {} beyond commit {}", st.applied,
                                     st.hard_state.commit));
      if (n.applied > st.hard_state.commit)
        return Local(id,
                     fmt::format("applied {} beyond commit {}", n.applied, st.hard_state.commit));
    }
  }

  void Local(NodeId id, const std::string& what) {
    Fail(fmt::format("tick {}: local invariant of n{}: {}", c_->now(), id, what));
  }

  // Oracle 3 (strict): a healed honest cluster elects a leader and commits.
  void Liveness() {
    Cluster& c = *c_;
    for (NodeId id = 1; id <= kHonest; ++id) c.Restart(id);
    CheckLocal();
    if (out_.kind != ByzantineOutcome::Kind::kPassed) return;
    if (c.ProposeAndCommit("M|live", kLivenessTicks) == 0) {
      std::string terms;
      for (NodeId id = 1; id <= kHonest; ++id)
        if (c.Running(id)) terms += fmt::format(" n{}@t{}", id, c.node(id).raw->term());
      Fail(
          fmt::format("liveness: no new entry committed within {} ticks after the program "
                      "(terms:{})",
                      kLivenessTicks, terms));
    }
  }

  Bytes in_;
  bool silent_;
  Trace trace_;
  bool strict_ = false;
  Cluster* c_ = nullptr;
  ByzantineOutcome out_;
  int proposals_ = 0;
  std::map<NodeId, Term> durable_term_;
  std::map<NodeId, std::pair<std::uint64_t, Term>> life_term_;  // (incarnation, term)
};

}  // namespace

std::string MustRefuseReason(const Message& m, const NodeStatus& st, const Storage& log) {
  auto type = static_cast<int>(m.type);
  if (type < 1 || type > kMessageTypeMax) return "unknown type";
  if (m.to != st.id) return "addressed to another node";
  if (m.from == kNoNode || m.from == st.id) return "invalid sender";
  if (m.term > kByzantineCeiling) return "term near 2^64";
  if (LeaderType(m.type) && m.term == st.hard_state.term &&
      (st.role == Role::kLeader || (st.leader != kNoNode && st.leader != m.from))) {
    return "a second leader in the receiver's term";
  }
  const Index commit = st.hard_state.commit;
  auto conflicts_committed = [&](Index i, Term t) {
    if (i > commit) return false;
    auto mine = TermIn(log, i);
    return mine && *mine != t;
  };
  switch (m.type) {
    case MessageType::kAppend: {
      if (m.log_term > m.term) return "prev term above the message's term";
      if (m.index > kByzantineCeiling) return "index near 2^64";
      if (conflicts_committed(m.index, m.log_term)) return "prev conflicts with a committed entry";
      Term prev = m.log_term;
      for (std::size_t i = 0; i < m.entries.size(); ++i) {
        const Entry& e = m.entries[i];
        if (e.index != m.index + 1 + i) return "entries not consecutive after index";
        if (e.index > kByzantineCeiling) return "entry index near 2^64";
        if (e.term > m.term) return "entry term above the message's term";
        if (e.term < prev) return "entry terms decrease";
        if (conflicts_committed(e.index, e.term)) return "entry overwrites a committed entry";
        prev = e.term;
      }
      return "";
    }
    case MessageType::kSnapshot: {
      const SnapshotMeta& s = m.snapshot;
      if (s.term > m.term) return "snapshot term above the message's term";
      if (s.index > kByzantineCeiling) return "snapshot index near 2^64";
      if (s.conf.voters.empty()) return "snapshot configuration without voters";
      for (NodeId id : s.conf.learners)
        if (s.conf.voters.count(id)) return "snapshot configuration: voter and learner";
      if (conflicts_committed(s.index, s.term)) return "snapshot conflicts with a committed entry";
      if (s.index > commit) {
        auto t = TermIn(log, commit);
        if (t && *t > s.term) return "snapshot term below the committed entries' term";
      }
      return "";
    }
    case MessageType::kAppendResponse:
      if (st.role == Role::kLeader && m.term == st.hard_state.term && !m.reject &&
          m.index > st.last_index) {
        return "acknowledges entries beyond the leader's log";
      }
      return "";
    default:
      return "";
  }
}

ByzantineOutcome RunByzantineProgram(const std::uint8_t* data, std::size_t size, bool silent,
                                     bool trace) {
  return Program(data, size, silent, trace).Run();
}

}  // namespace raft::sim
