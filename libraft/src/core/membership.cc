#include "core/membership.h"

namespace raft {

void ConfigHistory::Reset(Index index, const ConfState& conf) {
  base_index_ = index;
  base_ = conf;
  changes_.clear();
}

bool ConfigHistory::OnAppend(const Entry& e) {
  if (e.type != EntryType::kConfChange) return false;
  ConfChange cc;
  if (!DecodeConfChange(e.data, &cc)) return false;
  auto next = ApplyConfChange(Current(), cc);
  if (!next.ok()) return false;
  changes_[e.index] = std::move(next).value();
  return true;
}

bool ConfigHistory::TruncateFrom(Index index) {
  auto it = changes_.lower_bound(index);
  if (it == changes_.end()) return false;
  changes_.erase(it, changes_.end());
  return true;
}

void ConfigHistory::Prune(Index committed) {
  auto end = changes_.upper_bound(committed);
  if (end == changes_.begin()) return;
  auto last = std::prev(end);
  base_index_ = last->first;
  base_ = last->second;
  changes_.erase(changes_.begin(), end);
}

const ConfState& ConfigHistory::Current() const {
  return changes_.empty() ? base_ : changes_.rbegin()->second;
}

Index ConfigHistory::CurrentIndex() const {
  return changes_.empty() ? base_index_ : changes_.rbegin()->first;
}

const ConfState& ConfigHistory::At(Index index) const {
  auto it = changes_.upper_bound(index);
  if (it == changes_.begin()) return base_;
  return std::prev(it)->second;
}

}  // namespace raft
