// LockedStorage: the io thread's reads of recent entries and terms must not wait for the
// storage mutex, which the disk thread holds through every fsync.
#include "runtime/locked_storage.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <string>

namespace raft {
namespace {

using namespace std::chrono_literals;

struct Fixture {
  Fixture()
      : dir(std::filesystem::temp_directory_path() /
            ("raft-locked-storage-test-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(dir);
    auto d = DiskStorage::Open(dir.string(), DiskStorageOptions{});
    REQUIRE(d.ok());
    disk = std::move(d).value();
    view = std::make_unique<LockedStorage>(&mu, disk.get());
  }
  ~Fixture() {
    view.reset();
    disk.reset();
    std::filesystem::remove_all(dir);
  }
  // What the disk thread does for a Ready's entries.
  void Persist(const std::vector<Entry>& ents) {
    base::MutexLock l(&mu);
    Status s = disk->Append(ents);
    INFO(s.ToString());
    REQUIRE(s.ok());
    REQUIRE(disk->Sync().ok());
    view->PublishAppended(ents);
    view->Publish();
  }
  std::filesystem::path dir;
  base::Mutex mu;
  std::unique_ptr<DiskStorage> disk;
  std::unique_ptr<LockedStorage> view;
};

std::vector<Entry> Make(Index lo, Index hi, Term t, std::size_t bytes) {
  std::vector<Entry> out;
  for (Index i = lo; i < hi; ++i)
    out.push_back(
        Entry{t, i, EntryType::kNormal, std::string(bytes, static_cast<char>('a' + i % 26))});
  return out;
}

// Runs `f` on another thread; whether it finished within `wait`.
template <typename F>
bool FinishesWithin(std::future<F>& f, std::chrono::milliseconds wait) {
  return f.wait_for(wait) == std::future_status::ready;
}

TEST_CASE("LockedStorage serves recent entries and terms while the disk thread holds the lock",
          "[runtime][locked_storage]") {
  Fixture fx;
  fx.Persist(Make(1, 101, 1, 1000));
  fx.Persist(Make(101, 121, 2, 1000));
  // Declared before the lock, so that a failed check releases the lock before the
  // futures wait for their threads (no hang with an implementation that blocks).
  std::future<Result<std::vector<Entry>>> f;
  std::future<Result<Term>> t;
  base::ReleasableMutexLock fsync_in_progress(&fx.mu);
  f = std::async(std::launch::async, [&] { return fx.view->Entries(90, 121, UINT64_MAX); });
  REQUIRE(FinishesWithin(f, 2000ms));
  auto got = f.get();
  REQUIRE(got.ok());
  REQUIRE(got->size() == 31);
  CHECK(got->front().index == 90);
  CHECK(got->back().term == 2);
  CHECK(got->back().data == std::string(1000, static_cast<char>('a' + 120 % 26)));
  // The byte limit works as DiskStorage's: at least one entry, then up to max.
  auto one = fx.view->Entries(90, 121, 1);
  REQUIRE(one.ok());
  CHECK(one->size() == 1);
  t = std::async(std::launch::async, [&] { return fx.view->TermAt(105); });
  REQUIRE(FinishesWithin(t, 2000ms));
  CHECK(*t.get() == 2);
}

TEST_CASE("LockedStorage replaces a suffix, and goes to disk beyond its payload budget",
          "[runtime][locked_storage]") {
  Fixture fx;
  fx.Persist(Make(1, 11, 1, 10));
  fx.Persist(Make(6, 9, 3, 10));  // a new leader's entries replace 6..10
  auto got = fx.view->Entries(1, 9, UINT64_MAX);
  REQUIRE(got.ok());
  REQUIRE(got->size() == 8);
  CHECK((*got)[4].term == 1);
  CHECK((*got)[5].term == 3);
  CHECK(fx.view->LastIndex() == 8);

  // 40 entries of 1 MiB: the oldest payloads no longer fit (32 MiB), their terms still do.
  const std::size_t mib = 1 << 20;
  fx.Persist(Make(9, 49, 3, mib));
  std::future<Result<std::vector<Entry>>> old, recent;
  std::future<Result<Term>> term;
  base::ReleasableMutexLock held(&fx.mu);
  old = std::async(std::launch::async, [&] { return fx.view->Entries(9, 10, UINT64_MAX); });
  CHECK_FALSE(FinishesWithin(old, 100ms));  // a disk read: waits for the lock
  term = std::async(std::launch::async, [&] { return fx.view->TermAt(9); });
  REQUIRE(FinishesWithin(term, 2000ms));
  CHECK(*term.get() == 3);
  recent = std::async(std::launch::async, [&] { return fx.view->Entries(40, 49, UINT64_MAX); });
  REQUIRE(FinishesWithin(recent, 2000ms));
  CHECK(recent.get()->size() == 9);
  held.Unlock();
  REQUIRE(FinishesWithin(old, 2000ms));
  auto from_disk = old.get();
  REQUIRE(from_disk.ok());
  CHECK(from_disk->at(0).data == std::string(mib, static_cast<char>('a' + 9 % 26)));
}

}  // namespace
}  // namespace raft
