// Runs one seed in a forked child so that a core assertion (abort) fails that seed instead
// of the test binary. Used by the sweep and mutation tests. POSIX only.
#pragma once

#include <string>

#include "swarm.h"

namespace raft::sim {

struct IsolatedResult {
  bool ok = true;
  bool aborted = false;  // the child died on a signal (RAFT_ASSERT abort)
  std::string failure;   // SimFailure text (truncated to 2000 bytes)
};

IsolatedResult RunSeedIsolated(const RunOptions& options);

}  // namespace raft::sim
