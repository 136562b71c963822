// Deterministic text renderings of core values for the scenario scripts
// (tests/core/testdata/*.txt). Every function returns one line without a newline,
// except RenderReady, which returns zero or more lines, each ending in '\n'.
//
// Formats (stable: checked-in expected output depends on them):
//   entry     2/5 Normal "data"          term/index, type, payload
//             1/3 ConfChange add-voter 3  decoded membership change
//   message   1->2 Append term=2 log=1/4 commit=4 entries=[2/5 Normal "x"]
//   conf      voters=(1,2,3) learners=(4)
#pragma once

#include <string>

#include "raft/message.h"
#include "raft/raw_node.h"
#include "raft/types.h"

namespace raft::scenario {

std::string RenderEntry(const Entry& e);
std::string RenderConf(const ConfState& c);
std::string RenderSnapshot(const SnapshotMeta& s);
std::string RenderHardState(const HardState& hs);
std::string RenderMessage(const Message& m);
// The fields of a Ready, one per line, each line prefixed by `indent`.
std::string RenderReady(const Ready& rd, const std::string& indent);

}  // namespace raft::scenario
