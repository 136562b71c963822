// ByteWriter/ByteReader: little-endian layout, bounds checks, sticky first error.
#include "raft/coding.h"

#include <catch2/catch.hpp>
#include <limits>

namespace raft::base {
namespace {

TEST_CASE("writer lays integers out little-endian", "[base][coding]") {
  std::string out;
  ByteWriter w(&out);
  w.U8(0x01);
  w.U16(0x0302);
  w.U32(0x07060504);
  w.U64(0x0f0e0d0c0b0a0908ull);
  w.Bytes(std::string("a\0b", 3));
  CHECK(out == std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
                           "\x03\x00\x00\x00"
                           "a\0b",
                           22));
}

TEST_CASE("reader round-trips edge values", "[base][coding]") {
  std::string out;
  ByteWriter w(&out);
  w.U8(0xff);
  w.U16(0);
  w.U32(std::numeric_limits<std::uint32_t>::max());
  w.U64(std::numeric_limits<std::uint64_t>::max());
  w.U64(0);
  w.Bytes("");
  ByteReader r(out, "test");
  CHECK(r.U8("a") == 0xff);
  CHECK(r.U16("b") == 0);
  CHECK(r.U32("c") == std::numeric_limits<std::uint32_t>::max());
  CHECK(r.U64("d") == std::numeric_limits<std::uint64_t>::max());
  CHECK(r.U64("e") == 0);
  CHECK(r.Bytes("f", 10).empty());
  CHECK(r.Finish().ok());
}

TEST_CASE("reader never reads past the end and keeps the first error", "[base][coding]") {
  const std::string in("\x01\x02\x03", 3);
  ByteReader r(in, "test");
  CHECK(r.U16("first") == 0x0201);
  CHECK(r.U32("second") == 0);  // only 1 byte left
  CHECK_FALSE(r.ok());
  CHECK(r.offset() == 2);
  CHECK(r.U8("third") == 0);  // sticky: even though a byte remains
  const Status s = r.Finish();
  CHECK(s.code() == ErrorCode::kCorruption);
  CHECK(s.message() == "test: truncated at field 'second' (offset 2, need 4, have 1)");
}

TEST_CASE("reader rejects trailing bytes", "[base][coding]") {
  ByteReader r(std::string_view("\x05\x06", 2), "test");
  CHECK(r.U8("x") == 5);
  const Status s = r.Finish();
  CHECK(s.code() == ErrorCode::kCorruption);
  CHECK(s.message() == "test: 1 trailing bytes after offset 1");
}

TEST_CASE("bytes and counts are checked before allocation", "[base][coding]") {
  SECTION("length over the field limit") {
    std::string in;
    ByteWriter(&in).Bytes("hello");
    ByteReader r(in, "test");
    CHECK(r.Bytes("name", 4).empty());
    CHECK(r.Finish().message() == "test: field 'name' of 5 bytes exceeds the limit of 4");
  }
  SECTION("length over the bytes remaining") {
    std::string in;
    ByteWriter(&in).U32(0xfffffff0u);
    in += "abc";
    ByteReader r(in, "test");
    CHECK(r.Bytes("data", std::numeric_limits<std::uint32_t>::max()).empty());
    CHECK(r.Finish().message() ==
          "test: truncated at field 'data' (offset 4, need 4294967280, have 3)");
  }
  SECTION("count over the limit") {
    std::string in;
    ByteWriter(&in).U32(11);
    ByteReader r(in, "test");
    CHECK(r.Count("n", 10, 1) == 0);
    CHECK_FALSE(r.ok());
  }
  SECTION("count the remaining bytes cannot hold") {
    std::string in;
    ByteWriter w(&in);
    w.U32(3);
    w.U64(1);
    w.U64(2);
    ByteReader r(in, "test");
    CHECK(r.Count("n", 100, 8) == 0);
    CHECK(r.Finish().message() ==
          "test: field 'n' = 3 items of >= 8 bytes, but only 16 bytes remain");
  }
}

TEST_CASE("fixed-width encoding at a pointer matches the writer", "[base][coding]") {
  char buf[14];
  EncodeFixed16(buf, 0x0201);
  EncodeFixed32(buf + 2, 0x06050403u);
  EncodeFixed64(buf + 6, 0x0e0d0c0b0a090807ull);
  std::string want;
  ByteWriter w(&want);
  w.U16(0x0201);
  w.U32(0x06050403u);
  w.U64(0x0e0d0c0b0a090807ull);
  CHECK(std::string(buf, sizeof(buf)) == want);
  CHECK(DecodeFixed16(buf) == 0x0201);
  CHECK(DecodeFixed32(buf + 2) == 0x06050403u);
  CHECK(DecodeFixed64(buf + 6) == 0x0e0d0c0b0a090807ull);
  EncodeFixed64(buf, std::numeric_limits<std::uint64_t>::max());
  CHECK(DecodeFixed64(buf) == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("raw bytes and the rest are views into the input", "[base][coding]") {
  const std::string in = "magicpayload";
  ByteReader r(in, "test");
  CHECK(r.Raw("magic", 5) == "magic");
  CHECK(r.Rest() == "payload");
  CHECK(r.Rest().empty());
  CHECK(r.Finish().ok());

  ByteReader short_input(std::string_view("ab"), "test");
  CHECK(short_input.Raw("magic", 4).empty());
  CHECK(short_input.Finish().message() ==
        "test: truncated at field 'magic' (offset 0, need 4, have 2)");
}

}  // namespace
}  // namespace raft::base
