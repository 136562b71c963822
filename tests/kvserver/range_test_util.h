// A range descriptor for the tests of kvserver's ranges (range_map_test, meta_state_test).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "range_map.h"

namespace kv {

inline RangeDescriptor TestRange(RangeId id, std::uint64_t gen, std::string start, std::string end,
                                 std::vector<raft::NodeId> replicas = {1, 2, 3}) {
  RangeDescriptor d;
  d.id = id;
  d.generation = gen;
  d.start = std::move(start);
  d.end = std::move(end);
  d.replicas = std::move(replicas);
  return d;
}

}  // namespace kv
