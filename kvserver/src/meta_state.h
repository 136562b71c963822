// The meta range of ranges mode (group 1; docs/multi-raft.md, "kvserver: ranges"; the
// grammars are docs/state-format.md, "Ranges"): the processes of the cluster and the
// range directory, and the commands of its log. Pure: MetaState is what every replica of
// the meta range holds after applying the same commands (its persistence in RocksDB
// writes the same records). Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "raft/status.h"
#include "raft/types.h"
#include "range_map.h"

namespace kv {

enum class ProcessState : std::uint8_t { kMember = 1, kLeaving = 2 };

struct ProcessRecord {
  raft::NodeId id = raft::kNoNode;  // NodeIdFromName(name): the host's process id
  ProcessState state = ProcessState::kMember;
  std::string name;       // -id
  std::string raft_addr;  // -raddr (advertised)
  std::string http_addr;  // -laddr (advertised)
  bool operator==(const ProcessRecord&) const = default;
};

// process := version:u8(1) id:u64le state:u8 name:bytes32 raft_addr:bytes32 http_addr:bytes32
std::string EncodeProcess(const ProcessRecord& p);
// kCorruption for another version, an unknown state, id 0, an empty name, fields over
// 4 KiB, a truncation or trailing bytes.
raft::Result<ProcessRecord> DecodeProcess(std::string_view in);

// A split the meta range's leader ordered (docs/multi-raft.md, "Splits and leader
// balance"): range `range`, at `generation`, is to split at `key`, the keys from it on
// going to `new_range` (allocated when the order applied, never used again). The leader
// of `range` proposes the split to it; the order goes once the directory shows the range
// past `generation` (the split published), or when cancelled.
struct SplitOrder {
  RangeId range = 0;
  std::uint64_t generation = 0;
  std::string key;
  RangeId new_range = 0;
  bool operator==(const SplitOrder&) const = default;
};

struct MetaCommand {
  enum class Op : std::uint8_t {
    kAddProcess = 7,       // process
    kRemoveProcess = 8,    // id
    kSetProcessState = 9,  // id, state
    kPutDescriptors = 10,  // descriptors (a whole directory update: a split's two together)
    kOrderSplit = 11,      // order (its new_range allocated by the apply)
    kCancelSplit = 12,     // order's range and generation
  };
  Op op = Op::kAddProcess;
  ProcessRecord process;                       // kAddProcess
  raft::NodeId id = raft::kNoNode;             // kRemoveProcess, kSetProcessState
  ProcessState state = ProcessState::kMember;  // kSetProcessState
  std::vector<RangeDescriptor> descriptors;    // kPutDescriptors
  SplitOrder order;  // kOrderSplit (new_range not encoded), kCancelSplit (range, generation)
};

// command := version:u8(3) op:u8 body (state-format.md).
std::string EncodeMetaCommand(const MetaCommand& c);
raft::Result<MetaCommand> DecodeMetaCommand(std::string_view in);

class MetaState {
 public:
  // Applies one command and says what it did not do: "" when applied, else the reason
  // it changed nothing (the same on every replica, so a refused command is a no-op
  // everywhere): an id taken by another name, an unknown process, a directory update
  // older than what is held, a directory that would not tile the key space, a split
  // order for a range that has one, or whose generation or key does not match the
  // directory's descriptor.
  std::string Apply(const MetaCommand& c);

  const std::map<raft::NodeId, ProcessRecord>& processes() const { return processes_; }
  const RangeMap& ranges() const { return ranges_; }
  // The next data range id to allocate: above every id the directory ever held.
  RangeId next_range() const { return next_range_; }
  const std::map<RangeId, SplitOrder>& split_orders() const { return orders_; }

  // The whole state as one record: the meta range's snapshot body (state-format.md,
  // "meta_snapshot"). Decode: kCorruption on a bad record, a process or descriptor that
  // does not decode, a directory that does not tile the key space, a truncation or
  // trailing bytes.
  std::string EncodeSnapshot() const;
  static raft::Result<MetaState> DecodeSnapshot(std::string_view in);

 private:
  std::map<raft::NodeId, ProcessRecord> processes_;
  RangeMap ranges_;
  RangeId next_range_ = kFirstDataRange;
  std::map<RangeId, SplitOrder> orders_;  // by range
};

}  // namespace kv
