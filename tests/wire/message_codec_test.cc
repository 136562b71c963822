// raft_message (docs/wire-protocol.md, section 4.2): exact round trips of every message
// type and edge value, the documented byte layout, and every grammar rejection.
#include "wire/message_codec.h"

#include <catch2/catch.hpp>
#include <limits>
#include <random>

#include "raft/coding.h"
#include "test_util.h"
#include "wire/wire_format.h"

namespace raft::wire {

using raft::ByteWriter;

namespace {

using testing::BinaryBytes;
using testing::FullMessage;

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

Message RoundTrip(const Message& m) {
  Result<std::string> enc = EncodeMessage(m);
  INFO((enc.ok() ? "" : enc.status().message()));
  REQUIRE(enc.ok());
  Result<Message> dec = DecodeMessage(*enc);
  INFO((dec.ok() ? "" : dec.status().message()));
  REQUIRE(dec.ok());
  return *dec;
}

Status DecodeError(std::string_view payload) {
  Result<Message> r = DecodeMessage(payload);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == ErrorCode::kCorruption);
  return r.status();
}

TEST_CASE("every message type round-trips with zero, max and full fields", "[wire][message]") {
  for (int t = 1; t <= kMessageTypeMax; ++t) {
    INFO("type " << t);
    Message zero;
    zero.type = static_cast<MessageType>(t);
    CHECK(RoundTrip(zero) == zero);

    Message full = FullMessage();
    full.type = static_cast<MessageType>(t);
    CHECK(RoundTrip(full) == full);

    Message max = full;
    max.from = max.to = max.term = max.log_term = max.index = max.commit = kMax;
    max.reject_hint = max.read_seq = max.snapshot.index = max.snapshot.term = kMax;
    max.entries = {Entry{kMax, kMax, EntryType::kConfChange, ""}};
    max.snapshot.conf.voters = {0, 1, kMax - 1, kMax};
    max.snapshot.conf.learners = {kMax / 2};
    CHECK(RoundTrip(max) == max);
  }
}

TEST_CASE("flags decode independently", "[wire][message]") {
  for (bool reject : {false, true}) {
    for (bool transfer : {false, true}) {
      for (bool quiesce : {false, true}) {
        Message m;
        m.type = MessageType::kVote;
        m.reject = reject;
        m.campaign_transfer = transfer;
        m.quiesce = quiesce;
        CHECK(RoundTrip(m) == m);
      }
    }
  }
}

TEST_CASE("large, empty, binary and many entries round-trip", "[wire][message]") {
  Message m;
  m.type = MessageType::kAppend;
  SECTION("one 4 MiB entry with NULs") {
    m.entries.push_back(Entry{1, 1, EntryType::kNormal, BinaryBytes(4 << 20)});
  }
  SECTION("100000 small entries") {
    for (Index i = 1; i <= 100000; ++i) {
      m.entries.push_back(Entry{i / 7, i, EntryType::kNormal, i % 3 ? "" : BinaryBytes(i % 50)});
    }
  }
  SECTION("context at its limit") { m.context = BinaryBytes(kContextBytesMax, 3); }
  SECTION("membership at its limit") {
    for (NodeId id = 1; id <= kConfNodesMax; ++id) {
      m.snapshot.conf.voters.insert(id);
      m.snapshot.conf.learners.insert(id + kConfNodesMax);
    }
  }
  CHECK(RoundTrip(m) == m);
}

TEST_CASE("random messages round-trip", "[wire][message]") {
  std::mt19937_64 rng(1234);
  for (int i = 0; i < 2000; ++i) {
    const Message m = testing::RandomMessage(rng);
    REQUIRE(RoundTrip(m) == m);
  }
}

TEST_CASE("the byte layout is the documented one", "[wire][message]") {
  Message m;
  m.type = MessageType::kHeartbeat;
  m.from = 1;
  m.to = 2;
  m.term = 3;
  m.commit = 4;
  m.read_seq = 5;
  m.reject = true;
  std::string want;
  ByteWriter w(&want);
  w.U8(7);  // kHeartbeat
  w.U8(kMessageFlagReject);
  for (std::uint64_t v : {1, 2, 3, 0, 0, 4, 0, 5}) w.U64(v);
  w.Bytes("");  // context
  w.U32(0);     // entry_count
  w.U64(0);     // snapshot.index
  w.U64(0);     // snapshot.term
  w.U32(0);     // voters
  w.U32(0);     // learners
  CHECK(want.size() == kMessageFixedBytes);
  Result<std::string> got = EncodeMessage(m);
  REQUIRE(got.ok());
  CHECK(*got == want);
}

TEST_CASE("grammar violations are corruption", "[wire][message]") {
  const std::string good = *EncodeMessage(FullMessage());
  REQUIRE(DecodeMessage(good).ok());
  auto with_byte = [&](std::size_t offset, char value) {
    std::string s = good;
    s[offset] = value;
    return s;
  };
  SECTION("unknown message types") {
    CHECK(DecodeError(with_byte(0, 0)).message().find("unknown message type 0") !=
          std::string::npos);
    CHECK(DecodeError(with_byte(0, 13)).message().find("unknown message type 13") !=
          std::string::npos);
  }
  SECTION("reserved flag bits") {
    CHECK(DecodeError(with_byte(1, 0x08)).message().find("reserved flag bits 0x08") !=
          std::string::npos);
  }
  SECTION("unknown entry type") {
    // context (7 bytes) ends at 66 + 4 + 7 = 77; entry_count 4; entry.term/index 16.
    const std::size_t entry_type_offset = 66 + 4 + 7 + 4 + 16;
    REQUIRE(good[entry_type_offset] == 0);
    CHECK(DecodeError(with_byte(entry_type_offset, 2)).message().find("unknown type 2") !=
          std::string::npos);
  }
  SECTION("trailing bytes") {
    CHECK(DecodeError(good + '\0').message().find("1 trailing bytes") != std::string::npos);
  }
  SECTION("every truncation") {
    for (std::size_t len = 0; len < good.size(); ++len) {
      INFO("len " << len);
      CHECK_FALSE(DecodeError(std::string_view(good).substr(0, len)).ok());
    }
  }
  SECTION("unsorted or duplicate ids") {
    Message m;
    m.snapshot.conf.voters = {5, 9};
    std::string s = *EncodeMessage(m);
    // voters: count at size-8-16-4... the two ids are the 16 bytes before learners' count.
    const std::size_t first_id = s.size() - 4 - 16;
    std::string dup = s;
    dup.replace(first_id, 8, s.substr(first_id + 8, 8));  // {9, 9}
    CHECK(DecodeError(dup).message().find("not strictly increasing (9 after 9)") !=
          std::string::npos);
  }
  SECTION("counts above the limits, without the bytes to back them") {
    Message m;
    std::string s = *EncodeMessage(m);
    const std::size_t entry_count_offset = 66 + 4;
    std::string many = s;
    many[entry_count_offset + 3] = 0x7f;  // ~2^30 entries
    CHECK(DecodeError(many).message().find("exceeds the limit of 1048576") != std::string::npos);
    std::string some = s;
    some[entry_count_offset + 1] = 0x01;  // 256 entries in 24 bytes
    CHECK(DecodeError(some).message().find("but only 24 bytes remain") != std::string::npos);
    std::string ctx = s;
    ctx[66 + 2] = 0x02;  // context of 128 KiB
    CHECK(DecodeError(ctx).message().find("exceeds the limit of 65536") != std::string::npos);
  }
}

TEST_CASE("the encoder refuses what the decoder would refuse", "[wire][message]") {
  Message m;
  SECTION("unknown type") { m.type = static_cast<MessageType>(0); }
  SECTION("unknown type 13") { m.type = static_cast<MessageType>(13); }
  SECTION("unknown entry type") { m.entries.push_back(Entry{1, 1, static_cast<EntryType>(9), ""}); }
  SECTION("context too long") { m.context = std::string(kContextBytesMax + 1, 'c'); }
  SECTION("too many voters") {
    for (NodeId id = 1; id <= kConfNodesMax + 1; ++id) m.snapshot.conf.voters.insert(id);
  }
  SECTION("too many entries") { m.entries.resize(kEntriesPerMessageMax + 1); }
  std::string out = "keep";
  CHECK(AppendMessage(m, &out).code() == ErrorCode::kInvalidArgument);
  CHECK(out == "keep");
  CHECK(EncodeMessage(m).status().code() == ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace raft::wire
