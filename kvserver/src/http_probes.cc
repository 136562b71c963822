// Probe routes: /livez (the process serves HTTP) and /readyz (readiness.h). Apart from the
// other control routes so that the rules stay in one place (docs/http-api.md, "/livez
// and /readyz").
#include <nlohmann/json.hpp>

#include "kv_server_impl.h"
#include "readiness.h"

namespace kv {

void KvServer::Impl::HandleProbe(const CallPtr& call) {
  if (call->req.method() != http::verb::get)
    return Answer(call, ErrorAnswer(405, "only GET " + std::string(call->route)));
  if (call->route == "/livez") return Answer(call, JsonAnswer(200, "{\"live\": true}"));
  auto st = node->GetStatus();
  // The Raft log's failure, else the state machine's (a full disk stalls the apply).
  if (st.failure.empty()) st.failure = sm->Failure();
  Readiness r = CheckReadiness(st, shutting_down);
  nlohmann::json j;
  j["ready"] = r.ready;
  j["applied_index"] = st.applied;
  j["commit_index"] = st.commit;
  j["leader"] = nullptr;
  for (const auto& ms : st.members)
    if (ms.info.id == st.leader) j["leader"] = ms.info.name;
  if (!r.ready) {
    j["reason"] = r.reason;
    j["error"] = r.message;
  }
  HttpResponse res = JsonAnswer(r.ready ? 200 : 503,
                                j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (!r.ready) res.set(http::field::retry_after, "1");
  Answer(call, std::move(res));
}

}  // namespace kv
