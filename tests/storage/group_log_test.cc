// The shared log of a host (docs/storage-format.md, "The shared log of a host"): its
// record codec (layout, round trips, every refusal) and its replay rules (interleaved
// groups, overwrites, gaps, compaction, installs, removal, records written again by
// reclamation), and a randomized comparison of replay against a model of each group's
// log.
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "raft/coding.h"
#include "storage/group_codec.h"
#include "storage/group_replay.h"

namespace raft::storage {

namespace {

Entry E(Index i, Term t, std::string data = "d") {
  Entry e;
  e.index = i;
  e.term = t;
  e.data = std::move(data);
  return e;
}

GroupRecord Parse(const std::string& bytes) {
  GroupRecord r;
  REQUIRE(ParseGroupRecord(bytes, &r) == RecordParse::kOk);
  CHECK(r.bytes == bytes.size());
  return r;
}

// A version-3 header with any fields and a valid CRC, for records the encoders refuse.
std::string Raw(std::uint8_t version, std::uint8_t type, GroupId g, Index i, Term t,
                const std::string& payload = "") {
  std::string out(kGroupRecordHeaderBytes, '\0');
  EncodeFixed32(out.data() + kRecordLengthOffset, static_cast<std::uint32_t>(payload.size()));
  out[kRecordVersionOffset] = static_cast<char>(version);
  out[kRecordTypeOffset] = static_cast<char>(type);
  EncodeFixed64(out.data() + kGroupRecordGroupOffset, g);
  EncodeFixed64(out.data() + kGroupRecordIndexOffset, i);
  EncodeFixed64(out.data() + kGroupRecordTermOffset, t);
  out += payload;
  EncodeFixed32(out.data(), base::MaskCrc(base::Crc32cExtend(0, out.data() + 4, out.size() - 4)));
  return out;
}

// Replays `log` (records back to back, one segment per string).
Result<std::map<GroupId, ReplayedGroup>> Replay(const std::vector<std::string>& segments) {
  GroupLogReplay replay;
  for (std::size_t s = 0; s < segments.size(); ++s) {
    std::string_view rest = segments[s];
    std::uint64_t offset = 0;
    while (!rest.empty()) {
      GroupRecord r;
      REQUIRE(ParseGroupRecord(rest, &r) == RecordParse::kOk);
      if (Status st = replay.Add(r, {s, offset}); !st.ok()) return st;
      offset += r.bytes;
      rest.remove_prefix(r.bytes);
    }
  }
  return replay.Finish();
}

std::vector<std::pair<Index, Term>> Log(const ReplayedGroup& g) {
  std::vector<std::pair<Index, Term>> out;
  for (const GroupEntryLoc& e : g.entries) out.emplace_back(e.index, e.term);
  return out;
}

SnapshotMeta Snap(Index i, Term t) {
  SnapshotMeta m;
  m.index = i;
  m.term = t;
  m.conf.voters = {1, 2, 3};
  return m;
}

}  // namespace

TEST_CASE("shared log records have the documented layout and round-trip", "[storage][group]") {
  std::string out;
  EncodeGroupEntry(7, E(5, 2, "hello"), &out);
  REQUIRE(out.size() == kGroupRecordHeaderBytes + 5);
  CHECK(static_cast<std::uint8_t>(out[kRecordVersionOffset]) == 3);
  CHECK(out[kRecordTypeOffset] == 0);
  CHECK(DecodeFixed64(out.data() + kGroupRecordGroupOffset) == 7);
  CHECK(DecodeFixed64(out.data() + kGroupRecordIndexOffset) == 5);
  CHECK(DecodeFixed64(out.data() + kGroupRecordTermOffset) == 2);
  GroupRecord r = Parse(out);
  CHECK(r.entry());
  CHECK(r.payload == "hello");

  Entry cc = E(6, 2, "cc");
  cc.type = EntryType::kConfChange;
  out.clear();
  EncodeGroupEntry(7, cc, &out);
  CHECK(Parse(out).type == GroupRecordType::kEntryConfChange);

  out.clear();
  EncodeGroupHardState(7, HardState{4, 2, 9}, &out);
  r = Parse(out);
  CHECK(r.type == GroupRecordType::kHardState);
  CHECK(r.hard_state == HardState{4, 2, 9});

  for (bool install : {false, true}) {
    out.clear();
    EncodeGroupSnapshot(7, Snap(10, 3), install, &out);
    r = Parse(out);
    CHECK(r.type == (install ? GroupRecordType::kInstall : GroupRecordType::kSnapshot));
    CHECK(r.snapshot == Snap(10, 3));
    CHECK(r.index == 10);
  }
  out.clear();
  EncodeGroupCompact(7, 8, 3, &out);
  r = Parse(out);
  CHECK((r.type == GroupRecordType::kCompact && r.index == 8 && r.term == 3));
  out.clear();
  EncodeGroupRemoved(7, &out);
  CHECK(Parse(out).type == GroupRecordType::kRemoved);
  out.clear();
  EncodeGroupSyncMark(&out);
  CHECK(out.size() == kGroupRecordHeaderBytes);
  CHECK(Parse(out).type == GroupRecordType::kSyncMark);
}

TEST_CASE("shared log records that break the grammar are refused", "[storage][group]") {
  std::string good;
  EncodeGroupEntry(7, E(5, 2, "hello"), &good);
  GroupRecord r;
  CHECK(ParseGroupRecord(good.substr(0, 10), &r) == RecordParse::kTruncated);
  CHECK(ParseGroupRecord(good.substr(0, good.size() - 1), &r) == RecordParse::kTruncated);
  std::string flipped = good;
  flipped.back() ^= 1;
  CHECK(ParseGroupRecord(flipped, &r) == RecordParse::kBadCrc);
  std::string huge = good;
  EncodeFixed32(huge.data() + kRecordLengthOffset, kRecordPayloadBytesMax + 1);
  CHECK(ParseGroupRecord(huge, &r) == RecordParse::kBadLength);

  // A DiskStorage record (version 2) is not a shared log record, nor the reverse.
  std::string v2;
  EncodeRecord(E(5, 2), &v2);
  v2.append(8, '\0');  // long enough for a version-3 header
  CHECK(ParseGroupRecord(v2, &r) != RecordParse::kOk);
  RecordView view;
  CHECK(ParseRecord(good, &view) != RecordParse::kOk);

  // CRC-valid, but not a record of this format.
  std::string hs(kGroupHardStateBytes, '\0');
  const std::vector<std::pair<const char*, std::string>> bad = {
      {"version 2", Raw(2, 0, 7, 5, 2)},
      {"type 8", Raw(3, 8, 7, 5, 2)},
      {"entry of group 0", Raw(3, 0, 0, 5, 2)},
      {"entry at index 0", Raw(3, 0, 7, 0, 2)},
      {"mark with a group", Raw(3, 2, 7, 0, 0)},
      {"mark with a payload", Raw(3, 2, 0, 0, 0, "x")},
      {"hard state of 23 bytes", Raw(3, 3, 7, 0, 0, std::string(23, '\0'))},
      {"hard state with an index", Raw(3, 3, 7, 1, 0, hs)},
      {"snapshot with a bad body", Raw(3, 4, 7, 10, 3, "x")},
      {"snapshot whose body disagrees", Raw(3, 4, 7, 11, 3, EncodeSnapshotMetaBody(Snap(10, 3)))},
      {"compact with a payload", Raw(3, 6, 7, 8, 3, "x")},
      {"removed with an index", Raw(3, 7, 7, 1, 0)},
  };
  for (const auto& [name, bytes] : bad) {
    INFO(name);
    CHECK(ParseGroupRecord(bytes, &r) == RecordParse::kBadVersion);
  }
}

TEST_CASE("replay separates interleaved groups and applies overwrites", "[storage][group]") {
  std::string s0, s1;
  for (Index i = 1; i <= 3; ++i) {
    EncodeGroupEntry(1, E(i, 1), &s0);
    EncodeGroupEntry(2, E(i, 1), &s0);
  }
  EncodeGroupHardState(1, HardState{1, 1, 2}, &s0);
  EncodeGroupSyncMark(&s0);
  // Group 2's new leader overwrites from index 2, in the next segment.
  EncodeGroupEntry(2, E(2, 2), &s1);
  EncodeGroupEntry(1, E(4, 1), &s1);
  EncodeGroupHardState(1, HardState{1, 1, 4}, &s1);
  auto groups = Replay({s0, s1});
  REQUIRE(groups.ok());
  REQUIRE(groups->size() == 2);
  const ReplayedGroup& g1 = groups->at(1);
  const ReplayedGroup& g2 = groups->at(2);
  CHECK(Log(g1) == std::vector<std::pair<Index, Term>>{{1, 1}, {2, 1}, {3, 1}, {4, 1}});
  CHECK(g1.hard_state == HardState{1, 1, 4});
  CHECK(Log(g2) == std::vector<std::pair<Index, Term>>{{1, 1}, {2, 2}});
  CHECK_FALSE(g2.hard_state.has_value());
  CHECK(g2.entries[1].pos == RecordPos{1, 0});
}

TEST_CASE("replay refuses gaps, falling terms and commits past the log", "[storage][group]") {
  SECTION("a gap") {
    std::string s;
    EncodeGroupEntry(1, E(1, 1), &s);
    const std::uint64_t at = s.size();
    EncodeGroupEntry(1, E(3, 1), &s);
    auto r = Replay({s});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == ErrorCode::kCorruption);
    CHECK(r.status().message().find("segment 0 offset " + std::to_string(at)) != std::string::npos);
    CHECK(r.status().message().find("gap") != std::string::npos);
  }
  SECTION("a first entry other than 1") {
    std::string s;
    EncodeGroupEntry(1, E(2, 1), &s);
    CHECK_FALSE(Replay({s}).ok());
  }
  SECTION("a falling term") {
    std::string s;
    EncodeGroupEntry(1, E(1, 2), &s);
    EncodeGroupEntry(1, E(2, 1), &s);
    auto r = Replay({s});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("below the term") != std::string::npos);
  }
  SECTION("a commit past the log") {
    std::string s;
    EncodeGroupEntry(1, E(1, 1), &s);
    EncodeGroupHardState(1, HardState{1, 0, 2}, &s);
    auto r = Replay({s});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("beyond the last entry") != std::string::npos);
  }
  SECTION("a compaction past the snapshot") {
    std::string s;
    EncodeGroupEntry(1, E(1, 1), &s);
    EncodeGroupEntry(1, E(2, 1), &s);
    EncodeGroupSnapshot(1, Snap(1, 1), false, &s);
    EncodeGroupCompact(1, 2, 1, &s);
    auto r = Replay({s});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("beyond the snapshot") != std::string::npos);
  }
}

TEST_CASE("replay applies compaction, installs and removal", "[storage][group]") {
  std::string s;
  for (Index i = 1; i <= 5; ++i) EncodeGroupEntry(1, E(i, i < 4 ? 1 : 2), &s);
  EncodeGroupSnapshot(1, Snap(4, 2), false, &s);
  EncodeGroupCompact(1, 3, 1, &s);
  for (Index i = 1; i <= 4; ++i) EncodeGroupEntry(2, E(i, 1), &s);
  EncodeGroupEntry(3, E(1, 1), &s);
  EncodeGroupSnapshot(2, Snap(9, 3), true, &s);  // installed: its log is discarded
  EncodeGroupEntry(2, E(10, 3), &s);
  EncodeGroupRemoved(3, &s);
  auto groups = Replay({s});
  REQUIRE(groups.ok());
  const ReplayedGroup& g1 = groups->at(1);
  CHECK(g1.first == 4);
  CHECK(g1.floor_term == 1);
  CHECK(Log(g1) == std::vector<std::pair<Index, Term>>{{4, 2}, {5, 2}});
  CHECK(g1.snapshot == Snap(4, 2));
  const ReplayedGroup& g2 = groups->at(2);
  CHECK(g2.first == 10);
  CHECK(g2.floor_term == 3);
  CHECK(Log(g2) == std::vector<std::pair<Index, Term>>{{10, 3}});
  CHECK(groups->count(3) == 0);

  std::string after;
  EncodeGroupEntry(3, E(2, 1), &after);
  auto r = Replay({s, after});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("after the group's removal") != std::string::npos);
}

// The floor comes from records that may follow the entries it covers. An overwrite
// below the floor still replaced the entries after it, and a compact written after an
// overwrite carries a term newer than entries the overwrite replaced: neither may make
// the replay keep stale entries or refuse an honest log.
TEST_CASE("an overwrite below a later floor drops the entries it replaced", "[storage][group]") {
  std::string s;
  for (Index i = 1; i <= 10; ++i) EncodeGroupEntry(1, E(i, 1), &s);  // commit was 5
  EncodeGroupEntry(1, E(6, 2), &s);                                  // a new leader's
  EncodeGroupHardState(1, HardState{2, 0, 6}, &s);
  EncodeGroupSnapshot(1, Snap(6, 2), false, &s);
  EncodeGroupCompact(1, 6, 2, &s);
  auto groups = Replay({s});
  REQUIRE(groups.ok());
  const ReplayedGroup& g = groups->at(1);
  CHECK(g.first == 7);
  CHECK(g.floor_term == 2);
  CHECK(g.entries.empty());  // 7-10 of term 1 were replaced
  CHECK(g.last() == 6);
}

// Reclamation deletes dead entries: a dead entry may remain after its dead
// predecessors are gone, until the record that replaced it.
TEST_CASE("a dead entry whose predecessors were reclaimed is not a gap", "[storage][group]") {
  std::string s;
  EncodeGroupEntry(1, E(33, 4), &s);  // 31 and 32 (term 4) were in a deleted segment
  EncodeGroupEntry(1, E(34, 4), &s);
  EncodeGroupSnapshot(1, Snap(30, 4), false, &s);
  EncodeGroupCompact(1, 30, 4, &s);
  EncodeGroupEntry(1, E(31, 5), &s);  // the new leader's overwrite replaced 31-34
  EncodeGroupEntry(1, E(32, 5), &s);
  auto groups = Replay({s});
  REQUIRE(groups.ok());
  CHECK(Log(groups->at(1)) == std::vector<std::pair<Index, Term>>{{31, 5}, {32, 5}});
  // Without the overwrite the hole is real.
  std::string holed;
  EncodeGroupEntry(1, E(33, 4), &holed);
  EncodeGroupSnapshot(1, Snap(30, 4), false, &holed);
  EncodeGroupCompact(1, 30, 4, &holed);
  CHECK_FALSE(Replay({holed}).ok());
}

// Reclamation writes a group's live non-entry records again at the end of the log; the
// replay must mean the same (docs/storage-format.md, "Reclamation").
TEST_CASE("records written again by reclamation replay to the same state", "[storage][group]") {
  // Segment 0: group 1's entries 1-4, its snapshot at 3 and compaction to 3, and an
  // install for group 2 followed by entries. Segment 1: group 1's entries go on.
  std::string s0, s1;
  for (Index i = 1; i <= 4; ++i) EncodeGroupEntry(1, E(i, 1), &s0);
  EncodeGroupSnapshot(1, Snap(3, 1), false, &s0);
  EncodeGroupCompact(1, 3, 1, &s0);
  EncodeGroupHardState(1, HardState{1, 1, 4}, &s0);
  EncodeGroupEntry(2, E(1, 1), &s0);
  EncodeGroupSnapshot(2, Snap(6, 2), true, &s0);
  EncodeGroupHardState(2, HardState{2, 0, 6}, &s0);
  std::string s2_entries;
  EncodeGroupEntry(2, E(7, 2), &s1);
  for (Index i = 5; i <= 6; ++i) EncodeGroupEntry(1, E(i, 1), &s1);
  auto before = Replay({s0, s1});
  REQUIRE(before.ok());

  // Segment 0 can go once its live records are written again: group 1's entry 4 is
  // above the floor (3), so it cannot yet; pretend group 1 compacted to 4 first.
  std::string s1c = s1;
  EncodeGroupSnapshot(1, Snap(4, 1), false, &s1c);
  EncodeGroupCompact(1, 4, 1, &s1c);
  auto compacted = Replay({s0, s1c});
  REQUIRE(compacted.ok());
  // Now segment 0 holds no live entry: rewrite its live records (group 1's hard state;
  // group 2's install as a snapshot and a compact; group 2's hard state) and drop it.
  std::string s2;
  EncodeGroupHardState(1, HardState{1, 1, 4}, &s2);
  EncodeGroupSnapshot(2, Snap(6, 2), false, &s2);
  EncodeGroupCompact(2, 6, 2, &s2);
  EncodeGroupHardState(2, HardState{2, 0, 6}, &s2);
  auto reclaimed = Replay({s1c, s2});
  REQUIRE(reclaimed.ok());
  for (GroupId g : {1, 2}) {
    INFO("group " << g);
    const ReplayedGroup& a = compacted->at(g);
    const ReplayedGroup& b = reclaimed->at(g);
    CHECK(a.first == b.first);
    CHECK(a.floor_term == b.floor_term);
    CHECK(Log(a) == Log(b));
    CHECK(a.hard_state == b.hard_state);
    CHECK(a.snapshot == b.snapshot);
  }
  CHECK(Log(before->at(2)) == std::vector<std::pair<Index, Term>>{{7, 2}});
}

// Random histories of several groups against a model of each group's log.
TEST_CASE("replay matches a model of each group's log over random histories", "[storage][group]") {
  struct Model {
    Index first = 1;
    Term floor_term = 0;
    std::vector<Term> terms;  // of first, first + 1, ...
    Index snap = 0;
    Index commit = 0;  // never falls, and nothing at or below it is overwritten (Raft)
    Term term = 1;
    Index last() const { return first + terms.size() - 1; }
    Term TermAt(Index i) const { return i == first - 1 ? floor_term : terms[i - first]; }
  };
  std::mt19937_64 rng(5);
  for (int run = 0; run < 200; ++run) {
    std::map<GroupId, Model> models;
    std::vector<std::string> segments(1);
    for (int op = 0; op < 300; ++op) {
      if (rng() % 25 == 0) segments.emplace_back();
      std::string& out = segments.back();
      const GroupId g = 1 + rng() % 4;
      Model& m = models[g];
      const int kind = static_cast<int>(rng() % 20);
      if (kind < 12) {  // append, maybe overwriting a suffix in a new term
        Index from = m.last() + 1;
        if (m.last() > m.commit && rng() % 4 == 0) {
          from = m.commit + 1 + rng() % (m.last() - m.commit);
          ++m.term;
        }
        m.terms.resize(from - m.first);
        const int n = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < n; ++k) {
          m.terms.push_back(m.term);
          EncodeGroupEntry(g, E(m.last(), m.term), &out);
        }
      } else if (kind < 14 && m.commit >= m.first) {  // snapshot, compact to at most it
        m.snap = m.first + rng() % (m.commit - m.first + 1);
        EncodeGroupSnapshot(g, Snap(m.snap, m.TermAt(m.snap)), false, &out);
        const Index c = m.first - 1 + rng() % (m.snap - m.first + 2);
        if (c >= m.first) {
          const Term ct = m.TermAt(c);
          m.terms.erase(m.terms.begin(),
                        m.terms.begin() + static_cast<std::ptrdiff_t>(c - m.first + 1));
          m.first = c + 1;
          m.floor_term = ct;
          EncodeGroupCompact(g, c, ct, &out);
        }
      } else if (kind < 15) {  // install a snapshot ahead of the log
        ++m.term;
        const Index s = m.last() + 1 + rng() % 5;
        m.snap = s;
        m.commit = s;
        m.first = s + 1;
        m.floor_term = m.term;
        m.terms.clear();
        EncodeGroupSnapshot(g, Snap(s, m.term), true, &out);
      } else {  // hard state, its commit somewhere in [commit, last]
        m.commit += rng() % (m.last() - m.commit + 1);
        EncodeGroupHardState(g, HardState{m.term, 0, m.commit}, &out);
      }
    }
    auto groups = Replay(segments);
    INFO("run " << run << ": " << (groups.ok() ? "" : groups.status().message()));
    REQUIRE(groups.ok());
    for (const auto& [g, m] : models) {
      INFO("group " << g);
      const ReplayedGroup& rg = groups->at(g);
      CHECK(rg.first == m.first);
      CHECK(rg.floor_term == m.floor_term);
      REQUIRE(rg.entries.size() == m.terms.size());
      for (std::size_t k = 0; k < m.terms.size(); ++k) CHECK(rg.entries[k].term == m.terms[k]);
    }
  }
}

}  // namespace raft::storage
