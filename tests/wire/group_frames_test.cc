// Group frames of protocol version 4 (docs/wire-protocol.md, section 4.4): round trips,
// the documented byte layout, every grammar rejection, and the lossless conversion of
// a core's heartbeats into beats.
#include "wire/group_frames.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

#include "raft/coding.h"
#include "test_util.h"
#include "wire/frame.h"
#include "wire/snapshot_chunk.h"
#include "wire/wire_format.h"

namespace raft::wire {

namespace {

using testing::EdgyU64;
using testing::FullMessage;
using testing::RandomMessage;

// The message of the kCorruption a decoder must return.
template <typename T>
std::string DecodeError(const Result<T>& r) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == ErrorCode::kCorruption);
  return r.status().message();
}

}  // namespace

TEST_CASE("a group message round-trips with its group id in front", "[wire][group]") {
  const Message m = FullMessage();
  Result<std::string> enc = EncodeGroupMessage(42, m);
  REQUIRE(enc.ok());
  CHECK(DecodeFixed64(enc->data()) == 42);
  Result<GroupMessage> dec = DecodeGroupMessage(*enc);
  REQUIRE(dec.ok());
  CHECK(dec->group == 42);
  CHECK(dec->message == m);

  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    const GroupId g = EdgyU64(rng) | 1;  // never 0
    const Message r = RandomMessage(rng);
    Result<std::string> e = EncodeGroupMessage(g, r);
    REQUIRE(e.ok());
    Result<GroupMessage> d = DecodeGroupMessage(*e);
    REQUIRE(d.ok());
    CHECK(d->group == g);
    CHECK(d->message == r);
  }
}

TEST_CASE("a group message for group 0 or with a bad raft_message is refused", "[wire][group]") {
  CHECK(EncodeGroupMessage(kNoGroup, FullMessage()).status().code() == ErrorCode::kInvalidArgument);
  std::string enc = *EncodeGroupMessage(9, FullMessage());
  std::string zero = enc;
  EncodeFixed64(zero.data(), 0);
  CHECK(DecodeError(DecodeGroupMessage(zero)).find("group is 0") != std::string::npos);
  CHECK(DecodeError(DecodeGroupMessage(enc.substr(0, 5))).find("group") != std::string::npos);
  CHECK(DecodeError(DecodeGroupMessage(enc.substr(0, enc.size() - 1))).find("raft_message") !=
        std::string::npos);
  CHECK(DecodeError(DecodeGroupMessage(enc + "x")).find("raft_message") != std::string::npos);
}

TEST_CASE("host beats have the documented layout and round-trip", "[wire][group]") {
  SECTION("an empty beat frame, the liveness frame, is a zero count") {
    Result<std::string> enc = EncodeHostBeat({});
    REQUIRE(enc.ok());
    CHECK(*enc == std::string(4, '\0'));
    CHECK(DecodeHostBeat(*enc)->beats.empty());
    CHECK(*EncodeHostBeatAck({}) == std::string(4, '\0'));
  }
  SECTION("one beat: count, group, term, commit, read_seq, flags") {
    HostBeat hb{{Beat{3, 5, 7, 11, true}}};
    std::string enc = *EncodeHostBeat(hb);
    REQUIRE(enc.size() == 4 + kBeatBytes);
    CHECK(DecodeFixed32(enc.data()) == 1);
    CHECK(DecodeFixed64(enc.data() + 4) == 3);
    CHECK(DecodeFixed64(enc.data() + 12) == 5);
    CHECK(DecodeFixed64(enc.data() + 20) == 7);
    CHECK(DecodeFixed64(enc.data() + 28) == 11);
    CHECK(enc[36] == static_cast<char>(kBeatFlagQuiesce));
    CHECK(*DecodeHostBeat(enc) == hb);
  }
  SECTION("one ack: count, group, term, read_seq") {
    HostBeatAck ha{{BeatAck{3, 5, 11}}};
    std::string enc = *EncodeHostBeatAck(ha);
    REQUIRE(enc.size() == 4 + kBeatAckBytes);
    CHECK(DecodeFixed64(enc.data() + 4) == 3);
    CHECK(DecodeFixed64(enc.data() + 12) == 5);
    CHECK(DecodeFixed64(enc.data() + 20) == 11);
    CHECK(*DecodeHostBeatAck(enc) == ha);
  }
  SECTION("random frames") {
    std::mt19937_64 rng(11);
    for (int i = 0; i < 100; ++i) {
      HostBeat hb;
      HostBeatAck ha;
      const std::size_t n = rng() % 50;
      for (std::size_t j = 0; j < n; ++j) {
        hb.beats.push_back(
            {EdgyU64(rng) | 1, EdgyU64(rng), EdgyU64(rng), EdgyU64(rng), (rng() & 1) != 0});
        ha.acks.push_back({EdgyU64(rng) | 1, EdgyU64(rng), EdgyU64(rng)});
      }
      CHECK(*DecodeHostBeat(*EncodeHostBeat(hb)) == hb);
      CHECK(*DecodeHostBeatAck(*EncodeHostBeatAck(ha)) == ha);
    }
  }
}

TEST_CASE("host beats that break the grammar are refused", "[wire][group]") {
  const std::string enc = *EncodeHostBeat({{Beat{3, 5, 7, 11, false}, Beat{4, 5, 7, 0, true}}});
  std::string flags = enc;
  flags[4 + kBeatBytes - 1] = 2;
  CHECK(DecodeError(DecodeHostBeat(flags)).find("reserved flag") != std::string::npos);
  std::string zero = enc;
  EncodeFixed64(zero.data() + 4 + kBeatBytes, 0);
  CHECK(DecodeError(DecodeHostBeat(zero)).find("beat.group is 0") != std::string::npos);
  CHECK(DecodeError(DecodeHostBeat(enc.substr(0, enc.size() - 1))).find("count") !=
        std::string::npos);
  DecodeError(DecodeHostBeat(enc + "\x01"));
  std::string huge = enc;
  EncodeFixed32(huge.data(), kBeatsPerFrameMax + 1);
  DecodeError(DecodeHostBeat(huge));
  DecodeError(DecodeHostBeat("\x01"));

  const std::string ack = *EncodeHostBeatAck({{BeatAck{3, 5, 11}}});
  std::string ack_zero = ack;
  EncodeFixed64(ack_zero.data() + 4, 0);
  DecodeError(DecodeHostBeatAck(ack_zero));
  DecodeError(DecodeHostBeatAck(ack.substr(0, ack.size() - 1)));
  DecodeError(DecodeHostBeatAck(ack + "x"));

  CHECK(EncodeHostBeat({{Beat{}}}).status().code() == ErrorCode::kInvalidArgument);
  CHECK(EncodeHostBeatAck({{BeatAck{}}}).status().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("group frames travel in version-4 frames", "[wire][group]") {
  const std::string payload = *EncodeHostBeat({{Beat{3, 5, 7, 11, true}}});
  Result<std::string> frame = EncodeFrame(FrameType::kHostBeat, payload,
                                          kFramePayloadBytesMaxDefault, kProtocolVersionHost);
  REQUIRE(frame.ok());
  CHECK(frame->size() == kFrameHeaderBytes + 4 + kBeatBytes);
  FrameDecoder d;
  REQUIRE(d.Feed(*frame).ok());
  std::optional<Frame> f = d.Pop();
  REQUIRE(f.has_value());
  CHECK(f->type == FrameType::kHostBeat);
  CHECK(f->version == kProtocolVersionHost);
  CHECK(DecodeHostBeat(f->payload)->beats.size() == 1);
  CHECK(std::string(FrameTypeName(FrameType::kHostBeatAck)) == "HostBeatAck");
  // The same frame on version 3 is refused, by the encoder and the decoder.
  CHECK_FALSE(EncodeFrame(FrameType::kHostBeat, payload).ok());
  std::string v3 = *frame;
  SetFrameVersion(&v3, kProtocolVersionMax);
  FrameDecoder old;
  CHECK(old.Feed(v3).message().find("unsupported version 3 for a HostBeat") != std::string::npos);
}

TEST_CASE("random bytes never decode into a crash", "[wire][group]") {
  std::mt19937_64 rng(13);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes = testing::RandomBytes(rng, 200);
    if (bytes.size() >= 4 && (rng() & 1))
      EncodeFixed32(bytes.data(), (bytes.size() - 4) / kBeatBytes);
    (void)DecodeHostBeat(bytes);
    (void)DecodeHostBeatAck(bytes);
    (void)DecodeGroupMessage(bytes);
  }
}

TEST_CASE("a core's heartbeats become beats without loss; others travel whole", "[wire][group]") {
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.from = 1;
  hb.to = 2;
  hb.term = 4;
  hb.commit = 9;
  hb.read_seq = 3;
  hb.quiesce = true;
  std::optional<Beat> b = BeatOf(7, hb);
  REQUIRE(b.has_value());
  CHECK(*b == Beat{7, 4, 9, 3, true});
  CHECK(HeartbeatOf(*b, 1, 2) == hb);

  Message resp;
  resp.type = MessageType::kHeartbeatResponse;
  resp.from = 2;
  resp.to = 1;
  resp.term = 4;
  resp.read_seq = 3;
  std::optional<BeatAck> a = BeatAckOf(7, resp);
  REQUIRE(a.has_value());
  CHECK(HeartbeatResponseOf(*a, 2, 1) == resp);

  // Anything a beat cannot carry keeps the message whole.
  Message with_context = hb;
  with_context.context.assign(1, 'x');  // not `= "x"`: GCC 12 -O3 warns (-Wrestrict)
  CHECK_FALSE(BeatOf(7, with_context).has_value());
  Message with_index = hb;
  with_index.index = 1;
  CHECK_FALSE(BeatOf(7, with_index).has_value());
  Message rejecting = resp;
  rejecting.reject = true;
  CHECK_FALSE(BeatAckOf(7, rejecting).has_value());
  CHECK_FALSE(BeatOf(kNoGroup, hb).has_value());
  CHECK_FALSE(BeatOf(7, resp).has_value());
  CHECK_FALSE(BeatAckOf(7, hb).has_value());
}

TEST_CASE("group snapshot chunks and acks carry their group in front", "[wire][group]") {
  const std::string data = "snapshot bytes";
  SnapshotChunkView fields;
  fields.snapshot_index = 77;
  fields.snapshot_term = 5;
  fields.offset = 1 << 20;
  fields.last = true;
  fields.layout = true;
  auto fill = [&](char* p) {
    std::copy(data.begin(), data.end(), p);
    return Status::Ok();
  };
  auto frame = EncodeSnapshotChunkFrame(fields, data.size(), fill, 1 << 20, /*group=*/9);
  REQUIRE(frame.ok());
  auto f = DecodeFrame(*frame, 1 << 20);
  REQUIRE(f.ok());
  CHECK(f->type == FrameType::kGroupSnapshotChunk);
  CHECK(f->version == kProtocolVersionHost);
  CHECK(DecodeFixed64(f->payload.data()) == 9);
  auto v = DecodeGroupSnapshotChunkView(f->payload);
  REQUIRE(v.ok());
  CHECK(v->group == 9);
  CHECK(v->chunk.snapshot_index == 77);
  CHECK(v->chunk.snapshot_term == 5);
  CHECK(v->chunk.offset == 1 << 20);
  CHECK(v->chunk.last);
  CHECK(v->chunk.layout);
  CHECK(v->chunk.data == data);
  // Group 0 means no group: a version 2-3 SnapshotChunk, as before.
  auto plain = EncodeSnapshotChunkFrame(fields, data.size(), fill, 1 << 20);
  REQUIRE(plain.ok());
  CHECK(DecodeFrame(*plain, 1 << 20)->type == FrameType::kSnapshotChunk);

  SnapshotChunkAck ack{77, 5, 123, true};
  auto enc = EncodeGroupSnapshotChunkAck(9, ack);
  REQUIRE(enc.ok());
  CHECK(enc->size() == 8 + 25);
  auto dec = DecodeGroupSnapshotChunkAck(*enc);
  REQUIRE(dec.ok());
  CHECK(dec->group == 9);
  CHECK(dec->ack == ack);

  CHECK_FALSE(EncodeGroupSnapshotChunkAck(0, ack).ok());
  std::string zero = *enc;
  for (int i = 0; i < 8; ++i) zero[static_cast<std::size_t>(i)] = '\0';
  CHECK(DecodeError(DecodeGroupSnapshotChunkAck(zero)).find("group 0") != std::string::npos);
  CHECK_FALSE(DecodeGroupSnapshotChunkAck(enc->substr(0, 5)).ok());
  CHECK_FALSE(DecodeGroupSnapshotChunkAck(*enc + "x").ok());
  std::string payload(f->payload);
  for (int i = 0; i < 8; ++i) payload[static_cast<std::size_t>(i)] = '\0';
  CHECK(DecodeError(DecodeGroupSnapshotChunkView(payload)).find("group 0") != std::string::npos);
  CHECK_FALSE(DecodeGroupSnapshotChunkView(std::string(f->payload).substr(0, 12)).ok());
}

}  // namespace raft::wire
