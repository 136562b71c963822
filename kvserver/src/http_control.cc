// Control plane routes: /join, /leave, /transfer-leader, /status, /metrics, /health.
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "join_check.h"
#include "kv_server_impl.h"

namespace kv {
namespace {

using Clock = std::chrono::steady_clock;
using ChangeStarter = std::function<void(raft::Node::Callback)>;

std::optional<nlohmann::json> ParseBody(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::string Field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// Runs a membership change, retrying (every 50 ms, on the I/O thread `io`) while another
// change is pending, until `deadline`; `done` runs on `io`.
void RetryChange(boost::asio::any_io_executor io, ChangeStarter start, Clock::time_point deadline,
                 std::function<void(raft::Result<std::string>)> done) {
  start([io, start, deadline, done](raft::Result<std::string> r) mutable {
    boost::asio::post(io, [io, start, deadline, done, r = std::move(r)]() mutable {
      bool retry = !r.ok() && (r.status().code() == raft::ErrorCode::kConfChangePending ||
                               r.status().code() == raft::ErrorCode::kProposalDropped);
      if (!retry || Clock::now() >= deadline) return done(std::move(r));
      auto timer = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(50));
      timer->async_wait([io, start, deadline, done, timer](boost::system::error_code) mutable {
        RetryChange(io, std::move(start), deadline, std::move(done));
      });
    });
  });
}

}  // namespace

namespace {

// A join on the leader: add as learner, wait for catch-up, promote. Lives on the I/O
// thread of the request; each step is a callback, polling with a timer.
struct JoinFlow : std::enable_shared_from_this<JoinFlow> {
  KvServer::Impl* impl;
  CallPtr call;
  raft::MemberInfo m;
  Clock::time_point deadline;
  boost::asio::steady_timer timer;
  JoinFlow(KvServer::Impl* impl, CallPtr call, raft::MemberInfo m)
      : impl(impl),
        call(call),
        m(std::move(m)),
        deadline(Clock::now() + std::chrono::seconds(60)),
        timer(call->info.io) {}

  void AddLearner() {
    auto self = shared_from_this();
    RetryChange(
        call->info.io,
        [self](raft::Node::Callback cb) {
          self->impl->node->AddLearner(self->m, self->impl->timeout(), std::move(cb));
        },
        deadline,
        [self](raft::Result<std::string> r) {
          if (!r.ok() && !self->RaceLost(r.status()))
            return self->impl->Answer(self->call, StatusAnswer(r.status()));
          self->WaitCaughtUp();
        });
  }
  // Two flows may run for one joiner: a joiner restarted, or whose request timed out,
  // asks again while the first flow still waits on the leader. The flow that loses the
  // race is refused by the core ("already a learner", "already a voter"); it then follows
  // the membership like the winner does instead of failing a join that is succeeding
  // (found by process_snapshot_test: the restarted joiner got 400 and shut down).
  static bool RaceLost(const raft::Status& s) {
    return s.code() == raft::ErrorCode::kInvalidArgument;
  }
  // Promote once the learner has caught up with the commit index (it may need a
  // snapshot first); a voter that cannot keep up would only hurt availability.
  void WaitCaughtUp() {
    auto st = impl->node->GetStatus();
    for (const auto& ms : st.members) {
      if (ms.info.id != m.id) continue;
      if (ms.voter) return Joined();  // promoted by another flow for this joiner
      if (ms.match + 1 >= st.commit) return Promote();
    }
    if (Clock::now() >= deadline || st.role != raft::Role::kLeader)
      return impl->Answer(
          call, ErrorAnswer(504, "node '" + m.name +
                                     "' was added as a learner but did not catch up in time; "
                                     "join again to retry the promotion"));
    WaitCaughtUpLater();
  }
  void WaitCaughtUpLater() {
    timer.expires_after(std::chrono::milliseconds(20));
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->WaitCaughtUp();
    });
  }
  void Promote() {
    auto self = shared_from_this();
    RetryChange(
        call->info.io,
        [self](raft::Node::Callback cb) {
          self->impl->node->PromoteLearner(self->m.id, self->impl->timeout(), std::move(cb));
        },
        deadline,
        [self](raft::Result<std::string> r) {
          if (r.ok()) {
            self->impl->Log(raft::LogLevel::kInfo, "node joined as voter",
                            {{"node", self->m.name}});
            return self->Joined();
          }
          if (!RaceLost(r.status()))
            return self->impl->Answer(self->call, StatusAnswer(r.status()));
          // The winner's promotion may be appended but not yet applied: look again soon.
          self->WaitCaughtUpLater();
        });
  }
  void Joined() { impl->Answer(call, JsonAnswer(200, impl->StatusJson())); }
};

}  // namespace

void KvServer::Impl::HandleControl(const CallPtr& call) {
  const HttpRequest& req = call->req;
  const std::string_view route = call->route;
  if (route == "/livez" || route == "/readyz") return HandleProbe(call);
  if (route == "/status" || route == "/metrics" || route == "/health") {
    if (req.method() != http::verb::get)
      return Answer(call, ErrorAnswer(405, "only GET " + std::string(route)));
    if (route == "/status") return Answer(call, JsonAnswer(200, StatusJson()));
    if (route == "/metrics") return Answer(call, MetricsAnswer());
    raft::NodeId leader = node->leader();
    if (leader == raft::kNoNode || shutting_down)
      return Answer(call, ErrorAnswer(503, "no leader known"));
    // With -auth-file /health needs no credential, so it does not say why (paths, errors):
    // the log and /status (read role) do (security review F-15).
    if (std::string f = Failure(); !f.empty())
      return Answer(call,
                    ErrorAnswer(503, auth ? "storage failure; see the node's log or /status" : f));
    auto st = node->GetStatus();
    std::string addr;
    for (const auto& ms : st.members)
      if (ms.info.id == st.leader) addr = ms.info.app_data;
    return Answer(call, JsonAnswer(200, "{\"ok\": true, \"leader\": " + JsonString(addr) + "}"));
  }
  if (route == "/split")
    return Answer(call, ErrorAnswer(409,
                                    "splits are for ranges mode (-shards N, "
                                    "docs/multi-raft.md)"));
  if (route != "/join" && route != "/leave" && route != "/transfer-leader")
    return Answer(call, ErrorAnswer(404, "no such route"));
  if (req.method() != http::verb::post)
    return Answer(call, ErrorAnswer(405, "only POST " + std::string(route)));
  // A JSON body: a browser cannot send it cross-origin without a preflight (F-10).
  if (!JsonContentType(req))
    return Answer(call, ErrorAnswer(415, "the body must be JSON (Content-Type: application/json)"));
  auto j = ParseBody(req.body());
  if (!j) return Answer(call, ErrorAnswer(400, "body must be a JSON object"));

  if (route == "/join") {
    JoinRequest jr{Field(*j, "id"), Field(*j, "raft_addr"), Field(*j, "http_addr")};
    if (Field(*j, "mode") == "ranges")
      return Answer(call, ErrorAnswer(409,
                                      "this cluster runs one Raft group: start the joiner "
                                      "without -shards"));
    // The form first (any node), the membership on the leader (join_check.h).
    if (JoinVerdict v = CheckJoin(jr, {}); v.kind == JoinVerdict::Kind::kRefused)
      return Answer(call, ErrorAnswer(v.status, v.message));
    if (!IsLeader()) return Forward(call, std::chrono::seconds(65));  // waits for catch-up
    JoinVerdict v = CheckJoin(jr, node->GetStatus().members);
    if (v.kind == JoinVerdict::Kind::kRefused)
      return Answer(call, ErrorAnswer(v.status, v.message));
    if (v.kind == JoinVerdict::Kind::kAlreadyVoter)
      return Answer(call, JsonAnswer(200, StatusJson()));
    raft::MemberInfo m;
    m.name = jr.name;
    m.id = raft::NodeIdFromName(m.name);
    m.raft_addr = jr.raft_addr;
    m.app_data = jr.http_addr;
    Log(raft::LogLevel::kInfo, "join requested",
        {{"node", m.name}, {"raft_addr", m.raft_addr}, {"http_addr", m.app_data}});
    auto flow = std::make_shared<JoinFlow>(this, call, std::move(m));
    if (v.kind == JoinVerdict::Kind::kPromote) return flow->WaitCaughtUp();
    return flow->AddLearner();
  }

  std::string name = Field(*j, "id");
  if (name.empty())
    return Answer(call, ErrorAnswer(400, std::string(route.substr(1)) + " needs id"));
  if (!IsLeader()) return Forward(call);
  raft::NodeId id = raft::NodeIdFromName(name);
  if (route == "/leave") {
    bool member = false;
    for (const auto& ms : node->GetStatus().members) member |= ms.info.id == id;
    if (!member) return Answer(call, ErrorAnswer(404, "node '" + name + "' is not a member"));
    RetryChange(
        call->info.io,
        [this, id](raft::Node::Callback cb) { node->RemoveMember(id, timeout(), std::move(cb)); },
        Clock::now() + std::chrono::seconds(30),
        [this, call, name](raft::Result<std::string> r) {
          if (!r.ok()) return Answer(call, StatusAnswer(r.status()));
          Log(raft::LogLevel::kInfo, "node removed", {{"node", name}});
          Answer(call, JsonAnswer(200, "{\"removed\": " + JsonString(name) + "}"));
        });
    return;
  }
  node->TransferLeadership(id, timeout(), [this, call, name](raft::Status s) {
    if (!s.ok()) return Answer(call, StatusAnswer(s));
    Answer(call, JsonAnswer(200, "{\"leader\": " + JsonString(name) + "}"));
  });
}

std::string KvServer::Impl::StatusJson() const {
  auto st = node->GetStatus();
  nlohmann::json j;
  j["id"] = flags.id;
  j["cluster_id"] = ClusterId();
  j["role"] = raft::RoleName(st.role);
  j["term"] = st.term;
  j["commit_index"] = st.commit;
  j["applied_index"] = st.applied;
  j["last_index"] = st.last_index;
  j["snapshot_index"] = st.snapshot_index;
  j["failure"] = st.failure.empty() ? sm->Failure() : st.failure;
  j["db_size_bytes"] = sm->ApproximateSizeBytes();
  j["quota_bytes"] = quota->limit();
  j["alarms"] = nlohmann::json::array();
  if (quota->alarm()) j["alarms"].push_back("NOSPACE");
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
