#include "trace.h"

#include <fmt/format.h>

#include <cstdio>

namespace raft::sim {

void Trace::Log(std::int64_t tick, const std::string& line) const {
  if (!on_) return;
  std::printf("%6lld %s\n", static_cast<long long>(tick), line.c_str());
}

std::string DescribeMessage(const Message& m) {
  std::string s = fmt::format("n{}->n{} {} t{}", m.from, m.to, MessageTypeName(m.type), m.term);
  switch (m.type) {
    case MessageType::kAppend:
      s += fmt::format(" prev={}/{} commit={}", m.index, m.log_term, m.commit);
      if (!m.entries.empty()) {
        s += fmt::format(" ents=[{}..{}]", m.entries.front().index, m.entries.back().index);
      }
      break;
    case MessageType::kAppendResponse:
      s += m.reject ? fmt::format(" REJECT {} hint={}/{}", m.index, m.reject_hint, m.log_term)
                    : fmt::format(" ok {}", m.index);
      break;
    case MessageType::kVote:
    case MessageType::kPreVote:
      s +=
          fmt::format(" last={}/{}{}", m.index, m.log_term, m.campaign_transfer ? " transfer" : "");
      break;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
      s += m.reject ? " REJECT" : " grant";
      break;
    case MessageType::kHeartbeat:
      s += fmt::format(" commit={} seq={}{}", m.commit, m.read_seq, m.quiesce ? " QUIESCE" : "");
      break;
    case MessageType::kHeartbeatResponse:
      s += fmt::format(" seq={}", m.read_seq);
      break;
    case MessageType::kSnapshot:
      s += fmt::format(" snap={}/{} {}", m.snapshot.index, m.snapshot.term,
                       DescribeConf(m.snapshot.conf));
      break;
    case MessageType::kReadIndex:
      s += " ctx=" + m.context;
      break;
    case MessageType::kReadIndexResponse:
      s += fmt::format(" index={} ctx={}{}", m.index, m.context, m.reject ? " REJECT" : "");
      break;
    case MessageType::kTimeoutNow:
      break;
  }
  return s;
}

std::string DescribeHardState(const HardState& hs) {
  return fmt::format("{{term={} vote={} commit={}}}", hs.term, hs.vote, hs.commit);
}

std::string DescribeConf(const ConfState& c) {
  std::string s = "{v:";
  for (NodeId id : c.voters) s += fmt::format("{},", id);
  s += " l:";
  for (NodeId id : c.learners) s += fmt::format("{},", id);
  return s + "}";
}

}  // namespace raft::sim
