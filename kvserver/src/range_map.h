// Ranges of kvserver's key space (docs/multi-raft.md, "kvserver: ranges"; the descriptor's
// grammar is docs/state-format.md, "Ranges"): the descriptor of a range and its codec, the
// split points of a bootstrap, and RangeMap, the directory that routes a key to its range.
// Pure; a RangeMap is not thread-safe (its owner guards it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "raft/status.h"
#include "raft/types.h"

namespace kv {

// A range is a Raft group of a raft::Host; its id is the group id. Group 1 is the meta
// range (the directory and the processes); data ranges are numbered from 2.
using RangeId = std::uint64_t;
inline constexpr RangeId kMetaRange = 1;
inline constexpr RangeId kFirstDataRange = 2;

// The longest start or end key a descriptor holds (its codec refuses longer): no split
// at a longer key.
inline constexpr std::size_t kMaxRangeKeyBytes = 64u << 10;

struct RangeDescriptor {
  RangeId id = 0;
  // Bumped by every change of the range's span or replicas (a split, a move): an older
  // descriptor of the same range never replaces a newer one.
  std::uint64_t generation = 0;
  std::string start;  // inclusive; "" is the start of the key space
  std::string end;    // exclusive; "" is the end of the key space (+infinity)
  std::vector<raft::NodeId> replicas;

  bool Contains(std::string_view key) const;
  bool operator==(const RangeDescriptor&) const = default;
};

// descriptor := version:u8(1) group:u64le generation:u64le start:bytes32 end:bytes32
//               nreplicas:u32le replica:u64le*
std::string EncodeDescriptor(const RangeDescriptor& d);
// kCorruption for anything else: another version, a truncation, trailing bytes, id 0,
// a start not below a non-empty end, more than 64 replicas or a key over 64 KiB.
raft::Result<RangeDescriptor> DecodeDescriptor(std::string_view in);

// What a split did (docs/state-format.md, "Splits"): at `index` of the range's log, the
// range became `left` and the keys from right.start on became range `right`, whose group
// starts with `voters` (the range's voters at `index`).
struct SplitRecord {
  std::uint64_t index = 0;
  RangeDescriptor left;
  RangeDescriptor right;
  std::vector<raft::NodeId> voters;
  bool operator==(const SplitRecord&) const = default;
};

// split_record := version:u8(1) index:u64le left:bytes32 right:bytes32 nvoters:u32le
//                 voter:u64le*
std::string EncodeSplitRecord(const SplitRecord& r);
// kCorruption for anything else, or descriptors that do not decode, or no voters.
raft::Result<SplitRecord> DecodeSplitRecord(std::string_view in);

// A group's membership as a range's state keeps it:
// conf := nvoters:u32le voter:u64le* nlearners:u32le learner:u64le*
std::string EncodeConf(const raft::ConfState& c);
raft::Result<raft::ConfState> DecodeConf(std::string_view in);

// The n - 1 split points of n ranges spread evenly over the first byte of printable keys
// (0x20-0x7e), in order; none for n <= 1. One byte each: range i of n holds the keys
// whose first byte is in its share (keys below 0x20 fall in the first, above 0x7e in the
// last). n is capped at 95 (one range per printable first byte).
std::vector<std::string> EvenSplitPoints(int n);

// The directory of a bootstrap: n ranges (ids kFirstDataRange...) over EvenSplitPoints(n),
// generation 1, every one on `replicas`.
std::vector<RangeDescriptor> BootstrapRanges(int n, const std::vector<raft::NodeId>& replicas);

// The keys starting with `prefix` are [prefix, PrefixEnd(prefix)); "" means +infinity
// (an empty prefix, or one of 0xff bytes only).
std::string PrefixEnd(std::string_view prefix);

// The directory: the ranges by start key. Updates come whole (a split's two descriptors
// together), so the map moves from one tiling of the key space to the next; while it
// lags behind the ranges themselves, a key may route to a range that no longer holds it
// (its leader refuses and the caller refreshes), never to two.
class RangeMap {
 public:
  // Takes `ds` (a directory, or an update of one): of a range named twice, the newest
  // counts; a descriptor older than the one held for the same range is dropped (returned
  // false if all were); the others replace the descriptor of their range and every other
  // range they overlap.
  bool Update(const std::vector<RangeDescriptor>& ds);

  // The range holding `key`, or nullptr (a gap: an update not yet complete).
  const RangeDescriptor* Lookup(std::string_view key) const;
  const RangeDescriptor* Find(RangeId id) const;
  // The ranges overlapping [start, end) ("" end: +infinity), in key order.
  std::vector<RangeDescriptor> Overlapping(std::string_view start, std::string_view end) const;
  std::vector<RangeDescriptor> All() const;  // in key order
  std::size_t size() const { return by_start_.size(); }

  // "" when the ranges tile the key space (from "" to +infinity, no gap, no overlap);
  // else the first fault found.
  std::string CheckTiling() const;

 private:
  std::map<std::string, RangeDescriptor> by_start_;
};

}  // namespace kv
