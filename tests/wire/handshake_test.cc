// Handshake, snapshot chunk and Payload codecs (docs/wire-protocol.md, 4.1 and 4.3).
#include "wire/handshake.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <limits>
#include <random>

#include "test_util.h"
#include "wire/payload.h"
#include "wire/snapshot_chunk.h"

namespace raft::wire {
namespace {

using testing::BinaryBytes;

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

Payload RoundTripFrame(const Payload& p) {
  const std::string bytes = testing::MustEncodeFrame(p);
  Result<Frame> frame = DecodeFrame(bytes);
  REQUIRE(frame.ok());
  CHECK(frame->type == PayloadFrameType(p));
  Result<Payload> back = DecodePayload(*frame);
  INFO((back.ok() ? "" : back.status().message()));
  REQUIRE(back.ok());
  return *back;
}

TEST_CASE("handshake payloads round-trip with edge values", "[wire][handshake]") {
  const std::vector<Payload> cases = {
      Handshake{},
      Handshake{1, 255, kMax, 0, std::string(kClusterIdBytesMax, 'c'), BinaryBytes(kAuthBytesMax),
                std::string(kAddressBytesMax, 'a')},
      Handshake{3, 3, 1, 2, std::string("a\0b", 3), "", "127.0.0.1:4000"},
      HandshakeAck{},
      HandshakeAck{255, kMax, BinaryBytes(32)},
      HandshakeReject{RejectCode::kVersionUnsupported, ""},
      HandshakeReject{RejectCode::kShuttingDown, std::string(kReasonBytesMax, 'r')},
      HandshakeFinish{},
      HandshakeFinish{BinaryBytes(kProofBytes)},
  };
  for (const Payload& p : cases) CHECK(RoundTripFrame(p) == p);
}

TEST_CASE("handshake frames always carry version 1, HandshakeFinish the protocol's",
          "[wire][handshake]") {
  const std::string f = testing::MustEncodeFrame(Handshake{});
  CHECK(f[4] == 1);
  CHECK(f[5] == static_cast<char>(FrameType::kHandshake));
  const std::string fin = testing::MustEncodeFrame(HandshakeFinish{});
  CHECK(fin[4] == 3);
  CHECK(fin[5] == 7);
  // A HandshakeFinish claiming version 1 (no such frame in version 1) is refused.
  std::string v1 = fin;
  v1[4] = 1;
  CHECK_FALSE(DecodeFrame(v1).ok());
  CHECK(Handshake{}.version_min == 2);
  CHECK(Handshake{}.version_max == 3);
}

TEST_CASE("handshake finish grammar", "[wire][handshake]") {
  CHECK(DecodeHandshakeFinish(std::string(4, '\0'))->proof.empty());
  std::string too_long = *EncodeHandshakeFinish(HandshakeFinish{std::string(kProofBytes, 'p')});
  too_long[0] = static_cast<char>(kProofBytes + 1);
  too_long += 'p';
  CHECK(DecodeHandshakeFinish(too_long).status().code() == ErrorCode::kCorruption);
  CHECK(EncodeHandshakeFinish(HandshakeFinish{std::string(kProofBytes + 1, 'p')}).status().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(DecodeHandshakeFinish("").status().code() == ErrorCode::kCorruption);
}

// The transcript is the spec's grammar byte for byte (docs/wire-protocol.md 4.1), and
// every input changes it: the role, the hello, the version, the listener, the nonce.
TEST_CASE("the handshake transcript covers every input", "[wire][handshake]") {
  const std::string nonce(kNonceBytes, 'n');
  auto t = HandshakeTranscript(kRoleDialer, "HELLO", 2, 7, nonce);
  REQUIRE(t.ok());
  std::string want("raft-handshake-v2\0", 18);
  want += std::string("\x06\0\0\0dialer", 10);
  want += std::string("\x05\0\0\0HELLO", 9);
  want += std::string("\x02\x07\0\0\0\0\0\0\0", 9);
  want += std::string("\x20\0\0\0", 4) + nonce;
  CHECK(*t == want);
  CHECK(*HandshakeTranscript(kRoleListener, "HELLO", 2, 7, nonce) != *t);
  CHECK(*HandshakeTranscript(kRoleDialer, "HELLo", 2, 7, nonce) != *t);
  CHECK(*HandshakeTranscript(kRoleDialer, "HELLO", 3, 7, nonce) != *t);
  CHECK(*HandshakeTranscript(kRoleDialer, "HELLO", 2, 8, nonce) != *t);
  CHECK(*HandshakeTranscript(kRoleDialer, "HELLO", 2, 7, std::string(kNonceBytes, 'm')) != *t);
  CHECK(HandshakeTranscript("verylongrole", "", 2, 7, nonce).status().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(HandshakeTranscript(kRoleDialer, "", 2, 7, nonce + "x").status().code() ==
        ErrorCode::kInvalidArgument);
}

TEST_CASE("handshake grammar violations", "[wire][handshake]") {
  std::string good = *EncodeHandshake(Handshake{1, 2, 3, 4, "cluster", "auth", "h:1"});
  SECTION("version range") {
    std::string s = good;
    s[0] = 3;  // min 3 > max 2
    CHECK(DecodeHandshake(s).status().message().find("bad version range [3, 2]") !=
          std::string::npos);
    s[0] = 0;
    CHECK_FALSE(DecodeHandshake(s).ok());
  }
  SECTION("cluster id too long") {
    std::string s = good;
    s[18] = static_cast<char>(0xff);
    s[19] = 0x01;  // 511 bytes
    CHECK(DecodeHandshake(s).status().message().find("exceeds the limit of 255") !=
          std::string::npos);
  }
  SECTION("trailing bytes and truncation") {
    CHECK(DecodeHandshake(good + "x").status().code() == ErrorCode::kCorruption);
    for (std::size_t len = 0; len < good.size(); ++len) {
      CHECK(DecodeHandshake(std::string_view(good).substr(0, len)).status().code() ==
            ErrorCode::kCorruption);
    }
  }
  SECTION("reject codes") {
    CHECK(DecodeHandshakeReject(std::string("\x00\0\0\0\0", 5)).status().code() ==
          ErrorCode::kCorruption);
    CHECK(DecodeHandshakeReject(std::string("\x07\0\0\0\0", 5)).status().code() ==
          ErrorCode::kCorruption);
    CHECK(DecodeHandshakeReject(std::string("\x06\0\0\0\0", 5)).ok());
  }
  SECTION("ack version 0") { CHECK_FALSE(DecodeHandshakeAck(std::string(13, '\0')).ok()); }
  SECTION("encoders refuse what decoders refuse") {
    CHECK(EncodeHandshake(Handshake{0, 1, 1, 1, "", "", ""}).status().code() ==
          ErrorCode::kInvalidArgument);
    CHECK(EncodeHandshake(Handshake{1, 1, 1, 1, "", "", std::string(256, 'h')}).status().code() ==
          ErrorCode::kInvalidArgument);
    CHECK(EncodeHandshake(Handshake{2, 1, 1, 1, "", "", ""}).status().code() ==
          ErrorCode::kInvalidArgument);
    CHECK(EncodeHandshake(Handshake{1, 1, 1, 1, std::string(256, 'c'), "", ""}).status().code() ==
          ErrorCode::kInvalidArgument);
    CHECK(EncodeHandshake(Handshake{1, 1, 1, 1, "", std::string(1025, 'a'), ""}).status().code() ==
          ErrorCode::kInvalidArgument);
    CHECK(EncodeHandshakeAck(HandshakeAck{0, 1, ""}).status().code() ==
          ErrorCode::kInvalidArgument);
    CHECK(EncodeHandshakeReject(HandshakeReject{static_cast<RejectCode>(0), ""}).status().code() ==
          ErrorCode::kInvalidArgument);
    CHECK(EncodeHandshakeReject(HandshakeReject{RejectCode::kAuthFailed, std::string(1025, 'r')})
              .status()
              .code() == ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("version negotiation picks the highest common version", "[wire][handshake]") {
  CHECK(NegotiateVersion(2, 2) == std::optional<std::uint8_t>(2));
  CHECK(NegotiateVersion(1, 9) == std::optional<std::uint8_t>(3));
  CHECK(NegotiateVersion(1, 2) == std::optional<std::uint8_t>(2));  // 2 and 3 interoperate
  CHECK(NegotiateVersion(3, 3) == std::optional<std::uint8_t>(3));
  CHECK(NegotiateVersion(1, 1) == std::nullopt);  // a version-1 peer is refused
  CHECK(NegotiateVersion(4, 9) == std::nullopt);
  CHECK(NegotiateVersion(0, 0) == std::nullopt);
  // A host of many groups speaks version 4 alone: it and a Node never agree.
  CHECK(NegotiateVersion(4, 4, kProtocolVersionHost, kProtocolVersionHost) ==
        std::optional<std::uint8_t>(4));
  CHECK(NegotiateVersion(2, 3, kProtocolVersionHost, kProtocolVersionHost) == std::nullopt);
  CHECK(NegotiateVersion(4, 4) == std::nullopt);
}

TEST_CASE("snapshot chunks and acks round-trip", "[wire][snapshot]") {
  const std::vector<Payload> cases = {
      SnapshotChunk{},
      SnapshotChunk{kMax, kMax, kMax, true, ""},  // empty data at the very end is fine
      SnapshotChunk{10, 2, 1 << 20, false, BinaryBytes(1 << 20)},
      SnapshotChunk{10, 2, kMax - 3, true, BinaryBytes(3)},
      SnapshotChunk{10, 2, 0, false, "RSLY", true},  // layout form
      SnapshotChunk{10, 2, 7, true, "", true},
      SnapshotChunkAck{},
      SnapshotChunkAck{kMax, kMax, kMax, true},
      SnapshotChunkAck{7, 1, 4096, false},
  };
  for (const Payload& p : cases) CHECK(RoundTripFrame(p) == p);
}

TEST_CASE("a chunk frame built in place equals the encoded one; a view decodes it",
          "[wire][snapshot]") {
  const SnapshotChunk c{10, 2, 4096, true, BinaryBytes(70000), true};
  const SnapshotChunkView fields{c.snapshot_index, c.snapshot_term, c.offset, c.last, "", c.layout};
  auto frame = EncodeSnapshotChunkFrame(
      fields, c.data.size(),
      [&](char* p) {
        std::memcpy(p, c.data.data(), c.data.size());
        return Status::Ok();
      },
      kFramePayloadBytesMaxDefault);
  REQUIRE(frame.ok());
  CHECK(*frame == *EncodeFrame(FrameType::kSnapshotChunk, *EncodeSnapshotChunk(c)));
  auto f = DecodeFrame(*frame);
  REQUIRE(f.ok());
  auto v = DecodeSnapshotChunkView(f->payload);
  REQUIRE(v.ok());
  CHECK(v->data == c.data);
  CHECK(v->offset == c.offset);
  CHECK((v->last && v->layout));
  // fill's error is the result; a payload over the limit is refused.
  CHECK(EncodeSnapshotChunkFrame(
            fields, 10, [](char*) { return Status(ErrorCode::kIOError, "x"); },
            kFramePayloadBytesMaxDefault)
            .status()
            .code() == ErrorCode::kIOError);
  CHECK(EncodeSnapshotChunkFrame(
            fields, 100, [](char*) { return Status::Ok(); }, 64)
            .status()
            .code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("snapshot chunk grammar violations", "[wire][snapshot]") {
  SECTION("offset overflow") {
    CHECK(EncodeSnapshotChunk(SnapshotChunk{1, 1, kMax - 2, true, "abc"}).status().code() ==
          ErrorCode::kInvalidArgument);
    std::string s = *EncodeSnapshotChunk(SnapshotChunk{1, 1, kMax - 3, true, "abc"});
    s[16] = static_cast<char>(0xfe);  // offset = kMax - 1
    CHECK(DecodeSnapshotChunk(s).status().message().find("overflow") != std::string::npos);
  }
  SECTION("reserved flags") {
    std::string s = *EncodeSnapshotChunk(SnapshotChunk{1, 1, 0, false, "abc"});
    s[24] = 0x04;
    CHECK(DecodeSnapshotChunk(s).status().message().find("reserved flag bits 0x04") !=
          std::string::npos);
  }
  SECTION("ack status") {
    std::string s = *EncodeSnapshotChunkAck(SnapshotChunkAck{1, 1, 0, false});
    s[24] = 0x02;
    CHECK(DecodeSnapshotChunkAck(s).status().message().find("unknown status 2") !=
          std::string::npos);
    CHECK(DecodeSnapshotChunkAck(s + "x").status().code() == ErrorCode::kCorruption);
  }
}

TEST_CASE("random payloads of every type round-trip through frames", "[wire][payload]") {
  std::mt19937_64 rng(99);
  for (int i = 0; i < 2000; ++i) {
    const Payload p = testing::RandomPayload(rng);
    REQUIRE(RoundTripFrame(p) == p);
  }
}

TEST_CASE("a frame's type selects the grammar", "[wire][payload]") {
  const std::string ack = *EncodeSnapshotChunkAck(SnapshotChunkAck{1, 2, 3, false});
  // The same bytes under another frame type must not be accepted as that type.
  CHECK_FALSE(DecodePayload(Frame{FrameType::kRaftMessage, 2, ack}).ok());
  CHECK_FALSE(DecodePayload(Frame{FrameType::kSnapshotChunk, 2, ack}).ok());
  CHECK(DecodePayload(Frame{FrameType::kSnapshotChunkAck, 2, ack}).ok());
}

TEST_CASE("payload frames above the limit are refused by the encoder", "[wire][payload]") {
  const Payload p = SnapshotChunk{1, 1, 0, false, std::string(2000, 'x')};
  CHECK(EncodePayloadFrame(p, 1000).status().code() == ErrorCode::kInvalidArgument);
  CHECK(EncodePayloadFrame(p, 4000).ok());
}

}  // namespace
}  // namespace raft::wire
