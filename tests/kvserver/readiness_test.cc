// /readyz's decision (readiness.h), one rule at a time, and the order of the reasons.
#include "readiness.h"

#include <catch2/catch.hpp>

namespace kv {
namespace {

raft::MemberStatus Member(raft::NodeId id, bool voter) {
  raft::MemberStatus m;
  m.info.id = id;
  m.info.name = std::string("n").append(std::to_string(id));
  m.voter = voter;
  return m;
}

// Node 2 of {1, 2, 3}, all voters, leader 1, applied == commit: ready.
raft::NodeStatusInfo Healthy() {
  raft::NodeStatusInfo st;
  st.id = 2;
  st.leader = 1;
  st.commit = 1000;
  st.applied = 1000;
  st.members = {Member(1, true), Member(2, true), Member(3, true)};
  return st;
}

TEST_CASE("readyz: a caught-up voter with a leader is ready", "[kvserver][readyz]") {
  Readiness r = CheckReadiness(Healthy(), false);
  CHECK(r.ready);
  CHECK(r.reason.empty());
  auto leader = Healthy();
  leader.leader = 2;  // the leader itself
  CHECK(CheckReadiness(leader, false).ready);
}

TEST_CASE("readyz: each rule alone makes the node not ready", "[kvserver][readyz]") {
  SECTION("shutting down") {
    auto r = CheckReadiness(Healthy(), true);
    CHECK_FALSE(r.ready);
    CHECK(r.reason == "shutting_down");
  }
  SECTION("storage failed") {
    auto st = Healthy();
    st.failure = "fsync: EIO";
    auto r = CheckReadiness(st, false);
    CHECK(r.reason == "storage_failed");
    CHECK(r.message.find("fsync: EIO") != std::string::npos);
  }
  SECTION("no membership yet (joining)") {
    auto st = Healthy();
    st.members.clear();
    st.leader = raft::kNoNode;
    CHECK(CheckReadiness(st, false).reason == "not_member");
  }
  SECTION("removed from the membership") {
    auto st = Healthy();
    st.members = {Member(1, true), Member(3, true)};
    CHECK(CheckReadiness(st, false).reason == "not_member");
  }
  SECTION("learner") {
    auto st = Healthy();
    st.members[1] = Member(2, false);
    CHECK(CheckReadiness(st, false).reason == "learner");
  }
  SECTION("no leader known") {
    auto st = Healthy();
    st.leader = raft::kNoNode;
    CHECK(CheckReadiness(st, false).reason == "no_leader");
  }
}

TEST_CASE("readyz: applied may trail commit by at most the allowed lag", "[kvserver][readyz]") {
  auto st = Healthy();
  st.applied = st.commit - kReadyLagEntriesMax;
  CHECK(CheckReadiness(st, false).ready);
  st.applied -= 1;
  auto r = CheckReadiness(st, false);
  CHECK_FALSE(r.ready);
  CHECK(r.reason == "applying");
  CHECK(r.message.find("101 entries behind commit index 1000") != std::string::npos);
  // A smaller allowance.
  st.applied = 995;
  CHECK(CheckReadiness(st, false, 5).ready);
  CHECK_FALSE(CheckReadiness(st, false, 4).ready);
  // applied ahead of a stale commit (a restarted follower learns the commit later).
  st.applied = 2000;
  CHECK(CheckReadiness(st, false, 0).ready);
}

TEST_CASE("readyz: the first failing rule is the reason", "[kvserver][readyz]") {
  auto st = Healthy();
  st.leader = raft::kNoNode;
  st.applied = 0;
  st.members[1] = Member(2, false);
  CHECK(CheckReadiness(st, false).reason == "learner");
  st.failure = "disk full";
  CHECK(CheckReadiness(st, false).reason == "storage_failed");
  CHECK(CheckReadiness(st, true).reason == "shutting_down");
}

}  // namespace
}  // namespace kv
