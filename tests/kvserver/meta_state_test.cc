// The meta range's records, commands and state (meta_state.h).
#include "meta_state.h"

#include <algorithm>
#include <catch2/catch.hpp>

#include "range_test_util.h"
#include "ranges_mode.h"

namespace kv {
namespace {

ProcessRecord Proc(raft::NodeId id, std::string name) {
  ProcessRecord p;
  p.id = id;
  p.name = std::move(name);
  p.raft_addr = "127.0.0.1:400" + std::to_string(id);
  p.http_addr = "127.0.0.1:300" + std::to_string(id);
  return p;
}

MetaCommand Add(const ProcessRecord& p) {
  MetaCommand c;
  c.op = MetaCommand::Op::kAddProcess;
  c.process = p;
  return c;
}

MetaCommand Put(std::vector<RangeDescriptor> ds) {
  MetaCommand c;
  c.op = MetaCommand::Op::kPutDescriptors;
  c.descriptors = std::move(ds);
  return c;
}

RangeDescriptor Range(RangeId id, std::uint64_t gen, std::string start, std::string end) {
  return TestRange(id, gen, std::move(start), std::move(end), {1});
}

// Encoded and decoded again, as every replica reads it from the log.
MetaCommand RoundTrip(const MetaCommand& c) {
  auto back = DecodeMetaCommand(EncodeMetaCommand(c));
  REQUIRE(back.ok());
  return *back;
}

}  // namespace

TEST_CASE("meta: process records and commands round-trip; bad ones are refused", "[ranges]") {
  const ProcessRecord p = Proc(7, "node0");
  auto back = DecodeProcess(EncodeProcess(p));
  REQUIRE(back.ok());
  CHECK(*back == p);
  CHECK_FALSE(DecodeProcess(EncodeProcess(Proc(0, "x"))).ok());
  CHECK_FALSE(DecodeProcess(EncodeProcess(Proc(1, ""))).ok());
  std::string bad_state = EncodeProcess(p);
  bad_state[9] = 9;  // after version and id
  CHECK(DecodeProcess(bad_state).status().message().find("state") != std::string::npos);

  MetaCommand rm;
  rm.op = MetaCommand::Op::kRemoveProcess;
  rm.id = 7;
  CHECK(RoundTrip(rm).id == 7);
  MetaCommand st;
  st.op = MetaCommand::Op::kSetProcessState;
  st.id = 7;
  st.state = ProcessState::kLeaving;
  CHECK(RoundTrip(st).state == ProcessState::kLeaving);
  CHECK(RoundTrip(Add(p)).process == p);
  const MetaCommand put = Put(BootstrapRanges(4, {1, 2, 3}));
  CHECK(RoundTrip(put).descriptors == put.descriptors);

  std::string enc = EncodeMetaCommand(rm);
  CHECK(DecodeMetaCommand(enc + "x").status().code() == raft::ErrorCode::kCorruption);
  enc[1] = 42;
  CHECK(DecodeMetaCommand(enc).status().message().find("op") != std::string::npos);
  enc = EncodeMetaCommand(rm);
  enc[0] = 2;  // a version-2 command is a data range's, not the meta range's
  CHECK(DecodeMetaCommand(enc).status().message().find("version") != std::string::npos);
  CHECK_FALSE(DecodeMetaCommand("").ok());
  CHECK_FALSE(DecodeMetaCommand(EncodeMetaCommand(put).substr(0, 20)).ok());
}

TEST_CASE("meta: processes join, leave and rejoin; ids are not shared", "[ranges]") {
  MetaState m;
  CHECK(m.Apply(RoundTrip(Add(Proc(1, "node0")))).empty());
  CHECK(m.Apply(RoundTrip(Add(Proc(2, "node1")))).empty());
  // The same id under another name: refused, nothing changes.
  CHECK(m.Apply(Add(Proc(2, "intruder"))).find("taken by node1") != std::string::npos);
  CHECK(m.processes().at(2).name == "node1");
  // A rejoin with new addresses updates them.
  ProcessRecord moved = Proc(2, "node1");
  moved.http_addr = "127.0.0.1:3999";
  CHECK(m.Apply(Add(moved)).empty());
  CHECK(m.processes().at(2).http_addr == "127.0.0.1:3999");
  MetaCommand leaving;
  leaving.op = MetaCommand::Op::kSetProcessState;
  leaving.id = 2;
  leaving.state = ProcessState::kLeaving;
  CHECK(m.Apply(leaving).empty());
  CHECK(m.processes().at(2).state == ProcessState::kLeaving);
  MetaCommand rm;
  rm.op = MetaCommand::Op::kRemoveProcess;
  rm.id = 2;
  CHECK(m.Apply(rm).empty());
  CHECK(m.Apply(rm).find("no process 2") != std::string::npos);
  leaving.id = 5;
  CHECK_FALSE(m.Apply(leaving).empty());
  CHECK(m.processes().size() == 1);
}

TEST_CASE("meta: the directory moves from one tiling to the next", "[ranges]") {
  MetaState m;
  // Not a tiling: refused.
  CHECK(m.Apply(Put({Range(2, 1, "", "m")})).find("tile") != std::string::npos);
  CHECK(m.ranges().size() == 0);
  REQUIRE(m.Apply(RoundTrip(Put(BootstrapRanges(4, {1})))).empty());
  CHECK(m.ranges().size() == 4);
  CHECK(m.next_range() == kFirstDataRange + 4);
  // A split of the last range: both halves together.
  const RangeDescriptor last = *m.ranges().Lookup("~");
  RangeDescriptor left = last;
  left.generation += 1;
  left.end = "x";
  RangeDescriptor right = Range(m.next_range(), 1, "x", "");
  CHECK(m.Apply(RoundTrip(Put({left, right}))).empty());
  CHECK(m.ranges().size() == 5);
  CHECK(m.ranges().Lookup("z")->id == right.id);
  CHECK(m.next_range() == right.id + 1);
  // Half of a split (a gap) and a stale descriptor change nothing.
  RangeDescriptor half = *m.ranges().Lookup("z");
  half.generation += 1;
  half.end = "zz";
  CHECK(m.Apply(Put({half})).find("tile") != std::string::npos);
  CHECK(m.Apply(Put({last})).find("older") != std::string::npos);
  CHECK(m.ranges().CheckTiling().empty());
  CHECK(m.ranges().size() == 5);
  CHECK_FALSE(m.Apply(Put({})).empty());
}

TEST_CASE("MetaStateMachine: applies meta commands from the log, answers each entry", "[ranges]") {
  MetaStateMachine sm;
  auto entry = [](raft::Index i, std::string data,
                  raft::EntryType type = raft::EntryType::kNormal) {
    raft::Entry e;
    e.term = 1;
    e.index = i;
    e.type = type;
    e.data = std::move(data);
    return e;
  };
  std::vector<raft::Entry> entries = {
      entry(1, ""),  // the leader's term-start no-op
      entry(2, EncodeMetaCommand(Add(Proc(1, "n1")))),
      entry(3, "garbage"),
      entry(4, "conf", raft::EntryType::kConfChange),
      entry(5, EncodeMetaCommand(Put({Range(2, 1, "", "m"), Range(3, 1, "m", "")}))),
      entry(6, EncodeMetaCommand(Put({Range(2, 1, "", "x")}))),  // would overlap range 3
  };
  std::vector<std::string> results;
  sm.Apply(entries, &results);
  REQUIRE(results.size() == entries.size());
  CHECK(results[0].empty());
  CHECK(results[1].empty());
  CHECK(results[2].find("malformed meta command") == 0);
  CHECK(results[3].empty());
  CHECK(results[4].empty());
  CHECK_FALSE(results[5].empty());  // refused, the same on every replica
  CHECK(sm.applied() == 6);
  CHECK(sm.AppliedIndex() == 0);  // in memory: the host restores its snapshot, replays the log
  REQUIRE(sm.Processes().size() == 1);
  CHECK(sm.Processes().at(1).name == "n1");
  REQUIRE(sm.Ranges().size() == 2);
  CHECK(sm.Ranges()[0].end == "m");

  // Its snapshot: the whole state, restored into another replica.
  struct StringWriter final : raft::SnapshotWriter {
    std::string bytes;
    raft::Status Write(std::string_view b) override {
      bytes.append(b);
      return raft::Status::Ok();
    }
  };
  struct StringReader final : raft::SnapshotReader {
    std::string bytes;
    std::size_t pos = 0;
    raft::Result<std::size_t> Read(char* buf, std::size_t n) override {
      n = std::min(n, bytes.size() - pos);
      std::copy_n(bytes.data() + pos, n, buf);
      pos += n;
      return n;
    }
  };
  auto src = sm.PrepareSnapshot();
  REQUIRE(src.ok());
  sm.Apply({entry(7, EncodeMetaCommand(Add(Proc(2, "n2"))))}, &results);  // after the freeze
  StringWriter w;
  REQUIRE((*src)->WriteTo(&w).ok());
  MetaStateMachine other;
  StringReader r;
  r.bytes = w.bytes;
  REQUIRE(other.Restore(&r, raft::SnapshotMeta{6, 1, {}}).ok());
  CHECK(other.applied() == 6);
  CHECK(other.Processes() == std::map<raft::NodeId, ProcessRecord>{{1, Proc(1, "n1")}});
  CHECK(other.Ranges() == std::vector<RangeDescriptor>{Range(2, 1, "", "m"), Range(3, 1, "m", "")});
  // A damaged body is refused and changes nothing.
  StringReader bad;
  bad.bytes = w.bytes.substr(0, w.bytes.size() - 1);
  CHECK(other.Restore(&bad, raft::SnapshotMeta{9, 1, {}}).code() == raft::ErrorCode::kCorruption);
  CHECK(other.applied() == 6);
}

TEST_CASE("meta: the snapshot record round-trips the state; bad records are refused", "[ranges]") {
  MetaState m;
  REQUIRE(m.Apply(Add(Proc(1, "n1"))).empty());
  REQUIRE(m.Apply(Add(Proc(2, "n2"))).empty());
  MetaCommand leaving;
  leaving.op = MetaCommand::Op::kSetProcessState;
  leaving.id = 2;
  leaving.state = ProcessState::kLeaving;
  REQUIRE(m.Apply(leaving).empty());
  REQUIRE(m.Apply(Put(BootstrapRanges(4, {1, 2}))).empty());
  const std::string rec = m.EncodeSnapshot();
  auto back = MetaState::DecodeSnapshot(rec);
  REQUIRE(back.ok());
  CHECK(back->processes() == m.processes());
  CHECK(back->processes().at(2).state == ProcessState::kLeaving);
  CHECK(back->ranges().All() == m.ranges().All());
  CHECK(back->next_range() == m.next_range());
  CHECK(back->EncodeSnapshot() == rec);
  // Empty state (before the bootstrap) round-trips too.
  CHECK(MetaState::DecodeSnapshot(MetaState().EncodeSnapshot()).ok());
  CHECK_FALSE(MetaState::DecodeSnapshot("").ok());
  CHECK_FALSE(MetaState::DecodeSnapshot(rec + "x").ok());
  CHECK_FALSE(MetaState::DecodeSnapshot(rec.substr(0, rec.size() - 3)).ok());
  std::string v3 = rec;
  v3[0] = 3;
  CHECK(MetaState::DecodeSnapshot(v3).status().message().find("version") != std::string::npos);
  // Version 1 (before split orders) ends after the descriptors.
  std::string v1 = rec.substr(0, rec.size() - 4);
  v1[0] = 1;
  auto old = MetaState::DecodeSnapshot(v1);
  REQUIRE(old.ok());
  CHECK(old->ranges().All() == m.ranges().All());
}

TEST_CASE("meta: split orders allocate ids; the published split or a cancel ends them",
          "[ranges]") {
  MetaState m;
  REQUIRE(m.Apply(Put(BootstrapRanges(2, {1}))).empty());  // 2: ["", "O"), 3: ["O", +inf)
  const RangeDescriptor r3 = *m.ranges().Find(3);
  auto order = [](RangeId g, std::uint64_t gen, std::string key) {
    MetaCommand c;
    c.op = MetaCommand::Op::kOrderSplit;
    c.order.range = g;
    c.order.generation = gen;
    c.order.key = std::move(key);
    return RoundTrip(c);
  };
  // Refused: no such range, the meta range, a stale generation, a key outside or at the start.
  CHECK(m.Apply(order(9, 1, "x")).find("no range") != std::string::npos);
  CHECK_FALSE(m.Apply(order(kMetaRange, 1, "x")).empty());
  CHECK(m.Apply(order(3, 2, "x")).find("generation") != std::string::npos);
  CHECK(m.Apply(order(3, 1, "A")).find("not inside") != std::string::npos);
  CHECK(m.Apply(order(3, 1, r3.start)).find("not inside") != std::string::npos);
  CHECK(m.split_orders().empty());
  const RangeId next = m.next_range();
  REQUIRE(m.Apply(order(3, 1, "x")).empty());
  CHECK(m.split_orders().at(3).new_range == next);
  CHECK(m.next_range() == next + 1);
  CHECK(m.Apply(order(3, 1, "y")).find("has a split order") != std::string::npos);
  REQUIRE(m.Apply(order(2, 1, "B")).empty());
  CHECK(m.split_orders().at(2).new_range == next + 1);

  // Orders travel in the snapshot.
  auto back = MetaState::DecodeSnapshot(m.EncodeSnapshot());
  REQUIRE(back.ok());
  CHECK(back->split_orders() == m.split_orders());

  // The split of range 3 published: its order goes, range 2's stays.
  RangeDescriptor left = r3, right = Range(next, 1, "x", "");
  left.generation = 2;
  left.end = "x";
  REQUIRE(m.Apply(Put({left, right})).empty());
  CHECK(m.split_orders().count(3) == 0);
  CHECK(m.split_orders().count(2) == 1);
  // Range 2's cancelled (an order its range refused): another may come.
  MetaCommand cancel;
  cancel.op = MetaCommand::Op::kCancelSplit;
  cancel.order.range = 2;
  cancel.order.generation = 2;
  CHECK_FALSE(m.Apply(RoundTrip(cancel)).empty());  // not that generation's
  cancel.order.generation = 1;
  REQUIRE(m.Apply(RoundTrip(cancel)).empty());
  CHECK(m.split_orders().empty());
  REQUIRE(m.Apply(order(2, 1, "C")).empty());
  CHECK(m.split_orders().at(2).new_range == next + 2);  // ids are never reused
}

}  // namespace kv
