#include "process_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace kv {
namespace {

std::optional<std::uint64_t> ToU64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::string> ReadAll(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

std::optional<ProcStatFields> ParseProcStat(std::string_view line) {
  auto close = line.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  // Fields 3.. (state, ppid, ...), space separated.
  std::vector<std::string_view> f;
  std::string_view rest = line.substr(close + 1);
  while (!rest.empty()) {
    auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    auto end = rest.find_first_of(" \n");
    f.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  // Field n (1-based, proc(5)) is f[n - 3]: utime 14, stime 15, starttime 22, rss 24.
  if (f.size() < 22) return std::nullopt;
  auto utime = ToU64(f[11]), stime = ToU64(f[12]), start = ToU64(f[19]), rss = ToU64(f[21]);
  if (!utime || !stime || !start || !rss) return std::nullopt;
  return ProcStatFields{*utime, *stime, *start, *rss};
}

std::optional<std::uint64_t> ParseBootTime(std::string_view proc_stat) {
  std::size_t pos = 0;
  while (pos < proc_stat.size()) {
    auto eol = proc_stat.find('\n', pos);
    std::string_view line =
        proc_stat.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    if (line.substr(0, 6) == "btime ") return ToU64(line.substr(6));
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
  }
  return std::nullopt;
}

std::optional<ProcessStats> ReadProcessStats() {
  auto stat = ReadAll("/proc/self/stat");
  auto system = ReadAll("/proc/stat");
  if (!stat || !system) return std::nullopt;
  auto fields = ParseProcStat(*stat);
  auto boot = ParseBootTime(*system);
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (!fields || !boot || ticks <= 0 || page <= 0) return std::nullopt;
  ProcessStats s;
  s.cpu_seconds =
      static_cast<double>(fields->utime_ticks + fields->stime_ticks) / static_cast<double>(ticks);
  s.resident_bytes = fields->rss_pages * static_cast<std::uint64_t>(page);
  s.start_time_seconds = static_cast<double>(*boot) +
                         static_cast<double>(fields->starttime_ticks) / static_cast<double>(ticks);
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec))
    ++s.open_fds;
  if (ec) return std::nullopt;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0)
    s.max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : static_cast<std::uint64_t>(rl.rlim_cur);
  return s;
}

}  // namespace kv
