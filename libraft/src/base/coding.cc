#include "raft/coding.h"

#include <fmt/format.h>

namespace raft {

void ByteWriter::U8(std::uint8_t v) { out_->push_back(static_cast<char>(v)); }

void ByteWriter::U16(std::uint16_t v) {
  char buf[2];
  EncodeFixed16(buf, v);
  out_->append(buf, sizeof(buf));
}

void ByteWriter::U32(std::uint32_t v) {
  char buf[4];
  EncodeFixed32(buf, v);
  out_->append(buf, sizeof(buf));
}

void ByteWriter::U64(std::uint64_t v) {
  char buf[8];
  EncodeFixed64(buf, v);
  out_->append(buf, sizeof(buf));
}

void ByteWriter::Bytes(std::string_view data) {
  U32(static_cast<std::uint32_t>(data.size()));
  Raw(data);
}

void ByteWriter::Raw(std::string_view data) { out_->append(data); }

bool ByteReader::Need(const char* field, std::size_t n) {
  if (!ok()) return false;
  if (remaining() >= n) return true;
  status_ = Status(ErrorCode::kCorruption,
                   fmt::format("{}: truncated at field '{}' (offset {}, need {}, have {})",
                               grammar_, field, pos_, n, remaining()));
  return false;
}

std::uint8_t ByteReader::U8(const char* field) {
  if (!Need(field, 1)) return 0;
  return static_cast<std::uint8_t>(in_[pos_++]);
}

std::uint16_t ByteReader::U16(const char* field) {
  if (!Need(field, 2)) return 0;
  const auto v = DecodeFixed16(in_.data() + pos_);
  pos_ += 2;
  return v;
}

std::uint32_t ByteReader::U32(const char* field) {
  if (!Need(field, 4)) return 0;
  const auto v = DecodeFixed32(in_.data() + pos_);
  pos_ += 4;
  return v;
}

std::uint64_t ByteReader::U64(const char* field) {
  if (!Need(field, 8)) return 0;
  const auto v = DecodeFixed64(in_.data() + pos_);
  pos_ += 8;
  return v;
}

std::string ByteReader::Bytes(const char* field, std::uint32_t max_len) {
  const std::uint32_t len = U32(field);
  if (!ok()) return {};
  if (len > max_len) {
    Fail(fmt::format("field '{}' of {} bytes exceeds the limit of {}", field, len, max_len));
    return {};
  }
  if (!Need(field, len)) return {};
  std::string out(in_.substr(pos_, len));
  pos_ += len;
  return out;
}

std::string_view ByteReader::Raw(const char* field, std::size_t n) {
  if (!Need(field, n)) return {};
  std::string_view out = in_.substr(pos_, n);
  pos_ += n;
  return out;
}

std::string_view ByteReader::Rest() {
  if (!ok()) return {};
  std::string_view out = in_.substr(pos_);
  pos_ = in_.size();
  return out;
}

std::uint32_t ByteReader::Count(const char* field, std::uint32_t max, std::size_t item_bytes_min) {
  const std::uint32_t count = U32(field);
  if (!ok()) return 0;
  if (count > max) {
    Fail(fmt::format("field '{}' = {} exceeds the limit of {}", field, count, max));
    return 0;
  }
  if (item_bytes_min > 0 && count > remaining() / item_bytes_min) {
    Fail(fmt::format("field '{}' = {} items of >= {} bytes, but only {} bytes remain", field, count,
                     item_bytes_min, remaining()));
    return 0;
  }
  return count;
}

void ByteReader::Fail(const std::string& message) {
  if (!ok()) return;
  status_ = Status(ErrorCode::kCorruption, fmt::format("{}: {}", grammar_, message));
}

Status ByteReader::Finish() {
  if (ok() && remaining() != 0) {
    Fail(fmt::format("{} trailing bytes after offset {}", remaining(), pos_));
  }
  return status_;
}

}  // namespace raft
