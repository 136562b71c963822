// Group-commit throughput of DiskStorage (not a test; not registered with CTest).
//   storage_bench [dir-parent] [entries] [batch] [payload-bytes]
// Appends `entries` entries in batches, one Sync per batch, twice: log only, and with a
// changed hard state (commit index) per batch as a Ready would carry. Prints entries/s
// and syncs/s counted at the FileSystem layer (fdatasync + fsync).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "raft/disk_storage.h"
#include "test_util.h"

namespace {

using raft::storage::testing::FaultyFileSystem;

int Run(const std::string& dir, bool with_hard_state, raft::Index entries, raft::Index batch,
        std::size_t bytes) {
  FaultyFileSystem ops;  // no faults configured: counts calls only
  raft::DiskStorageOptions opts;
  opts.file_system = &ops;
  auto r = raft::DiskStorage::Open(dir, opts);
  if (!r.ok()) {
    std::fprintf(stderr, "open: %s\n", r.status().message().c_str());
    return 1;
  }
  raft::DiskStorage& s = **r;
  const int syncs_before = ops.fdatasync_calls + ops.fsync_calls;
  const auto start = std::chrono::steady_clock::now();
  for (raft::Index i = 1; i <= entries; i += batch) {
    raft::Index hi = std::min(entries + 1, i + batch);
    raft::Status st = s.Append(raft::storage::testing::MakeEntries(i, hi, 1, bytes));
    if (st.ok() && with_hard_state) st = s.SetHardState({1, 1, i - 1});
    if (st.ok()) st = s.Sync();
    if (!st.ok()) {
      std::fprintf(stderr, "write: %s\n", st.message().c_str());
      return 1;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int syncs = ops.fdatasync_calls + ops.fsync_calls - syncs_before;
  std::printf(
      "%-22s %llu entries x %zu B, batch %llu: %.3f s, %.0f entries/s, %d syncs, "
      "%.0f syncs/s, %.0f batches/s\n",
      with_hard_state ? "log + hard state:" : "log only:", static_cast<unsigned long long>(entries),
      bytes, static_cast<unsigned long long>(batch), secs, entries / secs, syncs, syncs / secs,
      static_cast<double>((entries + batch - 1) / batch) / secs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string parent = argc > 1 ? argv[1] : "/tmp";
  raft::Index entries = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10000;
  raft::Index batch = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 64;
  std::size_t bytes = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 100;
  int rc = 0;
  for (bool hs : {false, true}) {
    std::string dir =
        parent + "/raft-storage-bench-" + std::to_string(::getpid()) + (hs ? "-hs" : "");
    rc |= Run(dir, hs, entries, batch, bytes);
    std::string cmd = "rm -rf '" + dir + "'";
    if (std::system(cmd.c_str()) != 0) rc = 1;
  }
  return rc;
}
