// Frames (docs/wire-protocol.md, section 3): header layout, the streaming decoder fed
// in any split, and every header check firing before the payload is buffered.
#include "wire/frame.h"

#include <catch2/catch.hpp>
#include <random>

#include "base/crc32c.h"
#include "test_util.h"

namespace raft::wire {

using base::Crc32c;

namespace {

using testing::AllocationProbe;
using testing::BinaryBytes;
using testing::RawHeader;

std::string MustFrame(FrameType type, std::string_view payload) {
  Result<std::string> r = EncodeFrame(type, payload);
  REQUIRE(r.ok());
  return *r;
}

// Feeds `stream` into a fresh decoder in the given chunk sizes (the last chunk takes the
// rest) and returns every frame and the final status (Feed's error, else Finish()).
struct Decoded {
  std::vector<Frame> frames;
  Status status;
};
Decoded FeedInChunks(std::string_view stream, const std::vector<std::size_t>& sizes,
                     std::uint32_t max = kFramePayloadBytesMaxDefault) {
  FrameDecoder d(max);
  Decoded out;
  std::size_t i = 0;
  while (!stream.empty()) {
    const std::size_t n = i < sizes.size() ? std::min(sizes[i++], stream.size()) : stream.size();
    out.status = d.Feed(stream.substr(0, n));
    stream.remove_prefix(n);
    while (auto f = d.Pop()) out.frames.push_back(std::move(*f));
    if (!out.status.ok()) return out;
  }
  out.status = d.Finish();
  return out;
}

TEST_CASE("frame header layout is as specified", "[wire][frame]") {
  const std::string f = MustFrame(FrameType::kRaftMessage, "abc");
  REQUIRE(f.size() == kFrameHeaderBytes + 3);
  CHECK(f.substr(0, 4) == "RAFT");
  CHECK(f[4] == 3);  // version
  CHECK(f[5] == 4);  // RaftMessage
  CHECK(f.substr(6, 2) == std::string(2, '\0'));
  CHECK(f.substr(8, 4) == std::string("\x03\0\0\0", 4));
  CHECK(f.substr(0, 20) == RawHeader(3, 4, 0, 3, Crc32c("abc")));
  CHECK(f.substr(20) == "abc");
  auto header = EncodeFrameHeader(FrameType::kRaftMessage, "abc");
  REQUIRE(header.ok());
  CHECK(std::string(header->data(), header->size()) == f.substr(0, 20));
}

TEST_CASE("a queued frame takes the version negotiated later", "[wire][frame]") {
  std::string f = MustFrame(FrameType::kRaftMessage, "abc");
  SetFrameVersion(&f, 2);
  CHECK(f.substr(0, 20) == RawHeader(2, 4, 0, 3, Crc32c("abc")));
  Decoded d = FeedInChunks(f, {});
  REQUIRE(d.status.ok());
  REQUIRE(d.frames.size() == 1);
  CHECK(d.frames[0].version == 2);
  // Handshake frames keep version 1 whatever was negotiated.
  std::string h = MustFrame(FrameType::kHandshake, "hello");
  SetFrameVersion(&h, 2);
  CHECK(h == MustFrame(FrameType::kHandshake, "hello"));
}

TEST_CASE("frames decode whole, one byte at a time and in random splits", "[wire][frame]") {
  std::vector<Frame> sent = {
      {FrameType::kHandshake, 1, "hello"},
      {FrameType::kRaftMessage, 3, ""},
      {FrameType::kSnapshotChunk, 3, BinaryBytes(100000)},
      {FrameType::kSnapshotChunkAck, 3, std::string(1, '\0')},
      {FrameType::kHandshakeFinish, 3, BinaryBytes(32)},
      {FrameType::kHandshakeReject, 1, BinaryBytes(19)},
  };
  std::string stream;
  for (const Frame& f : sent) stream += MustFrame(f.type, f.payload);

  SECTION("all at once") {
    Decoded d = FeedInChunks(stream, {});
    CHECK(d.status.ok());
    CHECK(d.frames == sent);
  }
  SECTION("one byte at a time") {
    Decoded d = FeedInChunks(stream, std::vector<std::size_t>(stream.size(), 1));
    CHECK(d.status.ok());
    CHECK(d.frames == sent);
  }
  SECTION("random splits") {
    std::mt19937_64 rng(7);
    for (int iter = 0; iter < 200; ++iter) {
      std::vector<std::size_t> sizes;
      for (std::size_t total = 0; total < stream.size();) {
        sizes.push_back(rng() % 4 == 0 ? rng() % 3 : 1 + rng() % 40000);
        total += sizes.back();
      }
      Decoded d = FeedInChunks(stream, sizes);
      REQUIRE(d.status.ok());
      REQUIRE(d.frames == sent);
    }
  }
}

TEST_CASE("an empty stream and a clean close are fine", "[wire][frame]") {
  FrameDecoder d;
  CHECK(d.Feed("").ok());
  CHECK(d.Finish().ok());
  CHECK_FALSE(d.Pop());
  CHECK(d.partial_bytes() == 0);
}

TEST_CASE("every truncation of a stream is reported at end of stream", "[wire][frame]") {
  const std::string f = MustFrame(FrameType::kRaftMessage, "payload!");
  for (std::size_t len = 1; len < f.size(); ++len) {
    FrameDecoder d;
    REQUIRE(d.Feed(std::string_view(f).substr(0, len)).ok());
    CHECK(d.partial_bytes() == len);
    const Status s = d.Finish();
    INFO(s.message());
    CHECK(s.code() == ErrorCode::kCorruption);
    CHECK(s.message().find("stream ended inside") != std::string::npos);
    CHECK_FALSE(DecodeFrame(std::string_view(f).substr(0, len)).ok());
  }
  CHECK(DecodeFrame(f).ok());
  CHECK(DecodeFrame("").status().code() == ErrorCode::kCorruption);
  CHECK(DecodeFrame(f + f).status().code() == ErrorCode::kCorruption);
}

TEST_CASE("header checks fire before any payload byte is buffered", "[wire][frame]") {
  const std::uint32_t crc = Crc32c("x");
  struct Case {
    const char* name;
    std::string header;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"bad magic", "GET / HTTP/1.1\r\nHost", "bad magic 47 45 54 20 (not a raft peer?)"},
      {"header crc", RawHeader(1, 4, 0, 1, crc, 1), "frame header checksum mismatch"},
      {"version 0", RawHeader(0, 4, 0, 1, crc), "unsupported version 0"},
      {"version 1", RawHeader(1, 4, 0, 1, crc), "unsupported version 1"},
      {"version 4", RawHeader(4, 4, 0, 1, crc), "unsupported version 4"},
      {"handshake version", RawHeader(2, 1, 0, 1, crc), "unsupported version 2"},
      {"type 0", RawHeader(1, 0, 0, 1, crc), "unknown frame type 0"},
      {"type 13", RawHeader(2, 13, 0, 1, crc), "unknown frame type 13"},
      // Group frames travel on version 4 only, and version 4 carries no RaftMessage.
      {"group frame on 3", RawHeader(3, 8, 0, 1, crc), "unsupported version 3 for a GroupMessage"},
      {"beat on 2", RawHeader(2, 11, 0, 1, crc), "unsupported version 2 for a HostBeat"},
      {"group snapshot on 3", RawHeader(3, 9, 0, 1, crc),
       "unsupported version 3 for a GroupSnapshotChunk"},
      {"finish on 5", RawHeader(5, 7, 0, 1, crc), "unsupported version 5"},
      {"flags", RawHeader(2, 4, 0x8000, 1, crc), "reserved frame flags 0x8000 set"},
      {"length", RawHeader(2, 4, 0, 1025, crc), "payload of 1025 bytes exceeds the limit of 1024"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    FrameDecoder d(1024);
    const Status s = d.Feed(c.header);
    INFO(s.message());
    CHECK(s.code() == ErrorCode::kCorruption);
    CHECK(s.message().find(c.expect) != std::string::npos);
    CHECK(d.failed());
    CHECK(d.Feed("x").message() == s.message());  // failed for good
    CHECK(d.Finish().message() == s.message());
  }
}

TEST_CASE("bad magic is detected from its first byte", "[wire][frame]") {
  FrameDecoder d;
  CHECK(d.Feed("R").ok());
  CHECK(d.Feed("A").ok());
  const Status s = d.Feed("X");
  CHECK(s.code() == ErrorCode::kCorruption);
  CHECK(s.message().find("bad magic 52 41 58") != std::string::npos);
}

TEST_CASE("payload checksum mismatch is corruption", "[wire][frame]") {
  std::string f = MustFrame(FrameType::kRaftMessage, "abcdef");
  f.back() ^= 0x01;
  const Status s = FeedInChunks(f, {}).status;
  CHECK(s.code() == ErrorCode::kCorruption);
  CHECK(s.message().find("RaftMessage frame payload checksum mismatch") != std::string::npos);
}

TEST_CASE("frames completed before an error are still delivered", "[wire][frame]") {
  const std::string good = MustFrame(FrameType::kRaftMessage, "one");
  Decoded d = FeedInChunks(good + good + "JUNKJUNKJUNKJUNKJUNK", {});
  CHECK(d.frames.size() == 2);
  CHECK(d.status.message().find("frame at stream offset 46") != std::string::npos);
}

TEST_CASE("a lying length allocates only what arrives", "[wire][frame]") {
  // Valid header announcing the default maximum (64 MiB); then only 1000 bytes arrive.
  const std::string header = RawHeader(2, 5, 0, kFramePayloadBytesMaxDefault, 0x12345678);
  std::size_t largest = 0;
  {
    FrameDecoder d;
    AllocationProbe probe;
    REQUIRE(d.Feed(header).ok());
    REQUIRE(d.Feed(BinaryBytes(1000)).ok());
    largest = probe.largest();
    CHECK(d.Finish().code() == ErrorCode::kCorruption);
  }
  CHECK(largest <= 64 * 1024 + 1);  // + the string's terminator
  // One byte over the limit is refused at the header.
  FrameDecoder d;
  CHECK(d.Feed(RawHeader(2, 5, 0, kFramePayloadBytesMaxDefault + 1, 0)).code() ==
        ErrorCode::kCorruption);
}

TEST_CASE("payload buffer never grows past the declared length", "[wire][frame]") {
  const std::string payload = BinaryBytes(300000);
  const std::string f = MustFrame(FrameType::kSnapshotChunk, payload);
  FrameDecoder d;
  std::size_t largest = 0;
  {
    AllocationProbe probe;
    for (std::size_t i = 0; i < f.size(); i += 4096) {
      REQUIRE(d.Feed(std::string_view(f).substr(i, 4096)).ok());
    }
    largest = probe.largest();
  }
  CHECK(largest <= payload.size() + 64);
  auto frame = d.Pop();
  REQUIRE(frame);
  CHECK(frame->payload == payload);
}

TEST_CASE("the encoder refuses what a decoder would refuse", "[wire][frame]") {
  CHECK(EncodeFrame(FrameType::kRaftMessage, std::string(1025, 'x'), 1024).status().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(EncodeFrame(FrameType::kRaftMessage, std::string(1024, 'x'), 1024).ok());
  CHECK(EncodeFrame(static_cast<FrameType>(0), "").status().code() == ErrorCode::kInvalidArgument);
  CHECK(EncodeFrame(static_cast<FrameType>(13), "").status().code() == ErrorCode::kInvalidArgument);
  // A group frame on versions 2-3, a RaftMessage on 4.
  CHECK(EncodeFrame(FrameType::kHostBeat, "").status().code() == ErrorCode::kInvalidArgument);
  CHECK(EncodeFrame(FrameType::kHostBeat, "", 1024, kProtocolVersionHost).ok());
  CHECK(EncodeFrame(FrameType::kRaftMessage, "", 1024, kProtocolVersionHost).status().code() ==
        ErrorCode::kInvalidArgument);
}

// Security review F-11: a listener limits the first, unauthenticated frames to 4 KiB, the
// frames after them to the full limit; the header alone decides, before any payload byte.
TEST_CASE("the first frames of a stream have their own, smaller limit", "[wire][frame]") {
  const std::string big(kFirstFramePayloadBytesMax + 1, 'x');
  const std::string small(100, 'y');
  {
    FrameDecoder d(kFramePayloadBytesMaxDefault, kFirstFramePayloadBytesMax);
    Status s = d.Feed(MustFrame(FrameType::kHandshake, big).substr(0, kFrameHeaderBytes));
    CHECK(s.code() == ErrorCode::kCorruption);
    CHECK(s.message().find("handshake frames") != std::string::npos);
  }
  {
    // A listener: Handshake and HandshakeFinish are both limited.
    FrameDecoder d(kFramePayloadBytesMaxDefault, kFirstFramePayloadBytesMax, kHandshakeFramesIn);
    REQUIRE(d.Feed(MustFrame(FrameType::kHandshake, small)).ok());
    CHECK(d.Feed(MustFrame(FrameType::kHandshakeFinish, big)).code() == ErrorCode::kCorruption);
  }
  {
    FrameDecoder d(kFramePayloadBytesMaxDefault, kFirstFramePayloadBytesMax, kHandshakeFramesIn);
    REQUIRE(d.Feed(MustFrame(FrameType::kHandshake, small) +
                   MustFrame(FrameType::kHandshakeFinish, small) +
                   MustFrame(FrameType::kRaftMessage, big))
                .ok());
    CHECK(d.Pop());
    CHECK(d.Pop());
    auto third = d.Pop();
    REQUIRE(third);
    CHECK(third->payload.size() == big.size());
  }
  {
    FrameDecoder d(kFramePayloadBytesMaxDefault, kFirstFramePayloadBytesMax);
    REQUIRE(
        d.Feed(MustFrame(FrameType::kHandshake, small) + MustFrame(FrameType::kRaftMessage, big))
            .ok());
    auto first = d.Pop();
    auto second = d.Pop();
    REQUIRE(first);
    REQUIRE(second);
    CHECK(second->payload.size() == big.size());
  }
  {
    FrameDecoder d;  // a dialer's decoder: no first-frame limit
    REQUIRE(d.Feed(MustFrame(FrameType::kRaftMessage, big)).ok());
    CHECK(d.Pop());
  }
}

}  // namespace
}  // namespace raft::wire
