// raft::Host end to end: three hosts in one process, each on its own lanes (threads),
// shared log (real files) and version-4 transport (loopback TCP), running many groups.
#include "raft/host.h"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <future>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mem_kv.h"
#include "runtime_test_util.h"

namespace raft::test {
namespace {

using namespace std::chrono_literals;

constexpr NodeId kProcs = 3;

// "a" + std::to_string(n) in GCC 12 at -O3 warns -Wrestrict falsely (and -Werror).
std::string Join(std::initializer_list<std::string> parts) {
  std::string s;
  for (const std::string& p : parts) s.append(p);
  return s;
}

// Hosts 1..n (3 by default) of one cluster; groups are created on hosts 1-3. With
// `snapshot_entries`, each group snapshots that often, keeping a fifth of it as trailing
// log, and the shared log rolls every 64 KiB (so that compaction can reclaim segments).
class HostTrio {
 public:
  explicit HostTrio(NodeId n = kProcs, std::uint64_t snapshot_entries = 0)
      : snapshot_entries_(snapshot_entries),
        root_(std::filesystem::temp_directory_path() /
              (Join({"raft-host-test-", std::to_string(::getpid()), "-",
                     std::to_string(counter_++)}))) {
    std::filesystem::remove_all(root_);
    for (NodeId p = 1; p <= n; ++p) addrs_[p] = Join({"127.0.0.1:", std::to_string(FreePort())});
    for (NodeId p = 1; p <= n; ++p) Start(p);
  }
  ~HostTrio() {
    for (auto& [p, h] : hosts_)
      if (h) h->Stop();
    hosts_.clear();
    std::filesystem::remove_all(root_);
  }

  void Start(NodeId p) {
    HostOptions o;
    o.self = p;
    o.data_dir = (root_ / std::to_string(p)).string();
    o.tick_ms = 10;
    o.election_ticks = 10;
    if (snapshot_entries_ > 0) {
      o.snapshot_entries = snapshot_entries_;
      o.snapshot_trailing_entries = snapshot_entries_ / 5;
      o.log_segment_bytes = 64 << 10;
    }
    // FreePort's port may be taken before the host binds it (a running host's dial can
    // get it as its ephemeral port): then another port, which the running hosts learn.
    for (int attempt = 0;; ++attempt) {
      o.listen_addr = addrs_.at(p);
      o.peers = addrs_;
      auto h = Host::Start(o);
      if (h.ok()) {
        hosts_[p] = std::move(h).value();
        return;
      }
      INFO(h.status().ToString());
      REQUIRE((attempt < 5 && h.status().message().find("cannot listen") != std::string::npos));
      addrs_[p] = Join({"127.0.0.1:", std::to_string(FreePort())});
      for (auto& [q, other] : hosts_)
        if (other && q != p) REQUIRE(other->SetPeer(p, addrs_[p]).ok());
    }
  }
  // A new process, p = the next id, on a new port: it knows every process, they do not
  // know it yet (Host::SetPeer).
  NodeId AddProcess() {
    const NodeId p = addrs_.rbegin()->first + 1;
    addrs_[p] = Join({"127.0.0.1:", std::to_string(FreePort())});
    Start(p);
    return p;
  }
  const std::string& addr(NodeId p) const { return addrs_.at(p); }
  // A path for a test's own file, removed with the hosts' directories.
  std::string Path(const std::string& name) const { return (root_ / name).string(); }
  void Stop(NodeId p) {
    hosts_.at(p)->Stop();
    hosts_.at(p).reset();
    sms_.erase(p);
  }
  Host& host(NodeId p) { return *hosts_.at(p); }
  MemKv& sm(NodeId p, GroupId g) {
    auto& slot = sms_[p][g];
    if (!slot) slot = std::make_unique<MemKv>();
    return *slot;
  }
  // Creates g on hosts 1-3 (a new state machine each), all voters.
  void CreateGroup(GroupId g) {
    for (auto& [p, h] : hosts_) {
      if (!h || p > kProcs) continue;
      sms_[p].erase(g);
      REQUIRE(h->CreateGroup(g, {1, 2, 3}, &sm(p, g)).ok());
    }
  }
  // The process that leads g, as every running member of it agrees (kNoNode until they
  // do). A replica not in its own configuration (one that joined and was not added yet)
  // has no say.
  NodeId Leader(GroupId g) {
    NodeId leader = kNoNode;
    for (auto& [p, h] : hosts_) {
      if (!h) continue;
      auto st = h->GroupStatus(g);
      if (!st.ok()) continue;
      const auto member = [&, p = p](const std::vector<NodeId>& ids) {
        return std::find(ids.begin(), ids.end(), p) != ids.end();
      };
      if (!member(st->voters) && !member(st->learners)) continue;
      if (!st.ok() || st->leader == kNoNode) return kNoNode;
      if (leader != kNoNode && st->leader != leader) return kNoNode;
      leader = st->leader;
    }
    return leader;
  }
  NodeId WaitLeader(GroupId g) {
    NodeId leader = kNoNode;
    REQUIRE(WaitFor([&] { return (leader = Leader(g)) != kNoNode && hosts_.at(leader); }));
    return leader;
  }
  Result<std::string> Put(GroupId g, const std::string& kv) {
    Result<std::string> r = Status(ErrorCode::kTimeout, "no try");
    for (int attempt = 0; attempt < 50; ++attempt) {
      NodeId leader = WaitLeader(g);
      r = host(leader).Propose(g, kv, 5s).get();
      if (r.ok()) return r;
      std::this_thread::sleep_for(20ms);  // a leader change: retry on the new one
    }
    return r;
  }

 private:
  static inline int counter_ = 0;
  std::uint64_t snapshot_entries_;  // 0: HostOptions's default
  std::filesystem::path root_;
  std::map<NodeId, std::string> addrs_;
  std::map<NodeId, std::unique_ptr<Host>> hosts_;
  std::map<NodeId, std::map<GroupId, std::unique_ptr<MemKv>>> sms_;
};

}  // namespace

TEST_CASE("host: many groups elect, replicate and apply on every replica", "[runtime][host]") {
  HostTrio trio;
  constexpr GroupId kGroups = 20;
  for (GroupId g = 1; g <= kGroups; ++g) trio.CreateGroup(g);
  // Every write of every group, proposed at once on the group's leader.
  std::vector<std::future<Result<std::string>>> writes;
  for (int round = 0; round < 5; ++round) {
    for (GroupId g = 1; g <= kGroups; ++g) {
      const NodeId leader = trio.WaitLeader(g);
      writes.push_back(trio.host(leader).Propose(
          g, Join({"k", std::to_string(round), "=g", std::to_string(g)}), 10s));
    }
  }
  int ok = 0;
  for (auto& w : writes) ok += w.get().ok() ? 1 : 0;
  // Leaderships settle while the first writes go; a dropped one is retried.
  for (GroupId g = 1; g <= kGroups; ++g)
    for (int round = 0; round < 5; ++round)
      REQUIRE(trio.Put(g, Join({"k", std::to_string(round), "=g", std::to_string(g)})).ok());
  CHECK(ok > 0);
  for (NodeId p = 1; p <= kProcs; ++p) {
    for (GroupId g = 1; g <= kGroups; ++g) {
      REQUIRE(WaitFor([&] { return trio.sm(p, g).Get("k4") == Join({"g", std::to_string(g)}); }));
      CHECK(trio.sm(p, g).Get("k0") == Join({"g", std::to_string(g)}));
    }
  }
  // Groups do not see each other's writes: each state machine holds its own five keys.
  CHECK(trio.sm(1, 7).Size() == 5);

  // One Sync made the writes of many groups durable: rounds carried several Readies.
  const HostMetrics m = trio.host(1).GetMetrics();
  CHECK(m.groups == kGroups);
  CHECK(m.disk_rounds > 0);
  CHECK(m.readies_persisted > m.disk_rounds);
  CHECK(m.log_syncs <= m.disk_rounds + kGroups + 2);  // rounds, bootstraps, recovery

  // A read barrier on a follower sees every write acknowledged before it.
  const NodeId leader = trio.WaitLeader(3);
  const NodeId follower = leader == 1 ? 2 : 1;
  REQUIRE(trio.Put(3, "last=x").ok());
  auto read = trio.host(follower).ReadBarrier(3, 5s).get();
  REQUIRE(read.ok());
  CHECK(trio.sm(follower, 3).Get("last") == "x");

  // A proposal on a follower names the way to the leader.
  auto wrong = trio.host(follower).Propose(3, "a=b", 5s).get();
  CHECK(wrong.status().code() == ErrorCode::kNotLeader);
}

TEST_CASE("host: idle groups fall asleep and wake for a write", "[runtime][host]") {
  HostTrio trio;
  for (GroupId g = 1; g <= 10; ++g) trio.CreateGroup(g);
  for (GroupId g = 1; g <= 10; ++g) REQUIRE(trio.Put(g, "a=1").ok());
  REQUIRE(WaitFor([&] { return trio.host(1).GetMetrics().awake_groups == 0; }));
  // Every replica of group 4 asleep. Waited for, not checked at once: on a loaded
  // machine a liveness frame late by an election timeout (100 ms here) makes a host
  // count its peer lost and wake the groups it leads, which then fall asleep again.
  REQUIRE(WaitFor([&] {
    for (NodeId p = 1; p <= kProcs; ++p) {
      auto st = trio.host(p).GroupStatus(4);
      if (!st.ok() || !st->asleep) return false;
    }
    return true;
  }));
  REQUIRE(trio.Put(4, "b=2").ok());
  for (NodeId p = 1; p <= kProcs; ++p)
    REQUIRE(WaitFor([&] { return trio.sm(p, 4).Get("b") == "2"; }));
  // Back to sleep.
  REQUIRE(WaitFor([&] { return trio.host(1).GetMetrics().awake_groups == 0; }));
}

TEST_CASE("host: a restart recovers every group from the shared log", "[runtime][host]") {
  HostTrio trio;
  for (GroupId g = 1; g <= 8; ++g) trio.CreateGroup(g);
  for (GroupId g = 1; g <= 8; ++g) REQUIRE(trio.Put(g, Join({"before=", std::to_string(g)})).ok());
  trio.Stop(3);
  // The other two keep a quorum of every group.
  for (GroupId g = 1; g <= 8; ++g) REQUIRE(trio.Put(g, Join({"during=", std::to_string(g)})).ok());
  trio.Start(3);
  const std::vector<GroupId> logged = trio.host(3).LoggedGroups();
  REQUIRE(logged == std::vector<GroupId>{1, 2, 3, 4, 5, 6, 7, 8});
  // The voters given again are ignored: the group resumes from its log.
  for (GroupId g : logged) REQUIRE(trio.host(3).CreateGroup(g, {3}, &trio.sm(3, g)).ok());
  for (GroupId g = 1; g <= 8; ++g) {
    // A fresh (in-memory) state machine replays the log, then catches up.
    REQUIRE(WaitFor([&] { return trio.sm(3, g).Get("during") == std::to_string(g); }));
    CHECK(trio.sm(3, g).Get("before") == std::to_string(g));
    auto st = trio.host(3).GroupStatus(g);
    REQUIRE(st.ok());
    CHECK(st->voters == std::vector<NodeId>{1, 2, 3});
  }
  for (GroupId g = 1; g <= 8; ++g) REQUIRE(trio.Put(g, "after=1").ok());
  for (GroupId g = 1; g <= 8; ++g)
    REQUIRE(WaitFor([&] { return trio.sm(3, g).Get("after") == "1"; }));
}

TEST_CASE("host: the groups of a stopped leader elect new leaders", "[runtime][host]") {
  HostTrio trio;
  for (GroupId g = 1; g <= 6; ++g) trio.CreateGroup(g);
  // Lead every group from process 1.
  for (GroupId g = 1; g <= 6; ++g) {
    const NodeId leader = trio.WaitLeader(g);
    if (leader == 1) continue;
    std::promise<Status> done;
    trio.host(leader).TransferLeadership(g, 1, 5s, [&](Status s) { done.set_value(s); });
    REQUIRE(done.get_future().get().ok());
  }
  for (GroupId g = 1; g <= 6; ++g) REQUIRE(trio.WaitLeader(g) == 1);
  trio.Stop(1);
  for (GroupId g = 1; g <= 6; ++g) {
    REQUIRE(WaitFor([&] {
      auto a = trio.host(2).GroupStatus(g);
      auto b = trio.host(3).GroupStatus(g);
      return a.ok() && b.ok() && a->leader != kNoNode && a->leader != 1 && a->leader == b->leader;
    }));
    REQUIRE(trio.Put(g, "x=1").ok());
  }
}

TEST_CASE("host: groups are created and removed at run time", "[runtime][host]") {
  HostTrio trio;
  trio.CreateGroup(1);
  trio.CreateGroup(42);
  REQUIRE(trio.Put(42, "a=1").ok());
  REQUIRE(trio.Put(1, "a=1").ok());
  for (NodeId p = 1; p <= kProcs; ++p) REQUIRE(trio.host(p).RemoveGroup(42).ok());
  CHECK(trio.host(1).RemoveGroup(42).code() == ErrorCode::kInvalidArgument);
  CHECK(trio.host(1).Propose(42, "a=2", 1s).get().status().code() == ErrorCode::kInvalidArgument);
  CHECK_FALSE(trio.host(1).GroupStatus(42).ok());
  // The others go on; a removed group is gone from the log across a restart.
  REQUIRE(trio.Put(1, "b=2").ok());
  trio.Stop(2);
  trio.Start(2);
  CHECK(trio.host(2).LoggedGroups() == std::vector<GroupId>{1});
}

TEST_CASE("host: bad arguments are refused with a reason", "[runtime][host]") {
  MemKv sm;  // outlives the hosts that apply to it
  HostTrio trio;
  CHECK(trio.host(1).CreateGroup(0, {1, 2, 3}, &sm).code() == ErrorCode::kInvalidArgument);
  CHECK(trio.host(1).CreateGroup(5, {2, 3}, &sm).code() == ErrorCode::kInvalidArgument);
  CHECK(trio.host(1).CreateGroup(5, {1, 9}, &sm).code() == ErrorCode::kInvalidArgument);
  CHECK(trio.host(1).CreateGroup(5, {1, 2, 3}, nullptr).code() == ErrorCode::kInvalidArgument);
  REQUIRE(trio.host(1).CreateGroup(5, {1, 2, 3}, &sm).ok());
  CHECK(trio.host(1).CreateGroup(5, {1, 2, 3}, &sm).code() == ErrorCode::kInvalidArgument);
  CHECK(trio.host(1).Propose(5, std::string(2 << 20, 'x'), 1s).get().status().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(trio.host(1).ReadBarrier(77, 1s).get().status().code() == ErrorCode::kInvalidArgument);
  HostOptions o;
  o.self = 1;
  CHECK(Host::Start(o).status().code() == ErrorCode::kInvalidArgument);  // no data_dir
  // Snapshot streams that could never send a chunk (or one a frame cannot hold).
  o.data_dir = "/nonexistent/never-created";
  o.snapshot_window_chunks = 0;
  auto no_window = Host::Start(o);
  CHECK(no_window.status().code() == ErrorCode::kInvalidArgument);
  CHECK(no_window.status().message().find("snapshot_window_chunks") != std::string::npos);
  o.snapshot_window_chunks = 4;
  o.snapshot_chunk_bytes = 0;
  CHECK(Host::Start(o).status().message().find("snapshot_chunk_bytes") != std::string::npos);
  o.snapshot_chunk_bytes = 1u << 30;
  CHECK(Host::Start(o).status().message().find("snapshot_chunk_bytes") != std::string::npos);
}

}  // namespace raft::test

namespace raft::test {

namespace {
Result<std::string> Change(Host& leader, GroupId g, const char* what, NodeId p) {
  std::promise<Result<std::string>> done;
  auto cb = [&done](Result<std::string> r) { done.set_value(std::move(r)); };
  if (std::string(what) == "learner") {
    leader.AddLearner(g, p, 5s, cb);
  } else if (std::string(what) == "promote") {
    leader.PromoteLearner(g, p, 5s, cb);
  } else {
    leader.RemoveReplica(g, p, 5s, cb);
  }
  return done.get_future().get();
}
}  // namespace

TEST_CASE("host: a replica of one group moves to another process, the others untouched",
          "[runtime][host]") {
  HostTrio hosts(4);  // groups on 1-3; process 4 is where a replica moves to
  hosts.CreateGroup(1);
  hosts.CreateGroup(2);
  for (int i = 0; i < 20; ++i) REQUIRE(hosts.Put(1, Join({"k", std::to_string(i), "=v"})).ok());
  REQUIRE(hosts.Put(2, "a=1").ok());
  const NodeId leader2 = hosts.WaitLeader(2);
  const Term term2 = hosts.host(1).GroupStatus(2)->term;

  // Process 4 joins group 1 empty, is added as a learner and catches up from the log.
  REQUIRE(hosts.host(4).CreateGroup(1, {}, &hosts.sm(4, 1)).ok());
  NodeId leader = hosts.WaitLeader(1);
  // Refused: promoting a process that is no learner, adding one that is no process.
  CHECK(Change(hosts.host(leader), 1, "promote", 4).status().code() == ErrorCode::kInvalidArgument);
  CHECK(Change(hosts.host(leader), 1, "learner", 9).status().code() == ErrorCode::kInvalidArgument);
  REQUIRE(Change(hosts.host(leader), 1, "learner", 4).ok());
  REQUIRE(WaitFor([&] { return hosts.sm(4, 1).Get("k19") == "v"; }));
  REQUIRE(WaitFor([&] {
    auto st4 = hosts.host(4).GroupStatus(1);
    return st4.ok() && st4->learners == std::vector<NodeId>{4};
  }));

  // Promote it, then remove the replica on process 3 (it may be the leader).
  leader = hosts.WaitLeader(1);
  REQUIRE(Change(hosts.host(leader), 1, "promote", 4).ok());
  leader = hosts.WaitLeader(1);
  REQUIRE(Change(hosts.host(leader), 1, "remove", 3).ok());
  REQUIRE(hosts.host(3).RemoveGroup(1).ok());
  REQUIRE(hosts.Put(1, "after=move").ok());
  for (NodeId p : {1, 2, 4})
    REQUIRE(WaitFor([&] { return hosts.sm(p, 1).Get("after") == "move"; }));
  const auto st = hosts.host(4).GroupStatus(1);
  REQUIRE(st.ok());
  CHECK(st->voters == std::vector<NodeId>{1, 2, 4});
  CHECK(st->learners.empty());

  // Group 2 never noticed: same leader, same term, same voters.
  auto s2 = hosts.host(1).GroupStatus(2);
  REQUIRE(s2.ok());
  CHECK(s2->leader == leader2);
  CHECK(s2->term == term2);
  CHECK(s2->voters == std::vector<NodeId>{1, 2, 3});
  CHECK_FALSE(hosts.host(4).GroupStatus(2).ok());
}

TEST_CASE("host: a process added at run time (SetPeer) takes a replica of a group",
          "[runtime][host]") {
  HostTrio hosts;  // processes 1-3, group 1 on them
  hosts.CreateGroup(1);
  for (int i = 0; i < 10; ++i) REQUIRE(hosts.Put(1, Join({"k", std::to_string(i), "=v"})).ok());
  const NodeId p = hosts.AddProcess();
  REQUIRE(p == 4);
  REQUIRE(hosts.host(p).CreateGroup(1, {}, &hosts.sm(p, 1)).ok());
  NodeId leader = hosts.WaitLeader(1);
  // Not known yet: refused with the reason.
  auto refused = Change(hosts.host(leader), 1, "learner", p);
  CHECK(refused.status().code() == ErrorCode::kInvalidArgument);
  CHECK(refused.status().message().find("SetPeer") != std::string::npos);
  // Bad arguments.
  CHECK(hosts.host(1).SetPeer(0, "127.0.0.1:1").code() == ErrorCode::kInvalidArgument);
  CHECK(hosts.host(1).SetPeer(1, "127.0.0.1:1").code() == ErrorCode::kInvalidArgument);
  CHECK(hosts.host(1).SetPeer(p, "").code() == ErrorCode::kInvalidArgument);
  CHECK(hosts.host(1).RemovePeer(9).code() == ErrorCode::kInvalidArgument);

  for (NodeId q : {1, 2, 3}) REQUIRE(hosts.host(q).SetPeer(p, hosts.addr(p)).ok());
  CHECK(hosts.host(1).Peers() ==
        std::map<NodeId, std::string>{{2, hosts.addr(2)}, {3, hosts.addr(3)}, {p, hosts.addr(p)}});
  leader = hosts.WaitLeader(1);
  REQUIRE(Change(hosts.host(leader), 1, "learner", p).ok());
  REQUIRE(WaitFor([&] { return hosts.sm(p, 1).Get("k9") == "v"; }));
  leader = hosts.WaitLeader(1);
  REQUIRE(Change(hosts.host(leader), 1, "promote", p).ok());
  REQUIRE(hosts.Put(1, "after=join").ok());
  REQUIRE(WaitFor([&] { return hosts.sm(p, 1).Get("after") == "join"; }));
  const auto st = hosts.host(p).GroupStatus(1);
  REQUIRE(st.ok());
  CHECK(st->voters == std::vector<NodeId>{1, 2, 3, 4});

  // Forgotten again once it left the group: no group may add it back.
  leader = hosts.WaitLeader(1);
  if (leader == p) {
    std::promise<Status> moved;
    hosts.host(p).TransferLeadership(1, 1, 5s, [&moved](Status s) { moved.set_value(s); });
    REQUIRE(moved.get_future().get().ok());
    leader = hosts.WaitLeader(1);
  }
  REQUIRE(Change(hosts.host(leader), 1, "remove", p).ok());
  REQUIRE(hosts.host(p).RemoveGroup(1).ok());
  for (NodeId q : {1, 2, 3}) REQUIRE(hosts.host(q).RemovePeer(p).ok());
  leader = hosts.WaitLeader(1);
  CHECK(Change(hosts.host(leader), 1, "learner", p).status().code() == ErrorCode::kInvalidArgument);
  REQUIRE(hosts.Put(1, "after=leave").ok());
}

TEST_CASE("host: groups snapshot and compact; a new replica and a restart restore the snapshot",
          "[runtime][host][snapshot]") {
  HostTrio hosts(4, /*snapshot_entries=*/50);  // group 1 on 1-3; process 4 joins it later
  hosts.CreateGroup(1);
  const std::string pad(400, 'x');  // ~200 KiB of log: several 64 KiB segments
  auto kv = [&](int i) { return Join({"k", std::to_string(i), "=", pad, std::to_string(i)}); };
  for (int i = 0; i < 500; ++i) REQUIRE(hosts.Put(1, kv(i)).ok());
  // Every replica snapshots every 50 entries and compacts its log to 10 behind.
  for (NodeId p = 1; p <= 3; ++p) {
    REQUIRE(WaitFor([&] {
      auto st = hosts.host(p).GroupStatus(1);
      return st.ok() && st->snapshot_index >= 400;
    }));
    const HostMetrics m = hosts.host(p).GetMetrics();
    CHECK(m.snapshots_taken >= 8);
    CHECK(m.segments_reclaimed >= 1);  // the oldest segments held only compacted entries
  }
  hosts.CreateGroup(2);  // a group that never reached a snapshot is untouched by them
  REQUIRE(hosts.Put(2, "a=1").ok());
  CHECK(hosts.host(1).GroupStatus(2)->snapshot_index == 0);

  // Process 4 joins group 1: the log it would need is gone, so the leader streams the
  // snapshot over the shared connection (frame types 9-10), then the log after it.
  REQUIRE(hosts.host(4).CreateGroup(1, {}, &hosts.sm(4, 1)).ok());
  NodeId leader = hosts.WaitLeader(1);
  REQUIRE(Change(hosts.host(leader), 1, "learner", 4).ok());
  REQUIRE(WaitFor([&] { return hosts.sm(4, 1).Get("k499") == pad + "499"; }));
  CHECK(hosts.sm(4, 1).Get("k0") == pad + "0");  // from the snapshot
  CHECK(hosts.sm(4, 1).restores() == 1);
  CHECK(hosts.host(4).GetMetrics().snapshots_installed == 1);
  std::uint64_t sent = 0;  // by whichever process led when the learner needed it
  for (NodeId p = 1; p <= 3; ++p) sent += hosts.host(p).GetMetrics().snapshots_sent;
  CHECK(sent >= 1);
  leader = hosts.WaitLeader(1);
  REQUIRE(Change(hosts.host(leader), 1, "promote", 4).ok());
  REQUIRE(hosts.Put(1, "after=join").ok());
  REQUIRE(WaitFor([&] { return hosts.sm(4, 1).Get("after") == "join"; }));

  // A restart: the fresh in-memory state machine is restored from the log's snapshot,
  // then replays the log after it, then catches up with what it missed.
  hosts.Stop(3);
  for (int i = 500; i < 560; ++i) REQUIRE(hosts.Put(1, kv(i)).ok());
  hosts.Start(3);
  for (GroupId g : hosts.host(3).LoggedGroups())
    REQUIRE(hosts.host(3).CreateGroup(g, {3}, &hosts.sm(3, g)).ok());
  REQUIRE(WaitFor([&] { return hosts.sm(3, 1).Get("k559") == pad + "559"; }));
  CHECK(hosts.sm(3, 1).Get("k0") == pad + "0");
  CHECK(hosts.sm(3, 1).Get("after") == "join");
  CHECK(hosts.sm(3, 1).restores() >= 1);
  REQUIRE(WaitFor([&] { return hosts.sm(3, 2).Get("a") == "1"; }));  // no snapshot: log only
  CHECK(hosts.sm(3, 2).restores() == 0);
}

TEST_CASE("host: a group from state starts at its index; a replica added later gets the state",
          "[runtime][host][snapshot]") {
  HostTrio hosts(4);  // group 7 from state on 1-3; process 4 joins it later
  // The state a split would leave in the new range's state machine on every replica.
  std::map<std::string, std::string> state;
  for (int i = 0; i < 30; ++i)
    state[Join({"s", std::to_string(i)})] = Join({"v", std::to_string(i)});
  constexpr Index kAt = 42;
  // Refused: no voters, index 0, a state machine past `at`.
  MemKv ahead;
  ahead.Load(state, kAt);
  CHECK(hosts.host(1).CreateGroupFromState(7, {}, &ahead, kAt).code() ==
        ErrorCode::kInvalidArgument);
  CHECK(hosts.host(1).CreateGroupFromState(7, {1, 2, 3}, &ahead, 0).code() ==
        ErrorCode::kInvalidArgument);
  for (NodeId p = 1; p <= 3; ++p) {
    hosts.sm(p, 7).Load(state, kAt);
    REQUIRE(hosts.host(p).CreateGroupFromState(7, {1, 2, 3}, &hosts.sm(p, 7), kAt).ok());
    const auto st = hosts.host(p).GroupStatus(7);
    REQUIRE(st.ok());
    CHECK(st->snapshot_index == kAt);
    CHECK(st->applied == kAt);
    CHECK(st->voters == std::vector<NodeId>{1, 2, 3});
  }
  REQUIRE(hosts.Put(7, "after=split").ok());
  for (NodeId p = 1; p <= 3; ++p) {
    REQUIRE(WaitFor([&] { return hosts.sm(p, 7).Get("after") == "split"; }));
    CHECK(hosts.sm(p, 7).Get("s29") == "v29");
    CHECK(hosts.sm(p, 7).applied() > kAt);  // the first entry is kAt + 1 or later
    CHECK(hosts.sm(p, 7).restores() == 0);
  }

  // Process 4 joins empty: the log it would need starts after kAt, so the leader
  // streams the initial snapshot, then the log after it.
  REQUIRE(hosts.host(4).CreateGroup(7, {}, &hosts.sm(4, 7)).ok());
  NodeId leader = hosts.WaitLeader(7);
  REQUIRE(Change(hosts.host(leader), 7, "learner", 4).ok());
  REQUIRE(WaitFor([&] { return hosts.sm(4, 7).Get("after") == "split"; }));
  CHECK(hosts.sm(4, 7).Get("s0") == "v0");  // the state from before the group's log
  CHECK(hosts.sm(4, 7).restores() == 1);
  CHECK(hosts.host(4).GetMetrics().snapshots_installed == 1);

  // A restart resumes from the log; an in-memory state machine (applied 0) is restored
  // from the initial snapshot, then replays the log after it.
  hosts.Stop(2);
  REQUIRE(hosts.Put(7, "while=down").ok());
  hosts.Start(2);
  REQUIRE(hosts.host(2).LoggedGroups() == std::vector<GroupId>{7});
  REQUIRE(hosts.host(2).CreateGroupFromState(7, {1, 2, 3}, &hosts.sm(2, 7), kAt).ok());
  REQUIRE(WaitFor([&] { return hosts.sm(2, 7).Get("while") == "down"; }));
  CHECK(hosts.sm(2, 7).Get("s13") == "v13");
  CHECK(hosts.sm(2, 7).Get("after") == "split");
  CHECK(hosts.sm(2, 7).restores() == 1);
}

TEST_CASE("host: a group's backup restores into a new group on another process",
          "[runtime][host][snapshot]") {
  HostTrio hosts(4);  // group 5 on 1-3; its backup becomes group 9 on process 4 alone
  hosts.CreateGroup(5);
  for (int i = 0; i < 20; ++i)
    REQUIRE(hosts.Put(5, Join({"k", std::to_string(i), "=v", std::to_string(i)})).ok());
  const NodeId follower = hosts.WaitLeader(5) % 3 + 1;
  // A follower's copy after a barrier holds every write acknowledged before it.
  REQUIRE(hosts.host(follower).ReadBarrier(5, 5s).get().ok());
  auto backup = [&](NodeId p, GroupId g, const std::string& path) {
    std::promise<Result<BackupInfo>> done;
    hosts.host(p).Backup(g, path, [&](Result<BackupInfo> r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  };
  const std::string path = hosts.Path("g5.backup");
  auto info = backup(follower, 5, path);
  REQUIRE(info.ok());
  CHECK(info->meta.index == hosts.sm(follower, 5).applied());
  CHECK(info->meta.conf.voters == std::set<NodeId>{1, 2, 3});
  CHECK(info->members.empty());
  auto verified = VerifyBackupFile(path);
  REQUIRE(verified.ok());
  CHECK(verified->bytes == info->bytes);
  CHECK(backup(follower, 99, hosts.Path("none")).status().code() == ErrorCode::kInvalidArgument);
  CHECK_FALSE(std::filesystem::exists(hosts.Path("none")));

  // A damaged copy is refused, naming the file, before the state machine sees it.
  const std::string bad = hosts.Path("bad.backup");
  std::filesystem::copy_file(path, bad);
  {
    std::FILE* f = std::fopen(bad.c_str(), "r+b");
    REQUIRE(f != nullptr);
    std::fseek(f, static_cast<long>(info->bytes / 2), SEEK_SET);
    const int c = std::fgetc(f);
    std::fseek(f, static_cast<long>(info->bytes / 2), SEEK_SET);
    std::fputc(c ^ 0x5a, f);
    std::fclose(f);
  }
  MemKv untouched;
  auto refused = RestoreBackup(bad, &untouched);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == ErrorCode::kCorruption);
  CHECK(refused.status().message().find(bad) != std::string::npos);
  CHECK(untouched.applied() == 0);

  // Restored on process 4 and started there as a group of its own, from that state.
  auto meta = RestoreBackup(path, &hosts.sm(4, 9));
  REQUIRE(meta.ok());
  CHECK(meta->index == info->meta.index);
  CHECK(hosts.sm(4, 9).Get("k19") == "v19");
  REQUIRE(hosts.host(4).CreateGroupFromState(9, {4}, &hosts.sm(4, 9), meta->index).ok());
  REQUIRE(hosts.Put(9, "after=restore").ok());
  CHECK(hosts.sm(4, 9).Get("after") == "restore");
  CHECK(hosts.sm(4, 9).Get("k0") == "v0");
  CHECK(hosts.sm(4, 9).applied() > meta->index);
}

}  // namespace raft::test
