// Readable per-step trace of a simulation (raft_sim --seed N --trace). Off by default;
// when off, Log() costs one branch and callers guard expensive formatting with on().
#pragma once

#include <cstdint>
#include <string>

#include "raft/message.h"
#include "raft/raw_node.h"

namespace raft::sim {

class Trace {
 public:
  explicit Trace(bool on = false) : on_(on) {}
  bool on() const { return on_; }
  // Prints "<tick> <line>" to stdout.
  void Log(std::int64_t tick, const std::string& line) const;

 private:
  bool on_;
};

// "n1->n2 Append t3 prev=5/2 commit=4 ents=[6..7]"
std::string DescribeMessage(const Message& m);
// "{term=3 vote=2 commit=7}"
std::string DescribeHardState(const HardState& hs);
std::string DescribeConf(const ConfState& c);

}  // namespace raft::sim
