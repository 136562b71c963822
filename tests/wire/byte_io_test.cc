// ByteWriter/ByteReader: little-endian layout, bounds checks, sticky first error.
#include "wire/byte_io.h"

#include <catch2/catch.hpp>
#include <limits>

namespace raft::wire {
namespace {

TEST_CASE("writer lays integers out little-endian", "[wire][byte_io]") {
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

TEST_CASE("reader round-trips edge values", "[wire][byte_io]") {
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

TEST_CASE("reader never reads past the end and keeps the first error", "[wire][byte_io]") {
  const std::string in("\x01\x02\x03", 3);
  ByteReader r(in, "test");
  CHECK(r.U16("first") == 0x0201);
  CHECK(r.U32("second") == 0);  // only 1 byte left
  CHECK_FALSE(r.ok());
  CHECK(r.offset() == 2);
  CHECK(r.U8("third") == 0);  // sticky: even though a byte remains
  const Status s = r.Finish();
  CHECK(s.code() == ErrorCode::kCorruption);
  CHECK(s.message() == "wire: truncated test at field 'second' (offset 2, need 4, have 1)");
}

TEST_CASE("reader rejects trailing bytes", "[wire][byte_io]") {
  ByteReader r(std::string_view("\x05\x06", 2), "test");
  CHECK(r.U8("x") == 5);
  const Status s = r.Finish();
  CHECK(s.code() == ErrorCode::kCorruption);
  CHECK(s.message() == "wire: test: 1 trailing bytes after offset 1");
}

TEST_CASE("bytes and counts are checked before allocation", "[wire][byte_io]") {
  SECTION("length over the field limit") {
    std::string in;
    ByteWriter(&in).Bytes("hello");
    ByteReader r(in, "test");
    CHECK(r.Bytes("name", 4).empty());
    CHECK(r.Finish().message() == "wire: test: field 'name' of 5 bytes exceeds the limit of 4");
  }
  SECTION("length over the bytes remaining") {
    std::string in;
    ByteWriter(&in).U32(0xfffffff0u);
    in += "abc";
    ByteReader r(in, "test");
    CHECK(r.Bytes("data", std::numeric_limits<std::uint32_t>::max()).empty());
    CHECK(r.Finish().message() ==
          "wire: truncated test at field 'data' (offset 4, need 4294967280, have 3)");
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
          "wire: test: field 'n' = 3 items of >= 8 bytes, but only 16 bytes remain");
  }
}

}  // namespace
}  // namespace raft::wire
