#include "scenario_render.h"

#include <set>
#include <string>

namespace raft::scenario {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c < 0x20 || c > 0x7e) {
      static const char kHex[] = "0123456789abcdef";
      auto u = static_cast<unsigned char>(c);
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string RenderIds(const std::set<NodeId>& ids) {
  std::string out = "(";
  bool first = true;
  for (NodeId id : ids) {
    if (!first) out += ",";
    first = false;
    out += std::to_string(id);
  }
  return out + ")";
}

const char* ConfChangeTypeName(ConfChangeType t) {
  switch (t) {
    case ConfChangeType::kAddLearner:
      return "add-learner";
    case ConfChangeType::kAddVoter:
      return "add-voter";
    case ConfChangeType::kRemoveNode:
      return "remove";
  }
  return "unknown";
}

std::string LogPos(Term term, Index index) {
  return std::to_string(term) + "/" + std::to_string(index);
}

}  // namespace

std::string RenderEntry(const Entry& e) {
  std::string out = LogPos(e.term, e.index);
  if (e.type == EntryType::kConfChange) {
    ConfChange cc;
    if (!DecodeConfChange(e.data, &cc)) return out + " ConfChange <malformed> " + Quote(e.data);
    out += " ConfChange ";
    out += ConfChangeTypeName(cc.type);
    out += ' ';
    out += std::to_string(cc.node);
    if (!cc.context.empty()) out += " ctx=" + Quote(cc.context);
    return out;
  }
  return out + " Normal " + Quote(e.data);
}

std::string RenderConf(const ConfState& c) {
  std::string out = "voters=" + RenderIds(c.voters);
  if (!c.learners.empty()) out += " learners=" + RenderIds(c.learners);
  return out;
}

std::string RenderSnapshot(const SnapshotMeta& s) {
  return LogPos(s.term, s.index) + " " + RenderConf(s.conf);
}

std::string RenderHardState(const HardState& hs) {
  return "term=" + std::to_string(hs.term) + " vote=" + std::to_string(hs.vote) +
         " commit=" + std::to_string(hs.commit);
}

std::string RenderMessage(const Message& m) {
  std::string out = std::to_string(m.from) + "->" + std::to_string(m.to) + " " +
                    MessageTypeName(m.type) + " term=" + std::to_string(m.term);
  switch (m.type) {
    case MessageType::kAppend:
      out += " log=" + LogPos(m.log_term, m.index) + " commit=" + std::to_string(m.commit);
      break;
    case MessageType::kAppendResponse:
      out += " index=" + std::to_string(m.index);
      if (m.reject) out += " rejected hint=" + LogPos(m.log_term, m.reject_hint);
      break;
    case MessageType::kVote:
    case MessageType::kPreVote:
      out += " log=" + LogPos(m.log_term, m.index);
      if (m.campaign_transfer) out += " transfer";
      break;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
      if (m.reject) out += " rejected";
      break;
    case MessageType::kHeartbeat:
      out += " commit=" + std::to_string(m.commit);
      if (m.read_seq != 0) out += " read_seq=" + std::to_string(m.read_seq);
      break;
    case MessageType::kHeartbeatResponse:
      if (m.read_seq != 0) out += " read_seq=" + std::to_string(m.read_seq);
      break;
    case MessageType::kSnapshot:
      out += " snapshot=" + RenderSnapshot(m.snapshot);
      break;
    case MessageType::kTimeoutNow:
      out += " log=" + LogPos(m.log_term, m.index);
      break;
    case MessageType::kReadIndex:
      out += " ctx=" + Quote(m.context);
      break;
    case MessageType::kReadIndexResponse:
      out += " index=" + std::to_string(m.index) + " ctx=" + Quote(m.context);
      if (m.reject) out += " rejected";
      break;
  }
  if (!m.entries.empty()) {
    out += " entries=[";
    for (std::size_t i = 0; i < m.entries.size(); ++i) {
      if (i > 0) out += ", ";
      out += RenderEntry(m.entries[i]);
    }
    out += "]";
  }
  return out;
}

std::string RenderReady(const Ready& rd, const std::string& indent) {
  std::string out;
  auto line = [&](const std::string& s) { out += indent + s + "\n"; };
  if (rd.soft_state) {
    line(std::string("State: ") + RoleName(rd.soft_state->role) +
         " lead=" + std::to_string(rd.soft_state->leader));
  }
  if (rd.hard_state) line("HardState: " + RenderHardState(*rd.hard_state));
  if (rd.snapshot) line("Snapshot: " + RenderSnapshot(*rd.snapshot));
  if (!rd.entries.empty()) {
    line("Entries:");
    for (const auto& e : rd.entries) line("  " + RenderEntry(e));
  }
  if (!rd.messages.empty()) {
    line("Messages:");
    for (const auto& m : rd.messages) line("  " + RenderMessage(m));
  }
  if (!rd.messages_after_persist.empty()) {
    line("MessagesAfterPersist:");
    for (const auto& m : rd.messages_after_persist) line("  " + RenderMessage(m));
  }
  if (!rd.committed_entries.empty()) {
    line("CommittedEntries:");
    for (const auto& e : rd.committed_entries) line("  " + RenderEntry(e));
  }
  if (!rd.read_states.empty()) {
    line("ReadStates:");
    for (const auto& r : rd.read_states) {
      line("  index=" + std::to_string(r.index) + " ctx=" + Quote(r.context));
    }
  }
  if (rd.removed) line("Removed: true");
  return out;
}

}  // namespace raft::scenario
