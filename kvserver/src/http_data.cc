// /kv routes: PUT, GET, DELETE of single keys and prefix listing. Writes complete from
// the Raft apply thread (the Responder hands the answer to the connection's thread);
// reads wait for a shared read barrier, then read RocksDB on the I/O thread.
#include <nlohmann/json.hpp>
#include <optional>

#include "kv_command.h"
#include "kv_server_impl.h"
#include "utf8.h"

namespace kv {
namespace {

constexpr std::uint64_t kMaxTtlSeconds = 315360000;  // ten years

bool Stale(const Target& t) { return t.Param("consistency") == "stale"; }

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HttpResponse WriteAnswer(Op op, const raft::Result<std::string>& r) {
  if (!r.ok()) return StatusAnswer(r.status());
  CommandResult result;
  if (!DecodeResult(*r, &result)) return ErrorAnswer(500, "malformed state machine result");
  nlohmann::json j;
  j["index"] = result.index;
  if (op == Op::kSet) return JsonAnswer(200, Dump(j));  // the previous value was not read
  j["prev_value"] = result.prev ? nlohmann::json(*result.prev) : nlohmann::json(nullptr);
  if (result.prev) j["prev_index"] = result.prev_index;
  if (op == Op::kCas && !result.ok) {
    nlohmann::json e;
    e["error"] = "compare failed";
    e["current"] = j["prev_value"];
    if (result.prev) e["current_index"] = result.prev_index;
    return JsonAnswer(412, Dump(e));
  }
  if (op == Op::kDelete) j["deleted"] = result.prev.has_value();
  return JsonAnswer(200, Dump(j));
}

}  // namespace

HttpResponse ListPageAnswer(const std::vector<std::pair<std::string, std::string>>& items,
                            std::size_t limit, bool b64, std::size_t max_list_bytes) {
  // Written straight into the body: no DOM copy of the values. The page also ends once
  // the body passes the budget (escaping can make JSON up to 6x the raw bytes).
  std::string body = "{\"items\": [";
  std::size_t bytes = 0, n = 0;
  for (; n < items.size(); ++n) {
    if (n > 0 && body.size() >= max_list_bytes) break;
    const auto& [k, v] = items[n];
    // Security review F-18: a key with U+FFFD in it names no key, and as `next` it
    // resumes the listing at the wrong place (skipping keys or looping). The page ends
    // before such a key; a page that would start with one is refused.
    if (!b64 && !ValidUtf8(k)) {
      if (n > 0) break;
      return ErrorAnswer(400,
                         "the listing reached a key that is not valid UTF-8, which text mode "
                         "can neither show nor page past: list with encoding=base64 (binary "
                         "safe)");
    }
    bytes += k.size() + v.size();
    if (n > 0) body += ", ";
    body += "{\"key\": ";
    body += JsonString(b64 ? Base64(k) : k);
    body += ", \"value\": ";
    body += JsonString(b64 ? Base64(v) : v);
    body += "}";
  }
  body += "], \"next\": ";
  const bool more = n > 0 && (n < items.size() || n == limit || bytes >= max_list_bytes);
  const std::string& last = n > 0 ? items[n - 1].first : std::string();
  body += more ? JsonString(b64 ? Base64(last) : last) : "null";
  body += "}";
  return JsonAnswer(200, std::move(body));
}

void KvServer::Impl::HandleData(const CallPtr& call) {
  const HttpRequest& req = call->req;
  const Target& t = call->target;
  if (call->route == "/kv") {
    if (req.method() != http::verb::get) return Answer(call, ErrorAnswer(405, "only GET /kv"));
    std::size_t limit = 100;
    if (t.Has("limit")) {
      const auto n = ParseU64(t.Param("limit"));
      if (!n || *n == 0 || *n > 1000)
        return Answer(call, ErrorAnswer(400, "limit must be a number in 1..1000"));
      limit = static_cast<std::size_t>(*n);
    }
    if (ranges) return ListRanges(call, limit);
    auto list = [this, call, limit] {
      const Target& t = call->target;
      auto items = sm->List(t.Param("prefix"), t.Param("start_after"), limit, flags.max_list_bytes);
      if (!items.ok()) return Answer(call, ErrorAnswer(500, items.status().ToString()));
      Answer(call,
             ListPageAnswer(*items, limit, t.Param("encoding") == "base64", flags.max_list_bytes));
    };
    if (Stale(t)) return list();
    if (std::string f = ReadFailure(); !f.empty())  // the barrier could not complete
      return Answer(call, ErrorAnswer(503, f + "; consistency=stale reads still work"));
    return AfterReadBarrier(call, [this, call, list](const raft::Status& s) {
      if (!s.ok()) return Answer(call, StatusAnswer(s, /*is_read=*/true));
      list();
    });
  }

  auto key = KeyFromPath(t.path);
  if (!key) return Answer(call, ErrorAnswer(400, "malformed or empty key in the URL"));
  if (key->size() > flags.max_key_bytes)
    return Answer(call, ErrorAnswer(413, "key is longer than " +
                                             std::to_string(flags.max_key_bytes) + " bytes"));

  HttpResponse refusal;
  const std::optional<Shard> shard = ShardOf(call, *key, &refusal);
  if (!shard && refusal.result() == http::status::unknown) return;  // rerouted
  if (!shard) return Answer(call, std::move(refusal));
  if (req.method() == http::verb::get) {
    auto get = [this, call, key = *key, sm = shard->sm] {
      auto v = sm->GetRecord(key);
      if (!v.ok()) return Answer(call, ErrorAnswer(500, v.status().ToString()));
      // Checked after the read: a split moves the span before it deletes the keys.
      if (ranges && !sm->Owns(key)) return Reroute(call, "the key's range split");
      if (!v->has_value()) return Answer(call, ErrorAnswer(404, "key not found"));
      HttpResponse res{http::status::ok, 11};
      res.set(http::field::content_type, "application/octet-stream");
      // The index of the last write to the key (CAS with prev_index; watch from after it).
      res.set("X-Raft-Index", std::to_string((*v)->index));
      if ((*v)->expire_at_ms != 0) res.set("X-Expire-At-Ms", std::to_string((*v)->expire_at_ms));
      res.body() = std::move((*v)->value);
      Answer(call, std::move(res));
    };
    if (Stale(t)) return get();
    if (std::string f = ReadFailure(); !f.empty())  // the barrier could not complete
      return Answer(call, ErrorAnswer(503, f + "; consistency=stale reads still work"));
    return AfterReadBarrier(call, shard->range, [this, call, get](const raft::Status& s) {
      if (!s.ok()) return Answer(call, StatusAnswer(s, /*is_read=*/true));
      get();
    });
  }

  Op op;
  if (req.method() == http::verb::put) {
    op = Op::kPut;
  } else if (req.method() == http::verb::delete_) {
    op = Op::kDelete;
  } else {
    return Answer(call, ErrorAnswer(405, "only GET, PUT and DELETE on /kv/{key}"));
  }
  if (req.body().size() > flags.max_value_bytes)  // the server checked it already
    return Answer(call, ErrorAnswer(413, "value is larger than " +
                                             std::to_string(flags.max_value_bytes) + " bytes"));
  if (!IsLeader(*shard)) return Forward(call, *shard);
  Command cmd;
  cmd.op = op;
  cmd.key = std::move(*key);
  if (op == Op::kPut) {
    cmd.value = req.body();
    if (t.Has("prev_kv")) {
      const std::string v = t.Param("prev_kv");
      if (v != "true" && v != "false")
        return Answer(call, ErrorAnswer(400, "prev_kv must be true or false"));
      if (v == "false") cmd.op = Op::kSet;
    } else {
      cmd.op = Op::kSet;  // the previous value is returned only when asked for
    }
    if (t.Has("prev_value") + t.Has("prev_exist") + t.Has("prev_index") > 1)
      return Answer(call, ErrorAnswer(400, "use one of prev_value, prev_exist and prev_index"));
    if (t.Has("prev_value")) {
      cmd.op = Op::kCas;
      cmd.expected = t.Param("prev_value");
    } else if (t.Has("prev_exist")) {
      if (t.Param("prev_exist") != "false")
        return Answer(call, ErrorAnswer(400, "prev_exist only supports false (create if absent)"));
      cmd.op = Op::kCas;
      cmd.expected = std::nullopt;
    } else if (t.Has("prev_index")) {
      auto n = ParseU64(t.Param("prev_index"));
      if (!n) return Answer(call, ErrorAnswer(400, "prev_index must be a number (0: absent)"));
      cmd.op = Op::kCas;
      cmd.expected_index = *n;
    }
    if (t.Has("ttl")) {
      auto ttl = ParseU64(t.Param("ttl"));
      if (!ttl || *ttl == 0 || *ttl > kMaxTtlSeconds)
        return Answer(call, ErrorAnswer(400, "ttl must be a number of seconds in 1..315360000"));
      // The leader's clock decides (docs/state-format.md, "Expiries").
      cmd.expire_at_ms = WallClockMs() + *ttl * 1000;
    }
  }
  if (cmd.op != Op::kDelete && quota->limit() != 0 &&
      !quota->AdmitWrite(ranges ? ranges->SizeBytesSeen() : sm->ApproximateSizeBytes(),
                         cmd.key.size() + cmd.value.size())) {
    return Answer(call,
                  ErrorAnswer(507, "database space exceeded: the state is over -quota-bytes " +
                                       std::to_string(quota->limit()) +
                                       "; delete keys to free space (reads and deletes "
                                       "still work)"));
  }
  if (std::string f = shard->sm->Failure(); !f.empty()) return Answer(call, ErrorAnswer(503, f));
  const Op final_op = cmd.op;
  Propose(*shard, EncodeCommand(cmd), [this, call, final_op](raft::Result<std::string> r) {
    CommandResult result;
    if (ranges && r.ok() && DecodeResult(*r, &result) &&
        result.error.rfind(kWrongRangeError, 0) == 0) {
      // Not applied: a split moved the key first. A forwarded request goes back to its
      // forwarder, which routes it again.
      if (call->req.count("X-Kv-Forwarded") != 0)
        return Answer(call, ErrorAnswer(409, result.error + "; retry"));
      return Reroute(call, "the key's range split");
    }
    Answer(call, WriteAnswer(final_op, r));
  });
}

}  // namespace kv
