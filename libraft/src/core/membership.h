// ConfigHistory: the membership in force at every point of the log.
//
// A configuration takes effect as soon as its entry is appended (Raft thesis 4.1), so
// the current configuration is the one of the last ConfChange entry in the log,
// committed or not; when a conflicting suffix is truncated, the configuration falls
// back to the latest remaining entry. The base is the configuration of the latest
// snapshot (or empty), and changes_ holds one configuration per ConfChange entry
// after it. Memory: one ConfState per uncommitted change plus one committed.
#pragma once

#include <map>

#include "raft/types.h"

namespace raft {

class ConfigHistory {
 public:
  // Resets to the configuration recorded in a snapshot at `index`.
  void Reset(Index index, const ConfState& conf);
  // Records `e` if it is a well-formed ConfChange valid against the current
  // configuration; a malformed or invalid one is ignored on every node alike.
  // Returns whether the configuration changed.
  bool OnAppend(const Entry& e);
  // Forgets changes at indexes >= index (their entries were truncated).
  bool TruncateFrom(Index index);
  // Folds changes at or below `committed` into the base, keeping the latest of them.
  void Prune(Index committed);

  const ConfState& Current() const;
  // Index of the entry that introduced Current() (the base index if none).
  Index CurrentIndex() const;
  // Configuration in force at `index`.
  const ConfState& At(Index index) const;

 private:
  Index base_index_ = 0;
  ConfState base_;
  std::map<Index, ConfState> changes_;
};

}  // namespace raft
