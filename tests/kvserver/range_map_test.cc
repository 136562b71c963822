// kvserver's range directory (range_map.h): descriptor codec, bootstrap split points,
// routing, updates by generation.
#include "range_map.h"

#include <algorithm>
#include <catch2/catch.hpp>

#include "range_test_util.h"

namespace kv {
namespace {

RangeDescriptor Range(RangeId id, std::uint64_t gen, std::string start, std::string end) {
  return TestRange(id, gen, std::move(start), std::move(end));
}

}  // namespace

TEST_CASE("range descriptor: round trip, and strict decoding", "[ranges]") {
  RangeDescriptor d = Range(7, 3, "b", std::string("k\0\xff", 3));
  const std::string enc = EncodeDescriptor(d);
  auto back = DecodeDescriptor(enc);
  REQUIRE(back.ok());
  CHECK(*back == d);
  RangeDescriptor open = Range(2, 1, "", "");
  open.replicas.clear();
  REQUIRE(DecodeDescriptor(EncodeDescriptor(open)).ok());
  CHECK(*DecodeDescriptor(EncodeDescriptor(open)) == open);

  CHECK(DecodeDescriptor("").status().code() == raft::ErrorCode::kCorruption);
  CHECK(DecodeDescriptor(enc.substr(0, enc.size() - 1)).status().code() ==
        raft::ErrorCode::kCorruption);
  CHECK(DecodeDescriptor(enc + "x").status().code() == raft::ErrorCode::kCorruption);
  std::string v2 = enc;
  v2[0] = 2;
  CHECK(DecodeDescriptor(v2).status().message().find("version") != std::string::npos);
  CHECK(DecodeDescriptor(EncodeDescriptor(Range(0, 1, "", ""))).status().message().find("id 0") !=
        std::string::npos);
  CHECK(DecodeDescriptor(EncodeDescriptor(Range(3, 1, "k", "b")))
            .status()
            .message()
            .find("start not below end") != std::string::npos);
  CHECK_FALSE(DecodeDescriptor(EncodeDescriptor(Range(3, 1, "k", "k"))).ok());
  RangeDescriptor many = Range(3, 1, "", "");
  many.replicas.assign(65, 1);
  CHECK_FALSE(DecodeDescriptor(EncodeDescriptor(many)).ok());
}

TEST_CASE("ranges: bootstrap split points spread over printable first bytes", "[ranges]") {
  CHECK(EvenSplitPoints(0).empty());
  CHECK(EvenSplitPoints(1).empty());
  CHECK(EvenSplitPoints(2) == std::vector<std::string>{"O"});  // 0x20 + 95/2
  const auto eight = EvenSplitPoints(8);
  REQUIRE(eight.size() == 7);
  for (std::size_t i = 1; i < eight.size(); ++i) CHECK(eight[i - 1] < eight[i]);
  CHECK(EvenSplitPoints(1000).size() == 94);  // one range per printable first byte

  RangeMap map;
  REQUIRE(map.Update(BootstrapRanges(8, {1})));
  CHECK(map.size() == 8);
  CHECK(map.CheckTiling().empty());
  // Every key has exactly one range; text keys spread over all of them.
  std::map<RangeId, int> hits;
  for (int c = 0; c < 256; ++c) {
    const std::string key(1, static_cast<char>(c));
    const RangeDescriptor* d = map.Lookup(key + "suffix");
    REQUIRE(d != nullptr);
    CHECK(d->Contains(key + "suffix"));
    if (c >= 0x20 && c < 0x7f) ++hits[d->id];
  }
  CHECK(hits.size() == 8);
  for (const auto& [id, n] : hits) CHECK(n >= 11);  // 95 / 8 rounded down
  CHECK(map.Lookup("")->id == kFirstDataRange);
  CHECK(map.Lookup("\xff\xff")->id == kFirstDataRange + 7);
}

TEST_CASE("ranges: a split updates the directory whole; an older one is dropped", "[ranges]") {
  RangeMap map;
  REQUIRE(map.Update({Range(2, 1, "", "m"), Range(3, 1, "m", "")}));
  REQUIRE(map.CheckTiling().empty());
  // Range 3 splits at "t": its new descriptor and range 4's together.
  REQUIRE(map.Update({Range(3, 2, "m", "t"), Range(4, 1, "t", "")}));
  CHECK(map.CheckTiling().empty());
  CHECK(map.Lookup("p")->id == 3);
  CHECK(map.Lookup("x")->id == 4);
  CHECK(map.Lookup("t")->id == 4);
  CHECK(map.Lookup("a")->id == 2);
  // A stale copy of range 3 (generation 1) changes nothing.
  CHECK_FALSE(map.Update({Range(3, 1, "m", "")}));
  CHECK(map.Lookup("x")->id == 4);
  // The same update again is harmless.
  REQUIRE(map.Update({Range(3, 2, "m", "t"), Range(4, 1, "t", "")}));
  CHECK(map.size() == 3);
  // Half an update (range 4 split, its right half not known yet) leaves a gap, which
  // routing reports rather than guessing.
  REQUIRE(map.Update({Range(4, 2, "t", "w")}));
  CHECK(map.Lookup("y") == nullptr);
  CHECK(map.CheckTiling().find("ends at \"w\"") != std::string::npos);
  REQUIRE(map.Update({Range(5, 1, "w", "")}));
  CHECK(map.CheckTiling().empty());
  // A merge-like update (one range over two) removes what it overlaps.
  REQUIRE(map.Update({Range(4, 3, "t", "")}));
  CHECK(map.Find(5) == nullptr);
  CHECK(map.CheckTiling().empty());
}

TEST_CASE("ranges: an update naming a range twice takes its newest; order does not matter",
          "[ranges]") {
  // The splits a node applied, as RangesMode::RefreshRoutes gathers them: range 2's
  // record names range 3 at generation 1, range 3's own later split names it at 2.
  for (bool newest_first : {false, true}) {
    RangeMap map;
    REQUIRE(map.Update({Range(2, 1, "", "")}));
    std::vector<RangeDescriptor> records = {Range(2, 2, "", "m"), Range(3, 1, "m", ""),
                                            Range(3, 2, "m", "t"), Range(4, 1, "t", "")};
    if (newest_first) std::reverse(records.begin(), records.end());
    REQUIRE(map.Update(records));
    CHECK(map.CheckTiling().empty());
    CHECK(map.size() == 3);
    CHECK(map.Lookup("x")->id == 4);
    CHECK(map.Lookup("p")->id == 3);
    // Again: nothing moves.
    REQUIRE(map.Update(records));
    CHECK(map.size() == 3);
    CHECK(map.Lookup("x")->id == 4);
  }
}

TEST_CASE("ranges: a prefix's ranges, in key order", "[ranges]") {
  CHECK(PrefixEnd("ab") == "ac");
  CHECK(PrefixEnd(std::string("a\xff", 2)) == "b");
  CHECK(PrefixEnd(std::string("\xff\xff", 2)).empty());
  CHECK(PrefixEnd("").empty());
  RangeMap map;
  REQUIRE(map.Update({Range(2, 1, "", "c"), Range(3, 1, "c", "f"), Range(4, 1, "f", "")}));
  auto ids = [](const std::vector<RangeDescriptor>& ds) {
    std::vector<RangeId> out;
    for (const auto& d : ds) out.push_back(d.id);
    return out;
  };
  CHECK(ids(map.Overlapping("d", PrefixEnd("d"))) == std::vector<RangeId>{3});
  CHECK(ids(map.Overlapping("b", "g")) == std::vector<RangeId>{2, 3, 4});
  CHECK(ids(map.Overlapping("c", "f")) == std::vector<RangeId>{3});
  CHECK(ids(map.Overlapping("", "")) == std::vector<RangeId>{2, 3, 4});
  CHECK(ids(map.All()) == std::vector<RangeId>{2, 3, 4});
}

}  // namespace kv
