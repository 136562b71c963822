// Structured logs: one line per event with a UTC timestamp, level, component, message
// and key=value fields, in one of three formats (docs/operations.md, "Logs"):
//   hclog:  2026-12-05T07:40:00.123Z [WARN]  raft: leader changed: term=3 why="a b"
//           (hashicorp/go-hclog's text format, which the Go service used)
//   logfmt: ts=2026-12-05T07:40:00.123Z level=warn component=raft msg="leader changed" ...
//   json:   {"component":"raft","level":"warn","msg":"leader changed","term":"3",...}
// Written to stderr. Thread-safe. Implements raft::Logger so libraft's events come out
// the same way.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "raft/logger.h"

namespace kv {

enum class LogFormat { kHclog, kLogfmt, kJson };

class StructuredLogger final : public raft::Logger {
 public:
  StructuredLogger(raft::LogLevel min_level, LogFormat format) : min_(min_level), format_(format) {}
  bool Enabled(raft::LogLevel level) const override { return level >= min_; }
  void Log(raft::LogLevel level, std::string_view component, std::string_view msg,
           const std::vector<raft::LogField>& fields) override;

  // Formats one record (without the trailing newline). Exposed for tests.
  std::string Format(raft::LogLevel level, std::string_view component, std::string_view msg,
                     const std::vector<raft::LogField>& fields) const;

 private:
  raft::LogLevel min_;
  LogFormat format_;
  std::mutex mu_;
};

raft::LogLevel ParseLogLevel(const std::string& s);
// "hclog", "logfmt" or "json" (flags.cc checks the name); anything else is hclog.
LogFormat ParseLogFormat(const std::string& s);

}  // namespace kv
