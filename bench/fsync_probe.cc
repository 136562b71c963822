// fsync_probe: the disk floor for a Raft log. Appends --bytes (default 4096) to a new file
// in --dir and calls fdatasync after each append, --count times, and prints the latency of
// write+fdatasync: "p50_ms X p90_ms X p99_ms X max_ms X count N". The file is removed.
// Each append extends the file, as a log append does, so every fdatasync also persists the
// new file size.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "kvbench/flags.h"
#include "kvbench/histogram.h"

int main(int argc, char** argv) {
  kvbench::Flags flags(argc, argv, {"help", "h"});
  if (flags.Has("help") || flags.Has("h")) {
    std::puts("usage: fsync_probe --dir DIR [--count N (default 1000)] [--bytes B (default 4096)]");
    return 0;
  }
  const std::string dir = flags.String("dir", ".");
  const int64_t count = flags.Int("count", 1000);
  const int64_t bytes = flags.Int("bytes", 4096);
  if (!flags.ok() || !flags.Unused().empty() || count < 1 || bytes < 1) {
    std::fprintf(stderr, "fsync_probe: bad flags (try --help) %s\n", flags.error().c_str());
    return 2;
  }
  const std::string path = dir + "/fsync_probe." + std::to_string(getpid());
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "fsync_probe: open %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  if (fsync(fd) != 0) {  // the new file's creation is not part of the measurement
    std::fprintf(stderr, "fsync_probe: fsync: %s\n", std::strerror(errno));
  }
  std::string block(static_cast<size_t>(bytes), 'r');
  kvbench::Histogram h;
  int rc = 0;
  for (int64_t i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()) ||
        fdatasync(fd) != 0) {
      std::fprintf(stderr, "fsync_probe: write/fdatasync %s: %s\n", path.c_str(),
                   std::strerror(errno));
      rc = 1;
      break;
    }
    h.Record(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - start)
                                       .count()));
  }
  close(fd);
  unlink(path.c_str());
  if (rc != 0) return rc;
  std::printf("p50_ms %.3f p90_ms %.3f p99_ms %.3f max_ms %.3f count %llu\n",
              h.ValueAtPercentile(50) / 1e6, h.ValueAtPercentile(90) / 1e6,
              h.ValueAtPercentile(99) / 1e6, h.max() / 1e6,
              static_cast<unsigned long long>(h.count()));
  return 0;
}
