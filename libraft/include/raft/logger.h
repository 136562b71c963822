// Logging hook of the runtime. libraft never writes to stdout/stderr on its own: it
// hands one record per event to the application's Logger, which formats it (kvserver
// writes structured key=value or JSON lines). The default logger discards records.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "raft/export.h"

namespace raft {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
RAFT_EXPORT const char* LogLevelName(LogLevel level);

struct LogField {
  std::string key;
  std::string value;
};

// Thread safety: Log is called from several runtime threads at once; implementations
// must be thread-safe.
class Logger {
 public:
  virtual ~Logger() = default;
  virtual bool Enabled(LogLevel level) const = 0;
  // component: "raft", "transport", "storage", "snapshot"...; msg: a short event name or
  // sentence; fields: key=value details.
  virtual void Log(LogLevel level, std::string_view component, std::string_view msg,
                   const std::vector<LogField>& fields) = 0;
};

}  // namespace raft
