// ConfChange payload codec and the single-step membership rule.
//
// Payload grammar (little-endian):
//   conf_change := version:u8 (=1) type:u8 node:u64 context:bytes(rest of payload)
#include <string>
#include <string_view>

#include "raft/coding.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace raft {
namespace {
constexpr std::uint8_t kConfChangeVersion = 1;
constexpr std::size_t kConfChangeHeaderBytes = 1 + 1 + 8;
}  // namespace

std::string EncodeConfChange(const ConfChange& cc) {
  std::string out;
  out.reserve(kConfChangeHeaderBytes + cc.context.size());
  raft::ByteWriter w(&out);
  w.U8(kConfChangeVersion);
  w.U8(static_cast<std::uint8_t>(cc.type));
  w.U64(cc.node);
  w.Raw(cc.context);
  return out;
}

bool DecodeConfChange(const std::string& data, ConfChange* out) {
  raft::ByteReader r(data, "conf_change");
  if (r.U8("version") != kConfChangeVersion) r.Fail("unknown version");
  const std::uint8_t type = r.U8("type");
  if (type > static_cast<std::uint8_t>(ConfChangeType::kRemoveNode)) r.Fail("unknown type");
  const std::uint64_t node = r.U64("node");
  const std::string_view context = r.Rest();
  if (!r.Finish().ok()) return false;
  out->type = static_cast<ConfChangeType>(type);
  out->node = node;
  out->context = std::string(context);
  return true;
}

Result<ConfState> ApplyConfChange(const ConfState& conf, const ConfChange& cc) {
  if (cc.node == kNoNode) return Status(ErrorCode::kInvalidArgument, "conf change names node 0");
  ConfState next = conf;
  switch (cc.type) {
    case ConfChangeType::kAddLearner:
      if (conf.voters.count(cc.node))
        return Status(ErrorCode::kInvalidArgument, "node is a voter; demotion is not supported");
      if (conf.learners.count(cc.node))
        return Status(ErrorCode::kInvalidArgument, "node is already a learner");
      next.learners.insert(cc.node);
      break;
    case ConfChangeType::kAddVoter:
      if (conf.voters.count(cc.node))
        return Status(ErrorCode::kInvalidArgument, "node is already a voter");
      next.learners.erase(cc.node);
      next.voters.insert(cc.node);
      break;
    case ConfChangeType::kRemoveNode:
      if (!conf.Contains(cc.node))
        return Status(ErrorCode::kInvalidArgument, "node is not a member");
      next.voters.erase(cc.node);
      next.learners.erase(cc.node);
      if (next.voters.empty())
        return Status(ErrorCode::kInvalidArgument, "cannot remove the last voter");
      break;
  }
  return next;
}

std::vector<Entry> BootstrapEntries(const std::vector<NodeId>& voters) {
  std::vector<Entry> out;
  Index i = 1;
  for (NodeId id : voters) {
    Entry e;
    e.term = 1;
    e.index = i++;
    e.type = EntryType::kConfChange;
    e.data = EncodeConfChange(ConfChange{ConfChangeType::kAddVoter, id, {}});
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace raft
