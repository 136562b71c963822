// shared_log_bench: issue 17's fsync target at the storage layer ("fsyncs per second do
// not grow with the number of active groups under the same write load";
// docs/performance.md, finding 19). Not a test; not registered with CTest.
//
//   shared_log_bench [dir-parent] [groups] [batches] [entries-per-batch] [payload-bytes]
//
// The same load, `batches` batches of `entries-per-batch` entries spread round-robin
// over `groups` groups, each batch with a new hard state for every group it touched
// (what a host's disk lane gets from one round of Readies), written two ways:
//   shared     one SharedLog, one Sync per batch
//   per-group  one DiskStorage per group, one Sync per group touched per batch (what
//              hosting each group in its own raft::Node would cost)
// Printed: wall time, batches/s, and the fdatasync + fsync calls counted at the
// FileSystem layer.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "raft/disk_storage.h"
#include "storage/shared_log.h"
#include "test_util.h"

namespace {

using raft::Index;
using raft::storage::GroupId;
using raft::storage::testing::FaultyFileSystem;
using raft::storage::testing::MakeEntries;

struct Load {
  GroupId groups;
  int batches;
  int per_batch;
  std::size_t bytes;
};

void Report(const char* how, const Load& l, double secs, int syncs) {
  std::printf(
      "%-9s groups %4llu: %d batches x %d entries x %zu B in %.3f s: %.0f batches/s, "
      "%d syncs (%.1f per batch)\n",
      how, static_cast<unsigned long long>(l.groups), l.batches, l.per_batch, l.bytes, secs,
      l.batches / secs, syncs, static_cast<double>(syncs) / l.batches);
}

// Writes the load: append(g, entries) per entry, then batch_end(touched groups) per
// batch. Returns the seconds it took, or a negative number on an error.
template <typename Append, typename BatchEnd>
double Drive(const Load& l, Append append, BatchEnd batch_end) {
  std::map<GroupId, Index> next;
  GroupId g = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int b = 0; b < l.batches; ++b) {
    std::map<GroupId, Index> touched;  // group -> its last index
    for (int k = 0; k < l.per_batch; ++k) {
      g = g % l.groups + 1;
      Index& i = next.try_emplace(g, 1).first->second;
      if (!append(g, MakeEntries(i, i + 1, 1, l.bytes))) return -1;
      touched[g] = i++;
    }
    if (!batch_end(touched)) return -1;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Shared(const std::string& dir, const Load& l) {
  FaultyFileSystem ops;  // counts calls only
  raft::storage::SharedLogOptions o;
  o.file_system = &ops;
  auto opened = raft::storage::SharedLog::Open(dir, o);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  raft::storage::SharedLog& log = **opened;
  const int before = ops.fdatasync_calls + ops.fsync_calls;
  const double secs = Drive(
      l, [&](GroupId g, const std::vector<raft::Entry>& es) { return log.Append(g, es).ok(); },
      [&](const std::map<GroupId, Index>& touched) {
        for (const auto& [t, last] : touched) {
          if (!log.SetHardState(t, {1, 1, last}).ok()) return false;
        }
        return log.Sync().ok();  // one for the whole batch
      });
  if (secs < 0) return 1;
  Report("shared", l, secs, ops.fdatasync_calls + ops.fsync_calls - before);
  return 0;
}

int PerGroup(const std::string& dir, const Load& l) {
  FaultyFileSystem ops;
  raft::DiskStorageOptions o;
  o.file_system = &ops;
  std::map<GroupId, std::unique_ptr<raft::DiskStorage>> stores;
  std::filesystem::create_directories(dir);
  for (GroupId g = 1; g <= l.groups; ++g) {
    auto s = raft::DiskStorage::Open(dir + "/g" + std::to_string(g), o);
    if (!s.ok()) {
      std::fprintf(stderr, "open: %s\n", s.status().ToString().c_str());
      return 1;
    }
    stores[g] = std::move(s).value();
  }
  const int before = ops.fdatasync_calls + ops.fsync_calls;
  const double secs = Drive(
      l, [&](GroupId g, const std::vector<raft::Entry>& es) { return stores[g]->Append(es).ok(); },
      [&](const std::map<GroupId, Index>& touched) {
        for (const auto& [t, last] : touched) {  // one sync per group touched
          if (!stores[t]->SetHardState({1, 1, last}).ok() || !stores[t]->Sync().ok()) return false;
        }
        return true;
      });
  if (secs < 0) return 1;
  Report("per-group", l, secs, ops.fdatasync_calls + ops.fsync_calls - before);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string parent = argc > 1 ? argv[1] : "/tmp";
  Load l;
  l.groups = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100;
  l.batches = argc > 3 ? std::atoi(argv[3]) : 200;
  l.per_batch = argc > 4 ? std::atoi(argv[4]) : 100;
  l.bytes = argc > 5 ? std::strtoull(argv[5], nullptr, 10) : 128;
  if (l.groups == 0 || l.batches <= 0 || l.per_batch <= 0) {
    std::fprintf(stderr,
                 "usage: shared_log_bench [dir-parent] [groups] [batches] [entries-per-batch] "
                 "[payload-bytes]\n");
    return 2;
  }
  const std::string dir = parent + "/shared-log-bench-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  int rc = Shared(dir + "/shared", l);
  if (rc == 0) rc = PerGroup(dir + "/per-group", l);
  std::filesystem::remove_all(dir);
  return rc;
}
