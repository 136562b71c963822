#include "wire/message_codec.h"

#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <set>
#include <utility>

#include "raft/coding.h"
#include "wire/wire_format.h"

namespace raft::wire {

using raft::ByteReader;
using raft::ByteWriter;

namespace {

constexpr std::uint8_t kMessageFlagsKnown =
    kMessageFlagReject | kMessageFlagCampaignTransfer | kMessageFlagQuiesce;

bool IsMessageType(std::uint8_t t) { return t >= 1 && t <= kMessageTypeMax; }
bool IsEntryType(std::uint8_t t) {
  return t == static_cast<std::uint8_t>(EntryType::kNormal) ||
         t == static_cast<std::uint8_t>(EntryType::kConfChange);
}

Status Invalid(std::string message) {
  return Status(ErrorCode::kInvalidArgument, "wire: cannot encode raft_message: " + message);
}

Status CheckEncodable(const Message& m) {
  if (!IsMessageType(static_cast<std::uint8_t>(m.type))) {
    return Invalid(fmt::format("unknown message type {}", static_cast<unsigned>(m.type)));
  }
  if (m.context.size() > kContextBytesMax) {
    return Invalid(fmt::format("context of {} bytes exceeds the limit of {}", m.context.size(),
                               kContextBytesMax));
  }
  if (m.entries.size() > kEntriesPerMessageMax) {
    return Invalid(
        fmt::format("{} entries exceed the limit of {}", m.entries.size(), kEntriesPerMessageMax));
  }
  for (const Entry& e : m.entries) {
    if (!IsEntryType(static_cast<std::uint8_t>(e.type))) {
      return Invalid(
          fmt::format("entry {} has unknown type {}", e.index, static_cast<unsigned>(e.type)));
    }
    if (e.data.size() > std::numeric_limits<std::uint32_t>::max()) {
      return Invalid(fmt::format("entry {} of {} bytes is too large", e.index, e.data.size()));
    }
  }
  if (m.snapshot.conf.voters.size() > kConfNodesMax ||
      m.snapshot.conf.learners.size() > kConfNodesMax) {
    return Invalid(fmt::format("snapshot membership of {} voters and {} learners exceeds {} each",
                               m.snapshot.conf.voters.size(), m.snapshot.conf.learners.size(),
                               kConfNodesMax));
  }
  return Status::Ok();
}

void WriteIdSet(ByteWriter& w, const std::set<NodeId>& ids) {
  w.U32(static_cast<std::uint32_t>(ids.size()));
  for (NodeId id : ids) w.U64(id);  // std::set iterates in increasing order
}

// id_set(kConfNodesMax): strictly increasing, so the encoding is canonical.
std::set<NodeId> ReadIdSet(ByteReader& r, const char* field) {
  std::set<NodeId> ids;
  const std::uint32_t n = r.Count(field, kConfNodesMax, 8);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    const NodeId id = r.U64(field);
    if (!ids.empty() && id <= *ids.rbegin()) {
      r.Fail(fmt::format("field '{}' is not strictly increasing ({} after {})", field, id,
                         *ids.rbegin()));
      break;
    }
    ids.insert(ids.end(), id);
  }
  return ids;
}

}  // namespace

Status AppendMessage(const Message& m, std::string* out) {
  if (Status s = CheckEncodable(m); !s.ok()) return s;
  std::uint8_t flags = 0;
  if (m.reject) flags |= kMessageFlagReject;
  if (m.campaign_transfer) flags |= kMessageFlagCampaignTransfer;
  if (m.quiesce) flags |= kMessageFlagQuiesce;
  ByteWriter w(out);
  w.U8(static_cast<std::uint8_t>(m.type));
  w.U8(flags);
  w.U64(m.from);
  w.U64(m.to);
  w.U64(m.term);
  w.U64(m.log_term);
  w.U64(m.index);
  w.U64(m.commit);
  w.U64(m.reject_hint);
  w.U64(m.read_seq);
  w.Bytes(m.context);
  w.U32(static_cast<std::uint32_t>(m.entries.size()));
  for (const Entry& e : m.entries) {
    w.U64(e.term);
    w.U64(e.index);
    w.U8(static_cast<std::uint8_t>(e.type));
    w.Bytes(e.data);
  }
  w.U64(m.snapshot.index);
  w.U64(m.snapshot.term);
  WriteIdSet(w, m.snapshot.conf.voters);
  WriteIdSet(w, m.snapshot.conf.learners);
  return Status::Ok();
}

Result<std::string> EncodeMessage(const Message& m) {
  std::string out;
  std::size_t size = kMessageFixedBytes + m.context.size() +
                     8 * (m.snapshot.conf.voters.size() + m.snapshot.conf.learners.size());
  for (const Entry& e : m.entries) size += kEntryFixedBytes + e.data.size();
  out.reserve(size);
  if (Status s = AppendMessage(m, &out); !s.ok()) return s;
  return out;
}

Result<Message> DecodeMessage(std::string_view payload) {
  ByteReader r(payload, "raft_message");
  Message m;
  const std::uint8_t type = r.U8("type");
  if (r.ok() && !IsMessageType(type)) r.Fail(fmt::format("unknown message type {}", type));
  m.type = static_cast<MessageType>(type);
  const std::uint8_t flags = r.U8("flags");
  if (r.ok() && (flags & ~kMessageFlagsKnown) != 0) {
    r.Fail(fmt::format("reserved flag bits {:#04x} set", flags & ~kMessageFlagsKnown));
  }
  m.reject = (flags & kMessageFlagReject) != 0;
  m.campaign_transfer = (flags & kMessageFlagCampaignTransfer) != 0;
  m.quiesce = (flags & kMessageFlagQuiesce) != 0;
  m.from = r.U64("from");
  m.to = r.U64("to");
  m.term = r.U64("term");
  m.log_term = r.U64("log_term");
  m.index = r.U64("index");
  m.commit = r.U64("commit");
  m.reject_hint = r.U64("reject_hint");
  m.read_seq = r.U64("read_seq");
  m.context = r.Bytes("context", kContextBytesMax);
  const std::uint32_t n = r.Count("entry_count", kEntriesPerMessageMax, kEntryFixedBytes);
  m.entries.reserve(n);  // Count() bounded n by the bytes remaining
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    Entry& e = m.entries.emplace_back();
    e.term = r.U64("entry.term");
    e.index = r.U64("entry.index");
    const std::uint8_t entry_type = r.U8("entry.type");
    if (r.ok() && !IsEntryType(entry_type)) {
      r.Fail(fmt::format("entry {} has unknown type {}", i, entry_type));
    }
    e.type = static_cast<EntryType>(entry_type);
    e.data = r.Bytes("entry.data", std::numeric_limits<std::uint32_t>::max());
  }
  m.snapshot.index = r.U64("snapshot.index");
  m.snapshot.term = r.U64("snapshot.term");
  m.snapshot.conf.voters = ReadIdSet(r, "snapshot.voters");
  m.snapshot.conf.learners = ReadIdSet(r, "snapshot.learners");
  if (Status s = r.Finish(); !s.ok()) return s;
  return m;
}

}  // namespace raft::wire
