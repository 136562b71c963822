#include "core/unstable.h"

#include "base/assert.h"

namespace raft {

std::optional<Index> Unstable::MaybeFirstIndex() const {
  if (snapshot_) return snapshot_->index + 1;
  return std::nullopt;
}

std::optional<Index> Unstable::MaybeLastIndex() const {
  if (!entries_.empty()) return offset_ + entries_.size() - 1;
  if (snapshot_) return snapshot_->index;
  return std::nullopt;
}

std::optional<Term> Unstable::MaybeTerm(Index i) const {
  if (i < offset_) {
    if (snapshot_ && snapshot_->index == i) return snapshot_->term;
    return std::nullopt;
  }
  auto last = MaybeLastIndex();
  if (!last || i > *last) return std::nullopt;
  if (snapshot_ && i == snapshot_->index) return snapshot_->term;
  return entries_[i - offset_].term;
}

void Unstable::StableTo(Index index, Term term) {
  auto t = MaybeTerm(index);
  if (!t || *t != term || index < offset_) return;  // replaced meanwhile, or a snapshot
  entries_.erase(entries_.begin(),
                 entries_.begin() + static_cast<std::ptrdiff_t>(index + 1 - offset_));
  offset_ = index + 1;
}

void Unstable::StableSnapTo(Index index) {
  if (snapshot_ && snapshot_->index == index) snapshot_.reset();
}

void Unstable::Restore(const SnapshotMeta& meta) {
  offset_ = meta.index + 1;
  entries_.clear();
  snapshot_ = meta;
}

void Unstable::TruncateAndAppend(std::vector<Entry> ents) {
  if (ents.empty()) return;
  Index after = ents.front().index;
  if (after == offset_ + entries_.size()) {
    // Directly after the last entry: plain append.
  } else if (after <= offset_) {
    // Replaces everything unstable; the stable part is truncated by the storage write.
    offset_ = after;
    entries_.clear();
  } else {
    entries_.resize(after - offset_);
  }
  for (auto& e : ents) entries_.push_back(std::move(e));
}

std::vector<Entry> Unstable::Slice(Index lo, Index hi) const {
  RAFT_ASSERT(offset_ <= lo && lo <= hi && hi <= offset_ + entries_.size());
  return std::vector<Entry>(entries_.begin() + static_cast<std::ptrdiff_t>(lo - offset_),
                            entries_.begin() + static_cast<std::ptrdiff_t>(hi - offset_));
}

}  // namespace raft
