#include "scenario_driver.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include "scenario_render.h"

namespace raft::scenario {
namespace {

// A mistake in the scenario itself (bad arguments, unknown node): reported as
// "error: ..." in the output, which then fails the comparison.
struct CommandError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::uint64_t ParseNumber(const std::string& s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(c); })) {
    throw CommandError("not a number: '" + s + "'");
  }
  return std::stoull(s);
}

std::vector<std::uint64_t> ParseList(const std::string& s) {
  if (s.size() < 2 || s.front() != '(' || s.back() != ')') {
    throw CommandError("not a list like (1,2,3): '" + s + "'");
  }
  std::vector<std::uint64_t> out;
  std::string cur;
  for (char ch : s.substr(1, s.size() - 2)) {
    if (ch == ',' || ch == ' ') {
      if (!cur.empty()) out.push_back(ParseNumber(cur));
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(ParseNumber(cur));
  return out;
}

bool ParseBool(const std::string& s) {
  if (s == "true") return true;
  if (s == "false") return false;
  throw CommandError("not a bool (true|false): '" + s + "'");
}

void AllowOnly(const Command& c, std::initializer_list<const char*> keys) {
  for (const auto& [k, v] : c.opts) {
    bool ok = false;
    for (const char* key : keys) ok |= k == key;
    if (!ok) throw CommandError("unknown option '" + k + "' for " + c.name);
  }
}

void NeedArgs(const Command& c, std::size_t n) {
  if (c.args.size() < n) {
    throw CommandError(c.name + " needs " + std::to_string(n) + " argument(s)");
  }
}

NodeId Arg(const Command& c, std::size_t i) {
  NeedArgs(c, i + 1);
  return ParseNumber(c.args[i]);
}

std::string Opt(const Command& c, const std::string& key, const std::string& dflt) {
  auto it = c.opts.find(key);
  return it == c.opts.end() ? dflt : it->second;
}

MessageType ParseMessageType(const std::string& s) {
  for (int t = 1; t <= kMessageTypeMax; ++t) {
    auto mt = static_cast<MessageType>(t);
    if (s == MessageTypeName(mt)) return mt;
  }
  throw CommandError("unknown message type '" + s + "'");
}

}  // namespace

Command ParseCommand(const std::string& line) {
  std::vector<std::string> words;
  std::string cur;
  int depth = 0;
  bool quoted = false;
  bool have = false;
  for (char ch : line) {
    if (quoted) {
      if (ch == '"') {
        quoted = false;
      } else {
        cur += ch;
      }
      continue;
    }
    if (ch == '"') {
      quoted = true;
      have = true;
    } else if (ch == '(') {
      ++depth;
      cur += ch;
    } else if (ch == ')') {
      --depth;
      cur += ch;
    } else if (std::isspace(static_cast<unsigned char>(ch)) && depth == 0) {
      if (have) words.push_back(cur);
      cur.clear();
      have = false;
      continue;
    } else {
      cur += ch;
    }
    have = true;
  }
  if (have) words.push_back(cur);
  Command c;
  if (words.empty()) return c;
  c.name = words[0];
  for (std::size_t i = 1; i < words.size(); ++i) {
    auto eq = words[i].find('=');
    auto paren = words[i].find('(');
    if (eq != std::string::npos && (paren == std::string::npos || eq < paren)) {
      c.opts[words[i].substr(0, eq)] = words[i].substr(eq + 1);
    } else {
      c.args.push_back(words[i]);
    }
  }
  return c;
}

void ScenarioDriver::Out(const std::string& indent, const std::string& line) {
  out_ += indent + line + "\n";
}

std::string ScenarioDriver::Run(const std::string& line) {
  out_.clear();
  Command c = ParseCommand(line);
  try {
    const std::string& n = c.name;
    if (n == "add-nodes") {
      CmdAddNodes(c);
    } else if (n == "set-log") {
      CmdSetLog(c);
    } else if (n == "campaign") {
      AllowOnly(c, {});
      Watch(Arg(c, 0), "", [&] { Live(Arg(c, 0)).Campaign(); });
    } else if (n == "tick" || n == "tick-heartbeat") {
      CmdTick(c);
    } else if (n == "tick-election") {
      CmdTickElection(c);
    } else if (n == "propose") {
      AllowOnly(c, {});
      NeedArgs(c, 2);
      NodeId id = Arg(c, 0);
      Watch(id, "", [&] {
        auto r = Live(id).Propose(c.args[1]);
        if (r.ok()) {
          Out("", "proposed at " + std::to_string(r->term) + "/" + std::to_string(r->index));
        } else {
          Out("", "refused: " + r.status().ToString());
        }
      });
    } else if (n == "propose-conf-change") {
      CmdProposeConfChange(c);
    } else if (n == "read-index") {
      AllowOnly(c, {});
      NeedArgs(c, 2);
      NodeId id = Arg(c, 0);
      Watch(id, "", [&] {
        Status s = Live(id).ReadIndex(c.args[1]);
        if (!s.ok()) Out("", "refused: " + s.ToString());
      });
    } else if (n == "transfer-leadership") {
      AllowOnly(c, {});
      NodeId id = Arg(c, 0);
      NodeId to = Arg(c, 1);
      Watch(id, "", [&] {
        Status s = Live(id).TransferLeadership(to);
        if (!s.ok()) Out("", "refused: " + s.ToString());
      });
    } else if (n == "report-unreachable") {
      AllowOnly(c, {});
      NodeId id = Arg(c, 0);
      NodeId peer = Arg(c, 1);
      Watch(id, "", [&] { Live(id).ReportUnreachable(peer); });
    } else if (n == "report-snapshot") {
      AllowOnly(c, {});
      NodeId id = Arg(c, 0);
      NodeId peer = Arg(c, 1);
      NeedArgs(c, 3);
      if (c.args[2] != "ok" && c.args[2] != "fail") throw CommandError("want ok|fail");
      Watch(id, "", [&] { Live(id).ReportSnapshot(peer, c.args[2] == "ok"); });
    } else if (n == "process-ready") {
      CmdProcessReady(c);
    } else if (n == "deliver-msgs") {
      CmdDeliver(c);
    } else if (n == "stabilize") {
      CmdStabilize(c);
    } else if (n == "isolate") {
      AllowOnly(c, {});
      isolated_.insert(Arg(c, 0));
    } else if (n == "cut") {
      AllowOnly(c, {});
      cuts_.insert(std::minmax(Arg(c, 0), Arg(c, 1)));
    } else if (n == "heal") {
      AllowOnly(c, {});
      isolated_.clear();
      cuts_.clear();
    } else if (n == "crash") {
      AllowOnly(c, {});
      CmdCrash(Arg(c, 0));
    } else if (n == "restart") {
      AllowOnly(c, {});
      CmdRestart(Arg(c, 0));
    } else if (n == "snapshot" || n == "compact") {
      CmdSnapshot(c, n == "compact");
    } else if (n == "status") {
      AllowOnly(c, {});
      CmdStatus(Arg(c, 0));
    } else if (n == "raft-log") {
      AllowOnly(c, {});
      CmdRaftLog(Arg(c, 0));
    } else if (n == "raft-state") {
      AllowOnly(c, {});
      CmdRaftState();
    } else {
      throw CommandError("unknown command '" + n + "'");
    }
  } catch (const CommandError& e) {
    Out("", std::string("error: ") + e.what());
  }
  if (out_.empty()) return "ok";
  std::string out = std::move(out_);
  out_.clear();
  out.pop_back();  // trailing newline
  return out;
}

// ---------------------------------------------------------------------------
// Nodes and observation

ScenarioDriver::Node& ScenarioDriver::Get(NodeId id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) throw CommandError("no node " + std::to_string(id));
  return it->second;
}

RawNode& ScenarioDriver::Live(NodeId id) {
  Node& n = Get(id);
  if (!n.raw) throw CommandError("node " + std::to_string(id) + " is down");
  return *n.raw;
}

bool ScenarioDriver::LinkCut(NodeId a, NodeId b) const {
  return isolated_.count(a) || isolated_.count(b) || cuts_.count(std::minmax(a, b));
}

ScenarioDriver::Observed ScenarioDriver::Observe(NodeId id) const {
  auto it = nodes_.find(id);
  if (it == nodes_.end() || !it->second.raw) return {};
  NodeStatus s = it->second.raw->GetStatus();
  return Observed{s.role, s.hard_state.term, s.hard_state.vote, s.leader};
}

template <typename Fn>
void ScenarioDriver::Watch(NodeId id, const std::string& indent, Fn&& fn) {
  Observed before = Observe(id);
  fn();
  ReportChange(id, before, indent);
  CheckInvariants(id, indent);
}

void ScenarioDriver::ReportChange(NodeId id, const Observed& before, const std::string& indent) {
  if (!nodes_.count(id) || !nodes_.at(id).raw) return;
  Observed now = Observe(id);
  if (now == before) return;
  Out(indent, std::to_string(id) + " is now " + RoleName(now.role) +
                  " term=" + std::to_string(now.term) + " vote=" + std::to_string(now.vote) +
                  " lead=" + std::to_string(now.lead));
}

void ScenarioDriver::CheckInvariants(NodeId id, const std::string& indent) {
  if (!nodes_.count(id) || !nodes_.at(id).raw) return;
  const RawNode& r = *nodes_.at(id).raw;
  if (r.role() != Role::kLeader) return;
  auto [it, inserted] = leaders_.emplace(r.term(), id);
  if (!inserted && it->second != id) {
    Out(indent, "VIOLATION: two leaders in term " + std::to_string(r.term()) + ": " +
                    std::to_string(it->second) + " and " + std::to_string(id));
  }
}

void ScenarioDriver::StartNode(NodeId id) {
  Node& n = Get(id);
  SnapshotMeta snap = n.storage->Snapshot().value();
  n.config.applied = snap.index;
  n.applied = snap.index;
  n.confs.clear();
  n.confs[snap.index] = snap.conf;
  auto r = RawNode::Create(n.config, n.storage.get());
  if (!r.ok()) throw CommandError("RawNode::Create: " + r.status().ToString());
  n.raw = std::move(r).value();
}

// ---------------------------------------------------------------------------
// Setup commands

void ScenarioDriver::CmdAddNodes(const Command& c) {
  AllowOnly(c, {"voters", "learners", "index", "pre-vote", "check-quorum", "election", "heartbeat",
                "seed", "max-msg-bytes", "max-inflight", "read-only"});
  std::uint64_t count = Arg(c, 0);
  bool empty = std::find(c.args.begin(), c.args.end(), "empty") != c.args.end();
  std::vector<NodeId> voters;
  if (!empty) {
    if (!c.opts.count("voters")) throw CommandError("add-nodes needs voters=(..) or empty");
    voters = ParseList(c.opts.at("voters"));
  }
  for (std::uint64_t i = 0; i < count; ++i) {
    NodeId id = nodes_.empty() ? 1 : nodes_.rbegin()->first + 1;
    Node n;
    n.config.id = id;
    n.config.pre_vote = ParseBool(Opt(c, "pre-vote", "true"));
    n.config.check_quorum = ParseBool(Opt(c, "check-quorum", "true"));
    n.config.election_ticks = static_cast<int>(ParseNumber(Opt(c, "election", "10")));
    n.config.heartbeat_ticks = static_cast<int>(ParseNumber(Opt(c, "heartbeat", "1")));
    n.config.seed = ParseNumber(Opt(c, "seed", "1"));
    n.config.max_msg_bytes = ParseNumber(Opt(c, "max-msg-bytes", "1048576"));
    n.config.max_inflight_msgs =
        static_cast<std::uint32_t>(ParseNumber(Opt(c, "max-inflight", "256")));
    std::string ro = Opt(c, "read-only", "safe");
    if (ro != "safe" && ro != "lease") throw CommandError("read-only=safe|lease");
    n.config.read_only = ro == "lease" ? ReadOnlyOption::kLeaseBased : ReadOnlyOption::kSafe;
    n.storage = std::make_unique<MemoryStorage>();
    if (!empty) {
      if (c.opts.count("index")) {
        Index idx = ParseNumber(c.opts.at("index"));
        ConfState conf;
        conf.voters.insert(voters.begin(), voters.end());
        auto learners = ParseList(Opt(c, "learners", "()"));
        conf.learners.insert(learners.begin(), learners.end());
        Status s = n.storage->ApplySnapshot(SnapshotMeta{idx, 1, conf});
        if (!s.ok()) throw CommandError(s.ToString());
        n.storage->SetHardState(HardState{1, kNoNode, idx});
      } else {
        Status s = n.storage->Bootstrap(voters);
        if (!s.ok()) throw CommandError(s.ToString());
      }
    }
    nodes_.emplace(id, std::move(n));
    StartNode(id);
  }
}

void ScenarioDriver::CmdSetLog(const Command& c) {
  AllowOnly(c, {"terms", "term", "vote", "commit"});
  NodeId id = Arg(c, 0);
  Node& n = Get(id);
  SnapshotMeta snap = n.storage->Snapshot().value();
  if (snap.index == 0) throw CommandError("set-log needs a node added with index=I");
  auto terms = ParseList(Opt(c, "terms", "()"));
  auto storage = std::make_unique<MemoryStorage>();
  (void)storage->ApplySnapshot(snap);
  std::vector<Entry> ents;
  Index idx = snap.index;
  for (std::uint64_t t : terms) ents.push_back(Entry{t, ++idx, EntryType::kNormal, {}});
  if (!storage->Append(ents).ok()) throw CommandError("set-log: append failed");
  HardState hs;
  hs.term = ParseNumber(Opt(c, "term", "1"));
  hs.vote = ParseNumber(Opt(c, "vote", "0"));
  hs.commit = ParseNumber(Opt(c, "commit", std::to_string(snap.index)));
  storage->SetHardState(hs);
  n.raw.reset();
  n.storage = std::move(storage);
  StartNode(id);
}

// ---------------------------------------------------------------------------
// Inputs

void ScenarioDriver::CmdTick(const Command& c) {
  AllowOnly(c, {});
  NodeId id = Arg(c, 0);
  int count = 1;
  if (c.name == "tick-heartbeat") {
    count = Get(id).config.heartbeat_ticks;
  } else if (c.args.size() > 1) {
    count = static_cast<int>(ParseNumber(c.args[1]));
  }
  Watch(id, "", [&] {
    RawNode& r = Live(id);
    for (int i = 0; i < count; ++i) r.Tick();
  });
}

void ScenarioDriver::CmdTickElection(const Command& c) {
  AllowOnly(c, {});
  NodeId id = Arg(c, 0);
  int max = 2 * Get(id).config.election_ticks;
  Watch(id, "", [&] {
    // Stops when the role or term changes, or when a non-leader has something to send
    // (a pre-candidate whose timeout fired again stays a pre-candidate).
    RawNode& r = Live(id);
    Role role = r.role();
    Term term = r.term();
    bool had_ready = r.HasReady();
    int i = 0;
    bool fired = false;
    while (i < max && !fired) {
      r.Tick();
      ++i;
      fired = r.role() != role || r.term() != term ||
              (role != Role::kLeader && !had_ready && r.HasReady());
    }
    Out("", "ticked " + std::to_string(i) + " time(s)" + (fired ? "" : ", no change"));
  });
}

void ScenarioDriver::CmdProposeConfChange(const Command& c) {
  AllowOnly(c, {});
  NodeId id = Arg(c, 0);
  NeedArgs(c, 3);
  ConfChange cc;
  const std::string& t = c.args[1];
  if (t == "add-learner") {
    cc.type = ConfChangeType::kAddLearner;
  } else if (t == "add-voter") {
    cc.type = ConfChangeType::kAddVoter;
  } else if (t == "remove") {
    cc.type = ConfChangeType::kRemoveNode;
  } else {
    throw CommandError("conf change type must be add-learner|add-voter|remove");
  }
  cc.node = ParseNumber(c.args[2]);
  Watch(id, "", [&] {
    auto r = Live(id).ProposeConfChange(cc);
    if (r.ok()) {
      Out("", "proposed at " + std::to_string(r->term) + "/" + std::to_string(r->index));
    } else {
      Out("", "refused: " + r.status().ToString());
    }
  });
}

// ---------------------------------------------------------------------------
// Ready handling: the durability contract of raw_node.h, step by step.

void ScenarioDriver::Apply(NodeId id, const Entry& e, const std::string& indent) {
  Node& n = nodes_.at(id);
  if (e.index != n.applied + 1) {
    Out(indent, "VIOLATION: " + std::to_string(id) + " applies index " + std::to_string(e.index) +
                    " after " + std::to_string(n.applied));
  }
  n.applied = e.index;
  auto [it, inserted] = applied_anywhere_.emplace(e.index, e);
  if (!inserted && !(it->second == e)) {
    Out(indent, "VIOLATION: " + std::to_string(id) + " applies " + RenderEntry(e) +
                    " but another node applied " + RenderEntry(it->second));
  }
  if (e.type != EntryType::kConfChange) return;
  ConfChange cc;
  if (!DecodeConfChange(e.data, &cc)) return;
  auto next = ApplyConfChange(n.confs.rbegin()->second, cc);
  if (next.ok()) n.confs[e.index] = std::move(next).value();
}

bool ScenarioDriver::ProcessReady(NodeId id, const std::string& indent, bool crash_before_persist) {
  RawNode& r = Live(id);
  Node& n = nodes_.at(id);
  if (!r.HasReady()) return false;
  std::string in = indent + "  ";
  Out(indent, "> " + std::to_string(id) + " handling Ready");
  Observed before = Observe(id);
  Ready rd = r.GetReady();
  if (rd.Empty()) {
    Out(in, "WARNING: HasReady() was true but the Ready is empty");
    r.Advance(rd);
    return false;
  }
  out_ += RenderReady(rd, in);
  // 1. Messages that may leave at once.
  for (const auto& m : rd.messages) network_.push_back(m);
  if (crash_before_persist) {
    Out(in, "crashed before persisting: messages_after_persist lost");
    CmdCrash(id);
    return true;
  }
  // 2. Persist snapshot, entries, hard state.
  if (rd.snapshot) {
    auto it = applied_anywhere_.find(rd.snapshot->index);
    if (it != applied_anywhere_.end() && it->second.term != rd.snapshot->term) {
      Out(in, "VIOLATION: snapshot " + RenderSnapshot(*rd.snapshot) + " disagrees with applied " +
                  RenderEntry(it->second));
    }
    Status s = n.storage->ApplySnapshot(*rd.snapshot);
    if (!s.ok()) Out(in, "storage ApplySnapshot: " + s.ToString());
    n.applied = rd.snapshot->index;
    n.confs.clear();
    n.confs[rd.snapshot->index] = rd.snapshot->conf;
  }
  if (!rd.entries.empty()) {
    Status s = n.storage->Append(rd.entries);
    if (!s.ok()) Out(in, "storage Append: " + s.ToString());
  }
  if (rd.hard_state) n.storage->SetHardState(*rd.hard_state);
  // 3. Messages that assert persisted state.
  for (const auto& m : rd.messages_after_persist) network_.push_back(m);
  // 4. Apply.
  for (const auto& e : rd.committed_entries) Apply(id, e, in);
  // 5. Advance.
  r.Advance(rd);
  ReportChange(id, before, in);
  CheckInvariants(id, in);
  return true;
}

void ScenarioDriver::CmdProcessReady(const Command& c) {
  AllowOnly(c, {});
  bool crash = false;
  std::vector<NodeId> ids;
  for (const auto& a : c.args) {
    if (a == "crash-before-persist") {
      crash = true;
    } else {
      ids.push_back(ParseNumber(a));
    }
  }
  if (ids.empty()) throw CommandError("process-ready needs a node");
  for (NodeId id : ids) {
    if (!ProcessReady(id, "", crash)) Out("", "> " + std::to_string(id) + " has no Ready");
  }
}

// ---------------------------------------------------------------------------
// Network

void ScenarioDriver::Deliver(const std::vector<Message>& msgs, bool drop,
                             const std::string& indent) {
  std::map<NodeId, std::vector<const Message*>> by_to;
  for (const auto& m : msgs) by_to[m.to].push_back(&m);
  std::string in = indent + "  ";
  for (const auto& [to, list] : by_to) {
    Out(indent, "> " + std::to_string(to) + (drop ? " dropping messages" : " receiving messages"));
    for (const Message* m : list) {
      std::string line = RenderMessage(*m);
      if (drop) {
        Out(in, line);
      } else if (LinkCut(m->from, m->to)) {
        Out(in, line + " (dropped: link cut)");
      } else if (!nodes_.count(to) || !nodes_.at(to).raw) {
        Out(in, line + " (dropped: " + std::to_string(to) + " is down)");
      } else {
        Out(in, line);
        Watch(to, in, [&] {
          Status s = nodes_.at(to).raw->Step(*m);
          if (!s.ok()) Out(in, "  step refused: " + s.ToString());
        });
      }
    }
  }
}

void ScenarioDriver::CmdDeliver(const Command& c) {
  AllowOnly(c, {"from", "to", "type", "skip", "count"});
  bool drop = false;
  std::set<NodeId> to;
  for (const auto& a : c.args) {
    if (a == "drop") {
      drop = true;
    } else {
      to.insert(ParseNumber(a));
    }
  }
  if (c.opts.count("to")) to.insert(ParseNumber(c.opts.at("to")));
  std::optional<NodeId> from;
  if (c.opts.count("from")) from = ParseNumber(c.opts.at("from"));
  std::optional<MessageType> type;
  if (c.opts.count("type")) type = ParseMessageType(c.opts.at("type"));
  std::uint64_t skip = ParseNumber(Opt(c, "skip", "0"));
  std::uint64_t count = c.opts.count("count") ? ParseNumber(c.opts.at("count")) : UINT64_MAX;

  std::vector<Message> picked, rest;
  for (auto& m : network_) {
    bool match =
        (to.empty() || to.count(m.to)) && (!from || m.from == *from) && (!type || m.type == *type);
    if (match && skip > 0) {
      --skip;
      match = false;
    }
    if (match && picked.size() < count) {
      picked.push_back(std::move(m));
    } else {
      rest.push_back(std::move(m));
    }
  }
  network_ = std::move(rest);
  if (picked.empty()) {
    Out("", "no messages");
    return;
  }
  Deliver(picked, drop, "");
}

void ScenarioDriver::CmdStabilize(const Command& c) {
  AllowOnly(c, {});
  std::set<NodeId> ids;
  for (const auto& a : c.args) ids.insert(ParseNumber(a));
  if (ids.empty()) {
    for (const auto& [id, n] : nodes_) ids.insert(id);
  }
  constexpr int kRoundsMax = 1000;
  for (int round = 0; round < kRoundsMax; ++round) {
    bool moved = false;
    for (NodeId id : ids) {
      if (nodes_.at(id).raw) moved |= ProcessReady(id, "", false);
    }
    std::vector<Message> picked, rest;
    for (auto& m : network_) (ids.count(m.to) ? picked : rest).push_back(std::move(m));
    network_ = std::move(rest);
    if (!picked.empty()) {
      moved = true;
      Deliver(picked, false, "");
    }
    if (!moved) return;
  }
  Out("", "error: stabilize did not converge after " + std::to_string(kRoundsMax) + " rounds");
}

// ---------------------------------------------------------------------------
// Faults and storage

void ScenarioDriver::CmdCrash(NodeId id) {
  Node& n = Get(id);
  if (!n.raw) throw CommandError("node " + std::to_string(id) + " is already down");
  n.raw.reset();
  std::size_t before = network_.size();
  std::erase_if(network_, [&](const Message& m) { return m.to == id; });
  std::size_t lost = before - network_.size();
  if (lost > 0) {
    Out("", "dropped " + std::to_string(lost) + " queued message(s) to " + std::to_string(id));
  }
}

void ScenarioDriver::CmdRestart(NodeId id) {
  Node& n = Get(id);
  if (n.raw) throw CommandError("node " + std::to_string(id) + " is running");
  StartNode(id);
  HardState hs = n.storage->InitialHardState();
  Out("", std::to_string(id) + " restarted: " + RenderHardState(hs) +
              " last=" + std::to_string(n.storage->LastIndex()));
}

void ScenarioDriver::CmdSnapshot(const Command& c, bool compact) {
  AllowOnly(c, {});
  NodeId id = Arg(c, 0);
  Index idx = Arg(c, 1);
  Node& n = Get(id);
  if (idx > n.applied) {
    throw CommandError("index " + std::to_string(idx) + " is beyond applied " +
                       std::to_string(n.applied));
  }
  SnapshotMeta snap = n.storage->Snapshot().value();
  if (snap.index < idx) {
    auto conf_it = std::prev(n.confs.upper_bound(idx));
    auto r = n.storage->CreateSnapshot(idx, conf_it->second);
    if (!r.ok()) throw CommandError(r.status().ToString());
    Out("", "snapshot at " + RenderSnapshot(*r));
  }
  if (compact) {
    Status s = n.storage->Compact(idx);
    if (!s.ok()) throw CommandError(s.ToString());
    Out("", "compacted; log starts at " + std::to_string(n.storage->FirstIndex()));
  }
}

// ---------------------------------------------------------------------------
// Inspection

void ScenarioDriver::CmdStatus(NodeId id) {
  NodeStatus s = Live(id).GetStatus();
  Out("", std::to_string(id) + ": " + RoleName(s.role) + " " + RenderHardState(s.hard_state) +
              " lead=" + std::to_string(s.leader) + " applied=" + std::to_string(s.applied) +
              " last=" + std::to_string(s.last_index) + " " + RenderConf(s.conf));
  if (s.lead_transferee != kNoNode) {
    Out("", "transferring leadership to " + std::to_string(s.lead_transferee));
  }
  for (const auto& p : s.peers) {
    Out("  ", std::to_string(p.id) + ": " + (p.voter ? "voter" : "learner") +
                  " match=" + std::to_string(p.match) + " next=" + std::to_string(p.next) + " " +
                  ProgressStateName(p.state) + (p.recent_active ? " active" : ""));
  }
}

void ScenarioDriver::CmdRaftLog(NodeId id) {
  Node& n = Get(id);
  SnapshotMeta snap = n.storage->Snapshot().value();
  Out("", "HardState: " + RenderHardState(n.storage->InitialHardState()));
  if (snap.index > 0) Out("", "Snapshot: " + RenderSnapshot(snap));
  Index lo = n.storage->FirstIndex(), hi = n.storage->LastIndex();
  if (lo > hi) {
    Out("", "log is empty after index " + std::to_string(lo - 1));
    return;
  }
  auto ents = n.storage->Entries(lo, hi + 1, UINT64_MAX);
  if (!ents.ok()) throw CommandError(ents.status().ToString());
  for (const auto& e : *ents) Out("", RenderEntry(e));
}

void ScenarioDriver::CmdRaftState() {
  for (const auto& [id, n] : nodes_) {
    std::string cut = isolated_.count(id) ? " (isolated)" : "";
    if (!n.raw) {
      Out("", std::to_string(id) + ": down" + cut);
      continue;
    }
    NodeStatus s = n.raw->GetStatus();
    Out("", std::to_string(id) + ": " + RoleName(s.role) + " " + RenderHardState(s.hard_state) +
                " lead=" + std::to_string(s.leader) + " applied=" + std::to_string(s.applied) +
                " last=" + std::to_string(s.last_index) + cut);
  }
}

}  // namespace raft::scenario
