// /kv routes: PUT, GET, DELETE of single keys and prefix listing.
#include <charconv>
#include <nlohmann/json.hpp>

#include "http_util.h"
#include "kv_command.h"
#include "kv_server_impl.h"

namespace kv {
namespace {

bool Stale(const httplib::Request& req) {
  return req.has_param("consistency") && req.get_param_value("consistency") == "stale";
}

}  // namespace

void KvServer::Impl::InstallDataRoutes() {
  auto write = [this](const httplib::Request& req, httplib::Response& res, Op op) {
    auto key = KeyFromTarget(req.target);
    if (!key) return ReplyError(res, 400, "malformed or empty key in the URL");
    if (key->size() > flags.max_key_bytes)
      return ReplyError(res, 413,
                        "key is longer than " + std::to_string(flags.max_key_bytes) + " bytes");
    if (req.body.size() > flags.max_value_bytes)
      return ReplyError(res, 413,
                        "value is larger than " + std::to_string(flags.max_value_bytes) + " bytes");
    if (!IsLeader()) return Forward(req, res);
    Command cmd;
    cmd.op = op;
    cmd.key = *key;
    if (op == Op::kPut) {
      cmd.value = req.body;
      if (req.has_param("prev_value")) {
        cmd.op = Op::kCas;
        cmd.expected = req.get_param_value("prev_value");  // httplib decoded the query
      } else if (req.has_param("prev_exist")) {
        if (req.get_param_value("prev_exist") != "false")
          return ReplyError(res, 400, "prev_exist only supports false (create if absent)");
        cmd.op = Op::kCas;
        cmd.expected = std::nullopt;
      }
    }
    auto r = node->Propose(EncodeCommand(cmd), timeout()).get();
    if (!r.ok()) return ReplyStatus(res, r.status());
    CommandResult result;
    if (!DecodeResult(*r, &result)) return ReplyError(res, 500, "malformed state machine result");
    nlohmann::json j;
    j["index"] = result.index;
    j["prev_value"] = result.prev ? nlohmann::json(*result.prev) : nlohmann::json(nullptr);
    if (cmd.op == Op::kCas && !result.ok) {
      nlohmann::json e;
      e["error"] = "compare failed";
      e["current"] = j["prev_value"];
      return ReplyJson(res, 412, e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    if (op == Op::kDelete) j["deleted"] = result.prev.has_value();
    ReplyJson(res, 200, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  };
  http.Put(R"(/kv/[\s\S]*)", [write](const httplib::Request& req, httplib::Response& res) {
    write(req, res, Op::kPut);
  });
  http.Delete(R"(/kv/[\s\S]*)", [write](const httplib::Request& req, httplib::Response& res) {
    write(req, res, Op::kDelete);
  });

  http.Get(R"(/kv/[\s\S]*)", [this](const httplib::Request& req, httplib::Response& res) {
    auto key = KeyFromTarget(req.target);
    if (!key) return ReplyError(res, 400, "malformed or empty key in the URL");
    if (!Stale(req)) {
      auto b = node->ReadBarrier(timeout()).get();
      if (!b.ok()) return ReplyStatus(res, b.status(), /*is_read=*/true);
    }
    auto v = sm->Get(*key);
    if (!v.ok()) return ReplyError(res, 500, v.status().ToString());
    if (!v->has_value()) return ReplyError(res, 404, "key not found");
    res.status = 200;
    res.set_content(**v, "application/octet-stream");
  });

  http.Get("/kv", [this](const httplib::Request& req, httplib::Response& res) {
    std::size_t limit = 100;
    if (req.has_param("limit")) {
      const std::string v = req.get_param_value("limit");
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
      if (ec != std::errc() || p != v.data() + v.size() || limit == 0 || limit > 1000)
        return ReplyError(res, 400, "limit must be a number in 1..1000");
    }
    bool b64 = req.has_param("encoding") && req.get_param_value("encoding") == "base64";
    if (!Stale(req)) {
      auto b = node->ReadBarrier(timeout()).get();
      if (!b.ok()) return ReplyStatus(res, b.status(), /*is_read=*/true);
    }
    auto items = sm->List(req.get_param_value("prefix"), req.get_param_value("start_after"), limit);
    if (!items.ok()) return ReplyError(res, 500, items.status().ToString());
    nlohmann::json j;
    j["items"] = nlohmann::json::array();
    for (const auto& [k, v] : *items) {
      j["items"].push_back({{"key", b64 ? Base64(k) : k}, {"value", b64 ? Base64(v) : v}});
    }
    j["next"] = items->size() == limit
                    ? nlohmann::json(b64 ? Base64(items->back().first) : items->back().first)
                    : nlohmann::json(nullptr);
    ReplyJson(res, 200, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  });
}

}  // namespace kv
