// A cluster of kvserver processes; see process_cluster.h.
#include "process_cluster.h"

#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <system_error>

namespace kvtest {

ProcessCluster::ProcessCluster(ClusterOptions options) : options_(std::move(options)) {
  static int counter = 0;
  std::string name = Catch::getResultCapture().getCurrentTestName();
  std::string slug;
  for (char c : name) {
    slug.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
    if (slug.size() >= 40) break;
  }
  root_ = std::filesystem::temp_directory_path() /
          fmt::format("kvproc-{}-{}-{}", ::getpid(), counter++, slug);
  std::filesystem::remove_all(root_);
  std::filesystem::create_directories(root_);
}

ProcessCluster::~ProcessCluster() {
  bool failed = CurrentTestFailed() || std::uncaught_exceptions() > 0;
  // SIGKILL is fast; clean shutdown is tested explicitly where it matters.
  for (auto& n : nodes_) n->ForceStop();
  const char* keep = std::getenv("KV_PROCESS_KEEP");
  if (failed) {
    DumpLogs();
    std::cerr << "kvserver process test: kept " << root_.string() << "\n";
  } else if (keep != nullptr && std::string(keep) == "1") {
    std::cerr << "kvserver process test: kept " << root_.string() << " (KV_PROCESS_KEEP=1)\n";
  } else {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
}

NodeProcess& ProcessCluster::AddNode(const std::vector<std::string>& extra_args) {
  NodeSpec spec;
  spec.id = fmt::format("node{}", nodes_.size());
  spec.http_port = PickFreePort();
  spec.raft_port = PickFreePort();
  spec.data_dir = root_ / spec.id;
  spec.log_path = root_ / (spec.id + ".log");
  spec.extra_args = options_.extra_args;
  spec.token = token_;
  spec.extra_args.insert(spec.extra_args.end(), extra_args.begin(), extra_args.end());
  nodes_.push_back(std::make_unique<NodeProcess>(std::move(spec)));
  return *nodes_.back();
}

void ProcessCluster::set_token(const std::string& token) {
  token_ = token;
  for (auto& n : nodes_) n->mutable_spec().token = token;
}

void ProcessCluster::Start(std::size_t n) {
  REQUIRE(n >= 1);
  while (nodes_.size() < n) AddNode();
  node(0).Start();
  node(0).WaitServing();
  WaitLeader();
  for (std::size_t i = 1; i < n; ++i) {
    node(i).Start(node(0).http_addr());
    node(i).WaitServing();
    WaitVoters(i + 1);
  }
}

std::size_t ProcessCluster::WaitLeader(Millis limit) {
  std::size_t leader = nodes_.size();
  std::string seen;
  bool found = WaitUntil(limit, [&] {
    std::uint64_t best_term = 0;
    leader = nodes_.size();
    seen.clear();
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]->Alive()) continue;
      auto st = nodes_[i]->StatusJson();
      if (st.is_null()) {
        seen += fmt::format("{}: no status; ", nodes_[i]->id());
        continue;
      }
      std::string role = st.value("role", "");
      seen += fmt::format("{}: role={} term={}; ", nodes_[i]->id(), role, JsonU64(st, "term"));
      if (IsLeaderRole(st) && (leader == nodes_.size() || JsonU64(st, "term") > best_term)) {
        leader = i;
        best_term = JsonU64(st, "term");
      }
    }
    return leader < nodes_.size();
  });
  if (!found) FAIL("no leader within " << limit.count() << " ms; last seen: " << seen);
  return leader;
}

std::size_t ProcessCluster::Follower(std::size_t leader, std::size_t nth) {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (i == leader || !nodes_[i]->Alive()) continue;
    if (nth == 0) return i;
    --nth;
  }
  FAIL("no running follower #" << nth);
  return 0;
}

std::vector<std::size_t> ProcessCluster::AddJoiners(const std::string& via, std::size_t n,
                                                    std::size_t voters_before) {
  std::vector<std::size_t> added;
  for (std::size_t i = 0; i < n; ++i) {
    NodeProcess& node = AddNode();
    node.Start(via);
    node.WaitServing();
    added.push_back(nodes_.size() - 1);
    WaitVoters(voters_before + i + 1);
  }
  for (std::size_t i : added) WaitCaughtUp(i);
  return added;
}

void ProcessCluster::WaitVoters(std::size_t voters, Millis limit) {
  std::string seen;
  bool ok = WaitUntil(limit, [&] {
    std::size_t leader = nodes_.size();
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]->Alive()) continue;
      auto st = nodes_[i]->StatusJson();
      if (IsLeaderRole(st)) {
        leader = i;
        auto members = Members(st);
        std::size_t v = 0;
        for (const auto& [id, voter] : members) v += voter ? 1 : 0;
        seen = st.dump();
        if (v == voters && members.size() == voters) return true;
      }
    }
    if (leader == nodes_.size()) seen = "no leader";
    return false;
  });
  if (!ok) {
    FAIL("the leader did not report " << voters << " voters within " << limit.count()
                                      << " ms; last leader status: " << seen);
  }
}

void ProcessCluster::WaitCaughtUp(std::size_t i, Millis limit) {
  std::size_t leader = WaitLeader();
  auto lst = nodes_.at(leader)->StatusJson();
  std::uint64_t commit = JsonU64(lst, "commit_index");
  REQUIRE(commit > 0);
  std::string seen;
  bool ok = WaitUntil(limit, [&] {
    auto st = nodes_.at(i)->StatusJson();
    seen = st.dump();
    return JsonU64(st, "applied_index") >= commit;
  });
  if (!ok) {
    FAIL(nodes_.at(i)->id() << " did not apply up to the leader's commit index " << commit
                            << " within " << limit.count() << " ms; last status: " << seen
                            << "\nlog tail:\n"
                            << nodes_.at(i)->LogTail(30));
  }
}

void ProcessCluster::DumpLogs(std::size_t max_lines) const {
  for (const auto& n : nodes_) {
    std::cerr << "-------- " << n->id() << " log tail (" << n->spec().log_path.string()
              << ") --------\n"
              << n->LogTail(max_lines) << "\n";
  }
}

}  // namespace kvtest
