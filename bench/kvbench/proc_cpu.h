// CPU time of other processes, from /proc/PID/stat (Linux): the bench tools report the
// servers' CPU per request over exactly their measured window.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kvbench {

// Parses "PID,PID,..." into `pids`; false on anything that is not a positive number.
bool ParsePidList(std::string_view text, std::vector<int>& pids);

// utime + stime (fields 14 and 15) of a /proc/PID/stat line, in clock ticks; -1 when the
// line is malformed. Pure (the command name in parentheses may hold spaces and ')').
long long CpuTicksFromStat(std::string_view stat_line);

// The sum over `pids` of their utime + stime in seconds, or -1 when a process is gone or
// its stat unreadable.
double CpuSeconds(const std::vector<int>& pids);

}  // namespace kvbench
