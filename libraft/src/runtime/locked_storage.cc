#include "runtime/locked_storage.h"

#include <algorithm>
#include <string>

namespace raft {

HardState LockedStorage::InitialHardState() const {
  base::MutexLock l(&cache_mu_);
  return hard_state_;
}

Result<std::vector<Entry>> LockedStorage::Entries(Index lo, Index hi, std::uint64_t max) const {
  {
    base::MutexLock l(&cache_mu_);
    // Beyond what was published: perhaps on disk, but not durable yet. (Below, the disk
    // answers: its first index is at or above the published one.)
    if (lo < hi && lo >= first_ && hi > last_ + 1)
      return Status(ErrorCode::kUnavailable, "entries beyond the last durable index");
    const Index end = recent_first_ + recent_.size();
    if (lo < hi && lo >= first_ && hi <= last_ + 1 && lo >= payload_first_ && lo >= recent_first_ &&
        hi <= end) {
      // The same byte accounting as DiskStorage: at least one entry, then up to max.
      std::vector<Entry> out;
      std::uint64_t bytes = 0;
      for (Index i = lo; i < hi; ++i) {
        const Entry& e = recent_[i - recent_first_];
        bytes += EntrySizeBytes(e);
        if (i > lo && bytes > max) break;
        out.push_back(e);
      }
      return out;
    }
  }
  // A cold read: DiskStorage's reads do not wait for the disk thread's fsync.
  return disk_->Entries(lo, hi, max);
}

Result<Term> LockedStorage::TermAt(Index i) const {
  {
    base::MutexLock l(&cache_mu_);
    if (i + 1 == first_ && snapshot_.index == i) return snapshot_.term;
    if (i + 1 >= first_ && i > last_)
      return Status(ErrorCode::kUnavailable, "index beyond the last durable one");
    if (i >= first_ && i <= last_ && i >= recent_first_ && i - recent_first_ < recent_.size())
      return recent_[i - recent_first_].term;
  }
  return disk_->TermAt(i);
}

Index LockedStorage::FirstIndex() const {
  base::MutexLock l(&cache_mu_);
  return first_;
}

Index LockedStorage::LastIndex() const {
  base::MutexLock l(&cache_mu_);
  return last_;
}

Result<SnapshotMeta> LockedStorage::Snapshot() const {
  base::MutexLock l(&cache_mu_);
  return snapshot_;
}

void LockedStorage::PublishAppended(const std::vector<Entry>& entries) {
  mu_->AssertHeld();
  if (entries.empty()) return;
  base::MutexLock l(&cache_mu_);
  const Index k = entries.front().index;
  if (recent_.empty() || k < recent_first_ || k > recent_first_ + recent_.size()) {
    recent_.clear();
    recent_first_ = payload_first_ = k;
    payload_bytes_ = 0;
  } else {
    // A replaced suffix takes its entries along.
    while (recent_first_ + recent_.size() > k) {
      if (recent_.back().index >= payload_first_) payload_bytes_ -= recent_.back().data.size();
      recent_.pop_back();
    }
    payload_first_ = std::min(payload_first_, k);
  }
  for (const auto& e : entries) {
    recent_.push_back(e);
    payload_bytes_ += e.data.size();
  }
  TrimLocked();
}

void LockedStorage::TrimLocked() {
  // Compacted entries, then the oldest beyond the count; then payloads beyond the budget.
  while (!recent_.empty() && (recent_first_ < first_ || recent_.size() > kRecentMax)) {
    if (recent_first_ >= payload_first_) payload_bytes_ -= recent_.front().data.size();
    recent_.pop_front();
    ++recent_first_;
  }
  payload_first_ = std::max(payload_first_, recent_first_);
  const Index end = recent_first_ + recent_.size();
  while (payload_bytes_ > kPayloadBytesMax && payload_first_ < end) {
    std::string& data = recent_[payload_first_ - recent_first_].data;
    payload_bytes_ -= data.size();
    std::string().swap(data);
    ++payload_first_;
  }
}

void LockedStorage::PublishReset() {
  mu_->AssertHeld();
  base::MutexLock l(&cache_mu_);
  recent_.clear();
  recent_first_ = payload_first_ = 0;
  payload_bytes_ = 0;
}

void LockedStorage::Publish() {
  mu_->AssertHeld();
  auto snap = disk_->Snapshot();
  base::MutexLock l(&cache_mu_);
  first_ = disk_->FirstIndex();
  last_ = disk_->LastIndex();
  hard_state_ = disk_->InitialHardState();
  if (snap.ok()) snapshot_ = *snap;
  TrimLocked();  // compacted entries are no longer served from here
}

}  // namespace raft
