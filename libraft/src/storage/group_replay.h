// GroupLogReplay: the replay rules of the shared log of a host (docs/storage-format.md,
// "The shared log of a host", "Replay"): its records, in log order with where each
// lies, in; each group's state out. Pure: no I/O. The recovery of the shared log will
// feed it every record it reads; its tests feed it records directly.
//
// Memory: one small item per entry record (its index, term and place: what a reader
// needs to pread it later), not the payloads.
//
// Thread safety: none; one owner.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "raft/status.h"
#include "raft/types.h"
#include "storage/group_codec.h"

namespace raft::storage {

// Where a record lies: its segment's sequence number and byte offset there.
struct RecordPos {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  auto operator<=>(const RecordPos&) const = default;
};

struct GroupEntryLoc {
  Index index = 0;
  Term term = 0;
  RecordPos pos;
  std::uint32_t bytes = 0;  // the record's, header included
};

// A group's state after replay: entries [first, last()], the term of first - 1, its
// latest hard state and snapshot meta.
struct ReplayedGroup {
  Index first = 1;
  Term floor_term = 0;  // term of first - 1: the floor's (0 for index 0)
  std::vector<GroupEntryLoc> entries;
  std::optional<HardState> hard_state;
  std::optional<SnapshotMeta> snapshot;
  Index last() const { return first + entries.size() - 1; }
};

class GroupLogReplay {
 public:
  // The next record in log order (segment order, then file order). Sync marks are
  // accepted and ignored. kCorruption for a record of a group already removed.
  Status Add(const GroupRecord& r, RecordPos pos);

  // Both passes of the replay and the final checks; kCorruption naming the segment and
  // offset of the record at fault. Removed groups are not in the result.
  Result<std::map<GroupId, ReplayedGroup>> Finish();
  // The groups removed (after every Add).
  const std::set<GroupId>& removed() const { return removed_; }

 private:
  struct Floor {
    Index index = 0;
    Term term = 0;
    RecordPos pos;  // of the record that set it (for error messages)
  };
  struct Pass1 {
    Floor floor;
    Index max_compact = 0;
    RecordPos max_compact_pos;
    std::optional<RecordPos> install_pos;  // the latest install's
    std::optional<HardState> hard_state;
    RecordPos hard_state_pos;
    std::optional<SnapshotMeta> snapshot;  // the highest of snapshot and install records
  };
  struct EntryItem {
    GroupId group = 0;
    GroupEntryLoc loc;
  };

  std::map<GroupId, Pass1> groups_;
  std::set<GroupId> removed_;
  std::vector<EntryItem> entries_;  // in log order
};

}  // namespace raft::storage
