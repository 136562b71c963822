// Control plane routes: /join, /leave, /transfer-leader, /status, /metrics, /health.
#include <nlohmann/json.hpp>
#include <thread>

#include "http_util.h"
#include "kv_server_impl.h"

namespace kv {
namespace {

using Clock = std::chrono::steady_clock;

std::optional<nlohmann::json> ParseBody(const httplib::Request& req, httplib::Response& res) {
  auto j = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    ReplyError(res, 400, "body must be a JSON object");
    return std::nullopt;
  }
  return j;
}

std::string Field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// Retries a membership proposal while another change is pending.
raft::Result<std::string> RetryChange(
    const std::function<std::future<raft::Result<std::string>>()>& f, Clock::time_point deadline) {
  for (;;) {
    auto r = f().get();
    bool retry = !r.ok() && (r.status().code() == raft::ErrorCode::kConfChangePending ||
                             r.status().code() == raft::ErrorCode::kProposalDropped);
    if (!retry || Clock::now() >= deadline) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

bool KvServer::Impl::CheckToken(const httplib::Request& req, httplib::Response& res) const {
  if (token.empty()) return true;
  if (ConstantTimeEquals(req.get_header_value("X-Cluster-Token"), token)) return true;
  ReplyError(res, 401, "missing or wrong X-Cluster-Token");
  return false;
}

void KvServer::Impl::InstallControlRoutes() {
  http.Post("/join", [this](const httplib::Request& req, httplib::Response& res) {
    if (!CheckToken(req, res)) return;
    auto j = ParseBody(req, res);
    if (!j) return;
    raft::MemberInfo m;
    m.name = Field(*j, "id");
    m.raft_addr = Field(*j, "raft_addr");
    m.app_data = Field(*j, "http_addr");
    std::string host;
    int port;
    if (m.name.empty() || !SplitHostPort(m.raft_addr, &host, &port) ||
        !SplitHostPort(m.app_data, &host, &port))
      return ReplyError(res, 400, "join needs id, raft_addr and http_addr (host:port)");
    if (!IsLeader()) return Forward(req, res);
    m.id = raft::NodeIdFromName(m.name);
    auto deadline = Clock::now() + std::chrono::seconds(60);
    // Already a member? Same addresses: idempotent (promote if still a learner).
    bool learner = false;
    for (const auto& ms : node->GetStatus().members) {
      if (ms.info.id != m.id) continue;
      if (ms.info.raft_addr != m.raft_addr || ms.info.app_data != m.app_data)
        return ReplyError(res, 409,
                          "node '" + m.name + "' is already a member at raft " + ms.info.raft_addr +
                              ", http " + ms.info.app_data);
      if (ms.voter) return ReplyJson(res, 200, StatusJson());
      learner = true;
    }
    Log(raft::LogLevel::kInfo, "join requested",
        {{"node", m.name}, {"raft_addr", m.raft_addr}, {"http_addr", m.app_data}});
    if (!learner) {
      auto r = RetryChange([&] { return node->AddLearner(m, timeout()); }, deadline);
      if (!r.ok()) return ReplyStatus(res, r.status());
    }
    // Promote once the learner has caught up with the commit index (it may need a
    // snapshot first); a voter that cannot keep up would only hurt availability.
    for (;;) {
      auto st = node->GetStatus();
      bool caught_up = false;
      for (const auto& ms : st.members)
        if (ms.info.id == m.id && ms.match + 1 >= st.commit) caught_up = true;
      if (caught_up) break;
      if (Clock::now() >= deadline || st.role != raft::Role::kLeader)
        return ReplyError(res, 504,
                          "node '" + m.name +
                              "' was added as a learner but did not catch up in time; join again "
                              "to retry the promotion");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto r = RetryChange([&] { return node->PromoteLearner(m.id, timeout()); }, deadline);
    if (!r.ok()) return ReplyStatus(res, r.status());
    Log(raft::LogLevel::kInfo, "node joined as voter", {{"node", m.name}});
    ReplyJson(res, 200, StatusJson());
  });

  http.Post("/leave", [this](const httplib::Request& req, httplib::Response& res) {
    if (!CheckToken(req, res)) return;
    auto j = ParseBody(req, res);
    if (!j) return;
    std::string name = Field(*j, "id");
    if (name.empty()) return ReplyError(res, 400, "leave needs id");
    if (!IsLeader()) return Forward(req, res);
    raft::NodeId id = raft::NodeIdFromName(name);
    bool member = false;
    for (const auto& ms : node->GetStatus().members) member |= ms.info.id == id;
    if (!member) return ReplyError(res, 404, "node '" + name + "' is not a member");
    auto r = RetryChange([&] { return node->RemoveMember(id, timeout()); },
                         Clock::now() + std::chrono::seconds(30));
    if (!r.ok()) return ReplyStatus(res, r.status());
    Log(raft::LogLevel::kInfo, "node removed", {{"node", name}});
    ReplyJson(res, 200, "{\"removed\": " + JsonString(name) + "}");
  });

  http.Post("/transfer-leader", [this](const httplib::Request& req, httplib::Response& res) {
    if (!CheckToken(req, res)) return;
    auto j = ParseBody(req, res);
    if (!j) return;
    std::string name = Field(*j, "id");
    if (name.empty()) return ReplyError(res, 400, "transfer-leader needs id");
    if (!IsLeader()) return Forward(req, res);
    auto s = node->TransferLeadership(raft::NodeIdFromName(name), timeout()).get();
    if (!s.ok()) return ReplyStatus(res, s);
    ReplyJson(res, 200, "{\"leader\": " + JsonString(name) + "}");
  });

  http.Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    ReplyJson(res, 200, StatusJson());
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(MetricsText(), "text/plain; version=0.0.4");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    auto st = node->GetStatus();
    if (st.leader == raft::kNoNode || !st.failure.empty() || shutting_down)
      return ReplyError(res, 503, st.failure.empty() ? "no leader known" : st.failure);
    std::string leader = LeaderHttpAddr();
    ReplyJson(res, 200, "{\"ok\": true, \"leader\": " + JsonString(leader) + "}");
  });
}

std::string KvServer::Impl::StatusJson() const {
  auto st = node->GetStatus();
  nlohmann::json j;
  j["id"] = flags.id;
  j["role"] = raft::RoleName(st.role);
  j["term"] = st.term;
  j["commit_index"] = st.commit;
  j["applied_index"] = st.applied;
  j["last_index"] = st.last_index;
  j["snapshot_index"] = st.snapshot_index;
  j["failure"] = st.failure;
  j["leader"] = nullptr;
  j["members"] = nlohmann::json::array();
  for (const auto& ms : st.members) {
    nlohmann::json m;
    m["id"] = ms.info.name;
    m["raft_addr"] = ms.info.raft_addr;
    m["http_addr"] = ms.info.app_data;
    m["voter"] = ms.voter;
    if (st.role == raft::Role::kLeader) {
      m["match"] = ms.match;
      m["next"] = ms.next;
      m["state"] = raft::ProgressStateName(ms.state);
      m["active"] = ms.recent_active;
    }
    if (ms.info.id == st.leader) {
      j["leader"] = {
          {"id", ms.info.name}, {"http_addr", ms.info.app_data}, {"raft_addr", ms.info.raft_addr}};
    }
    j["members"].push_back(std::move(m));
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kv
