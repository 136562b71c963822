#include "storage/group_replay.h"

#include <fmt/format.h>

namespace raft::storage {

namespace {

Status Corrupt(GroupId g, RecordPos pos, const std::string& what) {
  return Status(ErrorCode::kCorruption,
                fmt::format("shared log: segment {} offset {}: group {}: {}", pos.segment,
                            pos.offset, g, what));
}

}  // namespace

Status GroupLogReplay::Add(const GroupRecord& r, RecordPos pos) {
  if (r.type == GroupRecordType::kSyncMark) return Status::Ok();
  if (removed_.count(r.group)) return Corrupt(r.group, pos, "a record after the group's removal");
  Pass1& g = groups_[r.group];
  switch (r.type) {
    case GroupRecordType::kEntryNormal:
    case GroupRecordType::kEntryConfChange:
      entries_.push_back({r.group, {r.index, r.term, pos, static_cast<std::uint32_t>(r.bytes)}});
      break;
    case GroupRecordType::kHardState:
      g.hard_state = r.hard_state;  // the latest by position
      g.hard_state_pos = pos;
      break;
    case GroupRecordType::kInstall:
      g.install_pos = pos;
      if (r.index >= g.floor.index) g.floor = {r.index, r.term, pos};
      [[fallthrough]];
    case GroupRecordType::kSnapshot:
      if (!g.snapshot || r.snapshot.index >= g.snapshot->index) g.snapshot = r.snapshot;
      break;
    case GroupRecordType::kCompact:
      if (r.index >= g.max_compact) {
        g.max_compact = r.index;
        g.max_compact_pos = pos;
      }
      if (r.index >= g.floor.index) g.floor = {r.index, r.term, pos};
      break;
    case GroupRecordType::kRemoved:
      removed_.insert(r.group);
      break;
    case GroupRecordType::kSyncMark:
      break;
  }
  return Status::Ok();
}

Result<std::map<GroupId, ReplayedGroup>> GroupLogReplay::Finish() {
  std::map<GroupId, ReplayedGroup> out;
  for (const auto& [id, g] : groups_) {
    if (removed_.count(id)) continue;
    ReplayedGroup& rg = out[id];
    rg.first = g.floor.index + 1;
    rg.floor_term = g.floor.term;
    rg.hard_state = g.hard_state;
    rg.snapshot = g.snapshot;
  }
  // Kept entries by index. An entry replaces every kept entry at or above its index (a
  // leader's overwrite, as it was written); one at or below the floor is not kept. A
  // gap is allowed as entries come: reclamation deletes dead entries, so a dead entry
  // may appear with the dead ones before it gone; something later replaces it.
  std::map<GroupId, std::map<Index, GroupEntryLoc>> kept;
  for (const EntryItem& e : entries_) {
    if (!out.count(e.group)) continue;  // removed
    const Pass1& g = groups_.at(e.group);
    if (g.install_pos && e.loc.pos < *g.install_pos) continue;  // discarded by the install
    std::map<Index, GroupEntryLoc>& k = kept[e.group];
    k.erase(k.lower_bound(e.loc.index), k.end());
    if (e.loc.index > g.floor.index) k.emplace(e.loc.index, e.loc);
  }
  for (auto& [id, rg] : out) {
    const Pass1& g = groups_.at(id);
    for (const auto& [index, loc] : kept[id]) {
      if (index != rg.last() + 1) {
        return Corrupt(id, loc.pos,
                       fmt::format("entry {} leaves a gap after {}", index, rg.last()));
      }
      rg.entries.push_back(loc);
    }
    // Terms on the final log only: the floor may come from a record written after
    // entries it later replaced (a compact after an overwrite), so a term check as the
    // entries come would refuse an honest log.
    Term before = rg.floor_term;
    for (const GroupEntryLoc& e : rg.entries) {
      if (e.term < before) {
        return Corrupt(id, e.pos,
                       fmt::format("entry {} has term {}, below the term {} before it", e.index,
                                   e.term, before));
      }
      before = e.term;
    }
    if (g.max_compact > 0 && (!rg.snapshot || g.max_compact > rg.snapshot->index)) {
      return Corrupt(id, g.max_compact_pos,
                     fmt::format("compaction to {} beyond the snapshot ({})", g.max_compact,
                                 rg.snapshot ? rg.snapshot->index : 0));
    }
    if (rg.hard_state && rg.hard_state->commit > rg.last()) {
      return Corrupt(id, g.hard_state_pos,
                     fmt::format("the hard state commits {} beyond the last entry {}",
                                 rg.hard_state->commit, rg.last()));
    }
  }
  return out;
}

}  // namespace raft::storage
