// Structured logs: one line per event with a UTC timestamp, level, component, message
// and key=value fields (logfmt), or one JSON object per line. Written to stderr.
// Thread-safe. Implements raft::Logger so libraft's events come out the same way.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "raft/logger.h"

namespace kv {

class StructuredLogger final : public raft::Logger {
 public:
  StructuredLogger(raft::LogLevel min_level, bool json) : min_(min_level), json_(json) {}
  bool Enabled(raft::LogLevel level) const override { return level >= min_; }
  void Log(raft::LogLevel level, std::string_view component, std::string_view msg,
           const std::vector<raft::LogField>& fields) override;

  // Formats one record (without the trailing newline). Exposed for tests.
  std::string Format(raft::LogLevel level, std::string_view component, std::string_view msg,
                     const std::vector<raft::LogField>& fields) const;

 private:
  raft::LogLevel min_;
  bool json_;
  std::mutex mu_;
};

raft::LogLevel ParseLogLevel(const std::string& s);

}  // namespace kv
