// RaftLog and Unstable: append, conflict detection, backtracking hints, slices.
#include <catch2/catch.hpp>

#include "core/raft_log.h"

namespace raft {
namespace {
std::vector<Entry> Ents(std::initializer_list<std::pair<Index, Term>> it) {
  std::vector<Entry> out;
  for (auto [i, t] : it) out.push_back(Entry{t, i, EntryType::kNormal, "x"});
  return out;
}
}  // namespace

TEST_CASE("5.3 log matching: a conflicting suffix is replaced, a matching one kept", "[log]") {
  MemoryStorage s;
  REQUIRE(s.Append(Ents({{1, 1}, {2, 1}, {3, 2}})).ok());
  RaftLog log(&s, 0);
  std::optional<Index> trunc;
  // Matching, shorter append (a stale message): nothing truncated (see
  // testdata/stale_append.txt).
  auto last = log.MaybeAppend(0, 0, 0, Ents({{1, 1}, {2, 1}}), &trunc);
  REQUIRE(last == 2);
  REQUIRE_FALSE(trunc);
  REQUIRE(log.LastIndex() == 3);
  // Conflict at 3: replaced.
  last = log.MaybeAppend(2, 1, 0, Ents({{3, 3}, {4, 3}}), &trunc);
  REQUIRE(last == 4);
  REQUIRE(trunc == 3);
  REQUIRE(log.TermAt(3) == 3);
  // Mismatching prev: rejected.
  REQUIRE_FALSE(log.MaybeAppend(4, 2, 0, Ents({{5, 3}}), &trunc));
}

TEST_CASE("5.3 FindConflictByTerm skips a whole term per round trip", "[log]") {
  MemoryStorage s;
  REQUIRE(s.Append(Ents({{1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, 2}, {6, 4}})).ok());
  RaftLog log(&s, 0);
  REQUIRE(log.FindConflictByTerm(6, 3) == 5);
  REQUIRE(log.FindConflictByTerm(5, 1) == 2);
  REQUIRE(log.FindConflictByTerm(6, 0) == 0);
  REQUIRE(log.FindConflictByTerm(10, 4) == 6);
}

TEST_CASE("Slice spans storage and the unstable tail and honours the byte limit", "[log]") {
  MemoryStorage s;
  REQUIRE(s.Append(Ents({{1, 1}, {2, 1}})).ok());
  RaftLog log(&s, 0);
  log.Append(Ents({{3, 1}, {4, 1}}));
  auto all = log.Slice(1, 5, UINT64_MAX);
  REQUIRE(all->size() == 4);
  auto one = log.Slice(1, 5, 1);
  REQUIRE(one->size() == 1);
  auto two = log.Slice(2, 5, 2 * EntrySizeBytes(Entry{1, 1, EntryType::kNormal, "x"}));
  REQUIRE(two->size() == 2);
  REQUIRE(s.CreateSnapshot(2, {}).ok());
  REQUIRE(s.Compact(2).ok());
  REQUIRE_FALSE(log.Slice(2, 5, UINT64_MAX));  // compacted
  REQUIRE(log.Slice(3, 5, UINT64_MAX)->size() == 2);
}

TEST_CASE("Stable entries leave the unstable tail only if their term still matches", "[log]") {
  MemoryStorage s;
  RaftLog log(&s, 0);
  log.Append(Ents({{1, 1}, {2, 1}}));
  log.StableTo(2, 2);  // wrong term: ignored
  REQUIRE(log.unstable().entries().size() == 2);
  log.StableTo(1, 1);
  REQUIRE(log.unstable().entries().size() == 1);
  REQUIRE(log.LastStableIndex() == 1);
}

TEST_CASE("5.4.1 up-to-date: higher last term wins, then longer log", "[log]") {
  MemoryStorage s;
  REQUIRE(s.Append(Ents({{1, 1}, {2, 2}, {3, 2}})).ok());
  RaftLog log(&s, 0);
  REQUIRE(log.IsUpToDate(1, 3));
  REQUIRE(log.IsUpToDate(3, 2));
  REQUIRE_FALSE(log.IsUpToDate(2, 2));
  REQUIRE_FALSE(log.IsUpToDate(10, 1));
}

TEST_CASE("MemoryStorage rejects gaps and reports compaction", "[log]") {
  MemoryStorage s;
  REQUIRE_FALSE(s.Append(Ents({{2, 1}})).ok());
  REQUIRE(s.Append(Ents({{1, 1}, {2, 1}, {3, 1}})).ok());
  REQUIRE_FALSE(s.Compact(2).ok());  // beyond the latest snapshot
  REQUIRE(s.CreateSnapshot(2, {}).ok());
  REQUIRE(s.Compact(2).ok());
  REQUIRE(s.FirstIndex() == 3);
  REQUIRE(s.TermAt(1).status().code() == ErrorCode::kCompacted);
  REQUIRE(s.TermAt(2).ok());
  REQUIRE(s.Entries(2, 4, UINT64_MAX).status().code() == ErrorCode::kCompacted);
}

TEST_CASE("ConfChange codec round trips and rejects garbage", "[log]") {
  ConfChange cc{ConfChangeType::kAddLearner, 0xFFFFFFFFFFFFFFFFull, std::string("a\0b", 3)};
  ConfChange out;
  REQUIRE(DecodeConfChange(EncodeConfChange(cc), &out));
  REQUIRE(out == cc);
  REQUIRE_FALSE(DecodeConfChange("", &out));
  REQUIRE_FALSE(DecodeConfChange(std::string(10, '\x07'), &out));
}

}  // namespace raft
