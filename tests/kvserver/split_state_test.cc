// Range splits in kv::RocksStateMachine (docs/state-format.md, "Splits"): the membership
// it tracks, the split command's checks, the two DBs a split leaves, the span check of
// every later command, and a split replayed after a crash lost the range's batch.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "kv_command.h"
#include "range_map.h"
#include "rocks_state_machine.h"

namespace kv {
namespace {

namespace stdfs = std::filesystem;
using raft::Entry;
using raft::EntryType;

class SplitDir {
 public:
  SplitDir() {
    static int seq = 0;
    root_ = stdfs::temp_directory_path() /
            ("kv-split-test-" + std::to_string(::getpid()) + "-" + std::to_string(++seq));
    stdfs::remove_all(root_);
    stdfs::create_directories(root_);
  }
  ~SplitDir() { stdfs::remove_all(root_); }
  std::string range(std::uint64_t id) const { return (root_ / std::to_string(id)).string(); }
  std::unique_ptr<RocksStateMachine> Open(std::uint64_t id) const {
    auto sm = RocksStateMachine::Open(range(id), RocksOptions{});
    INFO(sm.status().ToString());
    REQUIRE(sm.ok());
    (*sm)->SetSplitDir([this](std::uint64_t g) { return range(g); });
    return std::move(sm).value();
  }

 private:
  stdfs::path root_;
};

CommandResult ApplyOne(RocksStateMachine* sm, const Entry& e) {
  std::vector<std::string> results;
  sm->Apply({e}, &results);
  REQUIRE(results.size() == 1);
  CommandResult r;
  REQUIRE(DecodeResult(results[0], &r));
  return r;
}

Entry Put(raft::Index i, const std::string& k, const std::string& v, std::uint64_t ttl_at = 0) {
  Command c{Op::kPut, k, v, std::nullopt};
  c.expire_at_ms = ttl_at;
  return Entry{1, i, EntryType::kNormal, EncodeCommand(c)};
}

Entry Split(raft::Index i, const RangeDescriptor& span, const std::string& key, RangeId to,
            std::vector<std::uint64_t> voters = {3, 1, 2}) {
  Command c;
  c.op = Op::kSplit;
  c.key = key;
  c.value = EncodeDescriptor(span);
  c.new_range = to;
  c.voters = std::move(voters);
  return Entry{1, i, EntryType::kNormal, EncodeCommand(c)};
}

// Entries 1-3: the bootstrap's configuration entries (voters 1, 2, 3), which change no
// state.
void Bootstrap(RocksStateMachine* sm) {
  std::vector<Entry> boot;
  for (raft::NodeId v : {1, 2, 3})
    boot.push_back(Entry{1, v, EntryType::kConfChange,
                         raft::EncodeConfChange({raft::ConfChangeType::kAddVoter, v, ""})});
  std::vector<std::string> results;
  sm->Apply(boot, &results);
}

RangeDescriptor Whole(RangeId id) {
  RangeDescriptor d;
  d.id = id;
  d.generation = 1;
  return d;
}

std::optional<std::string> Value(const RocksStateMachine& sm, const std::string& k) {
  auto v = sm.Get(k);
  REQUIRE(v.ok());
  return *v;
}

}  // namespace

TEST_CASE("split: the keys from the split key move to a new range at the split's index",
          "[state_machine][split]") {
  SplitDir dirs;
  auto sm = dirs.Open(2);
  Bootstrap(sm.get());
  raft::Index i = 3;
  for (char k = 'a'; k <= 'z'; ++k) ApplyOne(sm.get(), Put(++i, std::string(1, k), "v"));
  ApplyOne(sm.get(), Put(++i, "b-ttl", "t", 1000));
  ApplyOne(sm.get(), Put(++i, "x-ttl", "t", 2000));
  const raft::Index at = ++i;
  CHECK(sm->HoldsSpan(Whole(2)));  // none recorded: a range never split, generation 1
  const CommandResult r = ApplyOne(sm.get(), Split(at, Whole(2), "m", 9));
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(sm->AppliedIndex() == at);

  // This range keeps ["", "m"), one generation on; the split is recorded.
  auto left = sm->Range();
  REQUIRE(left);
  CHECK(left->start.empty());
  CHECK(left->end == "m");
  CHECK(left->generation == 2);
  CHECK(left->replicas == std::vector<raft::NodeId>{1, 2, 3});
  CHECK(sm->Owns("a"));
  CHECK_FALSE(sm->Owns("m"));
  CHECK(Value(*sm, "a") == "v");
  CHECK_FALSE(Value(*sm, "m"));
  CHECK_FALSE(Value(*sm, "z"));
  auto due = sm->DueExpiries(5000, 10);
  REQUIRE(due.ok());
  CHECK(*due == std::vector<std::pair<std::string, std::uint64_t>>{{"b-ttl", 1000}});
  auto split = sm->LastSplit();
  REQUIRE(split);
  CHECK(split->index == at);
  CHECK(split->left == *left);
  CHECK(sm->HoldsSpan(*left));
  CHECK_FALSE(sm->HoldsSpan(Whole(2)));  // the span before the split
  RangeDescriptor other = *left;
  other.id = 3;
  CHECK_FALSE(sm->HoldsSpan(other));
  CHECK(split->voters == std::vector<raft::NodeId>{1, 2, 3});  // the command's, in order

  // A command for a key that left is refused, the same on every replica.
  const CommandResult wrong = ApplyOne(sm.get(), Put(++i, "q", "late"));
  CHECK_FALSE(wrong.ok);
  CHECK(wrong.error.rfind(std::string(kWrongRangeError), 0) == 0);
  CHECK_FALSE(Value(*sm, "q"));

  // The new range: ["m", +inf) at the split's index, its own keys only, no history.
  auto right = RocksStateMachine::Open(dirs.range(9), RocksOptions{});
  REQUIRE(right.ok());
  (*right)->SetSplitDir([&dirs](std::uint64_t g) { return dirs.range(g); });
  CHECK((*right)->AppliedIndex() == at);
  CHECK((*right)->OriginIndex() == at);
  CHECK(sm->OriginIndex() == 0);
  CHECK((*right)->Range() == split->right);
  CHECK((*right)->HoldsSpan(split->right));
  CHECK(split->right.start == "m");
  CHECK(split->right.end.empty());
  CHECK(split->right.generation == 1);
  CHECK(Value(**right, "m") == "v");
  CHECK(Value(**right, "z") == "v");
  CHECK_FALSE(Value(**right, "a"));
  CHECK_FALSE((*right)->LastSplit());
  CHECK((*right)->SplitVoters() == std::vector<raft::NodeId>{1, 2, 3});
  CHECK(sm->SplitVoters().empty());
  due = (*right)->DueExpiries(5000, 10);
  REQUIRE(due.ok());
  CHECK(*due == std::vector<std::pair<std::string, std::uint64_t>>{{"x-ttl", 2000}});
  auto history = (*right)->History(0, "", 100, 1000, 1 << 20);
  REQUIRE(history.ok());
  CHECK(history->compacted);
  CHECK(history->start == at + 1);
  // A key keeps its index across the split; the next write gets a higher one.
  auto rec = (*right)->GetRecord("m");
  REQUIRE(rec.ok());
  REQUIRE(*rec);
  CHECK((*rec)->index < at);
  const CommandResult next = ApplyOne(right->get(), Put(at + 1, "m", "w"));
  CHECK(next.ok);
  CHECK(next.prev_index == (*rec)->index);

  // The new range splits in turn.
  const CommandResult again = ApplyOne(right->get(), Split(at + 2, split->right, "t", 10));
  INFO(again.error);
  CHECK(again.ok);
  CHECK((*right)->Range()->end == "t");

  // Both survive a reopen.
  sm->Close();
  sm = dirs.Open(2);
  CHECK(sm->Range() == left);
  CHECK(sm->LastSplit() == split);
}

TEST_CASE("split: a stale, misplaced or unknowing split changes nothing",
          "[state_machine][split]") {
  SplitDir dirs;
  auto sm = dirs.Open(2);
  raft::Index i = 0;
  // No voters, or process 0 among them: refused (the new group needs voters).
  ApplyOne(sm.get(), Put(++i, "a", "1"));
  CommandResult r = ApplyOne(sm.get(), Split(++i, Whole(2), "m", 9, {}));
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("voters") != std::string::npos);
  r = ApplyOne(sm.get(), Split(++i, Whole(2), "m", 9, {1, 0}));
  CHECK(r.error.find("voters") != std::string::npos);
  CHECK_FALSE(stdfs::exists(dirs.range(9)));

  auto sm3 = dirs.Open(3);
  Bootstrap(sm3.get());
  i = 3;
  RangeDescriptor span;
  span.id = 3;
  span.generation = 1;
  span.start = "c";
  span.end = "p";
  for (const char* k : {"c", "d", "o"}) ApplyOne(sm3.get(), Put(++i, k, "v"));
  for (const std::string& bad : {std::string("c"), std::string("b"), std::string("p")}) {
    r = ApplyOne(sm3.get(), Split(++i, span, bad, 9));
    CHECK_FALSE(r.ok);
    CHECK(r.error.find("not inside") != std::string::npos);
  }
  r = ApplyOne(sm3.get(), Split(++i, span, "d", 1));  // the meta range's id
  CHECK_FALSE(r.ok);
  r = ApplyOne(sm3.get(), Split(++i, span, "d", 9));
  INFO(r.error);
  REQUIRE(r.ok);
  // The same split again (a retry), or one of the old generation: refused.
  r = ApplyOne(sm3.get(), Split(++i, span, "e", 10));
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("generation 2") != std::string::npos);
  CHECK_FALSE(stdfs::exists(dirs.range(10)));
  CHECK(sm3->Range()->end == "d");
  CHECK(sm3->AppliedIndex() == i);

  // Not in ranges mode: no directory for a new range.
  auto single = RocksStateMachine::Open(dirs.range(4), RocksOptions{});
  REQUIRE(single.ok());
  Bootstrap(single->get());
  r = ApplyOne(single->get(), Split(4, Whole(4), "m", 11));
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("ranges mode") != std::string::npos);
  CHECK((*single)->Owns("zzz"));
}

TEST_CASE("split: replayed after a crash lost the range's batch, the new range is kept",
          "[state_machine][split]") {
  SplitDir dirs;
  const std::string backup = dirs.range(2) + ".before";
  {
    auto sm = dirs.Open(2);
    Bootstrap(sm.get());
    for (raft::Index i = 4; i <= 10; ++i)
      ApplyOne(sm.get(), Put(i, std::string(1, static_cast<char>('a' + i)), "v"));
    sm->Close();
  }
  stdfs::copy(dirs.range(2), backup, stdfs::copy_options::recursive);
  {
    auto sm = dirs.Open(2);
    REQUIRE(ApplyOne(sm.get(), Split(11, Whole(2), "h", 9)).ok);
    auto right = dirs.Open(9);
    REQUIRE(ApplyOne(right.get(), Put(12, "z", "after")).ok);  // the new range moved on
  }
  // The range's split batch lost (its state from before it), the new range's kept.
  stdfs::remove_all(dirs.range(2));
  stdfs::rename(backup, dirs.range(2));
  auto sm = dirs.Open(2);
  CHECK(sm->AppliedIndex() == 10);
  CHECK_FALSE(sm->Range());
  REQUIRE(ApplyOne(sm.get(), Split(11, Whole(2), "h", 9)).ok);
  CHECK(sm->Range()->end == "h");
  CHECK_FALSE(Value(*sm, "i"));
  auto right = dirs.Open(9);
  CHECK(right->AppliedIndex() == 12);
  CHECK(Value(*right, "z") == "after");
  CHECK(Value(*right, "i") == "v");
}

TEST_CASE("split codecs: the command, the split record, the membership", "[kv_command][split]") {
  Command c;
  c.op = Op::kSplit;
  c.key = "m";
  c.value = EncodeDescriptor(Whole(2));
  c.new_range = 9;
  c.voters = {1, 2, 3};
  const std::string wire = EncodeCommand(c);
  CHECK(wire[0] == static_cast<char>(kCommandVersion2));  // a version 2 op
  Command back;
  REQUIRE(DecodeCommand(wire, &back));
  CHECK(back == c);
  std::string v1 = wire;
  v1[0] = static_cast<char>(kCommandVersion);
  CHECK_FALSE(DecodeCommand(v1, &back));
  CHECK_FALSE(DecodeCommand(wire.substr(0, wire.size() - 1), &back));
  CHECK_FALSE(DecodeCommand(wire + "x", &back));

  SplitRecord rec;
  rec.index = 42;
  rec.left = Whole(2);
  rec.left.end = "m";
  rec.right = Whole(9);
  rec.right.start = "m";
  rec.voters = {1, 2, 3};
  const std::string enc = EncodeSplitRecord(rec);
  auto dec = DecodeSplitRecord(enc);
  REQUIRE(dec.ok());
  CHECK(*dec == rec);
  CHECK_FALSE(DecodeSplitRecord(enc.substr(0, enc.size() - 1)).ok());
  CHECK_FALSE(DecodeSplitRecord(enc + "x").ok());
  rec.voters.clear();
  CHECK_FALSE(DecodeSplitRecord(EncodeSplitRecord(rec)).ok());

  raft::ConfState conf;
  conf.voters = {1, 5};
  conf.learners = {7};
  auto c2 = DecodeConf(EncodeConf(conf));
  REQUIRE(c2.ok());
  CHECK(*c2 == conf);
  CHECK_FALSE(DecodeConf(EncodeConf(conf) + "x").ok());
  CHECK_FALSE(DecodeConf("").ok());
}

TEST_CASE("split: a span's size counts its own keys, not the other half's",
          "[state_machine][split]") {
  SplitDir dirs;
  auto sm = dirs.Open(2);
  Bootstrap(sm.get());
  // Values that do not compress: the size is what the span takes on disk.
  std::mt19937_64 rng(7);
  raft::Index i = 3;
  for (int k = 0; k < 300; ++k) {
    char key[16];
    std::snprintf(key, sizeof(key), "ak%04d", k);
    std::string value(900, '\0');
    for (char& ch : value) ch = static_cast<char>(rng());
    ApplyOne(sm.get(), Put(++i, key, value));
  }
  // In memtables: their whole size (here the keys, values and history events).
  CHECK(sm->SpanSizeBytes() >= 250 * 1000);
  REQUIRE(sm->Compact().ok());
  const std::uint64_t all = sm->SpanSizeBytes();
  INFO("in table files: " << all);
  CHECK(all >= 250 * 1000);  // ~270 KB of keys and values
  CHECK(all <= 2 * 300 * 1000);
  REQUIRE(ApplyOne(sm.get(), Split(++i, Whole(2), "ak0150", 9)).ok);  // flushes
  auto right = dirs.Open(9);
  for (RocksStateMachine* half : {sm.get(), right.get()}) {
    INFO("half: " << half->SpanSizeBytes() << " of " << all);
    CHECK(half->SpanSizeBytes() >= all / 4);
    CHECK(half->SpanSizeBytes() <= all * 3 / 4);
  }
  CHECK(sm->CompactOutsideSpan().ok());
  CHECK(right->CompactOutsideSpan().ok());
  CHECK(right->ApproximateSizeBytes() < all);
}

}  // namespace kv
