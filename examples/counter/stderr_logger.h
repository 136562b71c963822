// StderrLogger: a raft::Logger that writes one line per record to stderr,
//   <time> <level> <component>: <msg> key=value ...
// for records at or above a minimum level. Thread-safe (one mutex around the write).
#pragma once

#include <mutex>

#include "raft/logger.h"

namespace counter {

class StderrLogger final : public raft::Logger {
 public:
  explicit StderrLogger(raft::LogLevel min_level) : min_level_(min_level) {}
  bool Enabled(raft::LogLevel level) const override { return level >= min_level_; }
  void Log(raft::LogLevel level, std::string_view component, std::string_view msg,
           const std::vector<raft::LogField>& fields) override;

 private:
  raft::LogLevel min_level_;
  std::mutex mu_;
};

}  // namespace counter
