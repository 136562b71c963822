// Payload codec of RaftMessage frames: one raft::Message per payload
// (docs/wire-protocol.md, section 4.2). Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "raft/message.h"
#include "raft/status.h"

namespace raft::wire {

// Appends the raft_message encoding of `m` to *out. Every field is encoded for every
// type, so DecodeMessage(EncodeMessage(m)) == m. kInvalidArgument (and *out unchanged)
// if `m` breaks a grammar limit: an unknown message or entry type, more than
// kEntriesPerMessageMax entries, a context above kContextBytesMax, more than
// kConfNodesMax voters or learners, or an entry larger than 4 GiB.
Status AppendMessage(const Message& m, std::string* out);

// The encoding alone. Errors as AppendMessage.
Result<std::string> EncodeMessage(const Message& m);

// Decodes a payload that must hold exactly one raft_message. kCorruption naming the
// field on any grammar violation: truncation, an unknown message or entry type,
// reserved flag bits, a limit exceeded, an unsorted id set, trailing bytes. Checks
// grammar only; whether the message makes sense is RawNode::Step's business.
// Allocates at most on the order of payload.size() bytes.
Result<Message> DecodeMessage(std::string_view payload);

}  // namespace raft::wire
