// The Raft paper's Figure 8, scripted on a 5-node cluster (shared by sim_test and the
// mutation test). Throws SimFailure if a check fires; returns normally when the run is
// safe and every node applied a final entry.
#pragma once

#include <cstdint>

namespace raft::sim {

void RunScriptedFigure8(std::uint64_t seed);

}  // namespace raft::sim
