// KvServer in ranges mode (ranges_mode.h; docs/multi-raft.md, "kvserver: ranges"):
// start, routing a key to its range, listing across ranges, the control routes that
// differ (/status, /metrics, /health, /livez, /readyz, /join, /leave) and the upkeep loop.
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <future>
#include <nlohmann/json.hpp>

#include "cluster_id.h"
#include "join_check.h"
#include "kv_command.h"
#include "kv_server_impl.h"

namespace kv {
namespace {

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Metrics carry a range label for the lowest range ids only (bounded cardinality).
constexpr std::size_t kRangeLabels = 64;

}  // namespace

raft::Status KvServer::Impl::StartRanges(Impl* impl, const std::string& cluster_id,
                                         const std::string& peer_secret) {
  const ServerFlags& flags = impl->flags;
  RangesOptions o;
  o.self.id = raft::NodeIdFromName(flags.id);
  o.self.name = flags.id;
  o.self.raft_addr = flags.raft_advertise();
  o.self.http_addr = flags.http_advertise();
  o.data = flags.data;
  // Only a bootstrap writes the directory; a joiner takes the cluster's.
  o.shards = impl->fresh && flags.join.empty() && flags.restore.empty() ? flags.shards : 0;
  o.restore_from = impl->fresh ? flags.restore : "";
  o.rocks = RocksOptionsOf(flags);
  o.range_max_bytes = flags.range_max_bytes;
  o.range_max_writes = flags.range_max_writes;
  o.rocks.track_write_load = flags.range_max_writes > 0;
  o.logger = impl->logger;
  o.on_applied = [impl](raft::Index i) { impl->OnApplied(i); };  // wakes the watches
  raft::HostOptions& h = o.host;
  h.listen_addr = flags.raddr;
  h.advertise_addr = flags.raft_advertise();
  h.cluster_id = cluster_id.empty() ? kUnknownClusterId : cluster_id;  // see JoinCluster
  h.cluster_secret = peer_secret;
  h.peer_tls.cert_file = flags.peer_cert_file;
  h.peer_tls.key_file = flags.peer_key_file;
  h.peer_tls.trusted_ca_file = flags.peer_trusted_ca_file;
  h.tick_ms = flags.tick_ms;
  h.election_ticks = flags.election_ticks;
  h.heartbeat_ticks = flags.heartbeat_ticks;
  h.snapshot_entries = flags.snapshot_entries;
  h.snapshot_trailing_entries = flags.snapshot_trailing;
  h.max_snapshot_bytes = flags.max_snapshot_bytes;
  h.logger = impl->logger;
  if (o.shards >= 2)
    impl->Log(raft::LogLevel::kWarn,
              "no -join and an empty data directory: bootstrapping a NEW ranges cluster with "
              "this node as its only member",
              {{"data", flags.data}, {"shards", std::to_string(o.shards)}});
  auto rm = RangesMode::Start(std::move(o));
  if (!rm.ok()) return rm.status();
  impl->ranges = std::move(rm).value();
  impl->quota = std::make_unique<Quota>(flags.quota_bytes);
  if (!flags.join.empty()) {
    // As in single-group mode: a joiner stopped before it became a voter of the meta
    // range asks again.
    auto st = impl->ranges->host().GroupStatus(kMetaRange);
    const bool voter =
        st.ok() && std::count(st->voters.begin(), st->voters.end(), impl->ranges->self()) > 0;
    impl->needs_join = impl->fresh || !voter;
  }
  return raft::Status::Ok();
}

std::optional<KvServer::Impl::Shard> KvServer::Impl::ShardOf(const CallPtr& call,
                                                             std::string_view key,
                                                             HttpResponse* refusal) {
  if (!ranges) return Shard{sm.get(), 0, {}};
  auto r = ranges->RouteKey(key);
  if (!r) {
    *refusal = ErrorAnswer(503, "the range directory is not known on this node yet; retry");
    return std::nullopt;
  }
  const std::string id = std::to_string(r->id);
  if (auto it = call->req.find("X-Kv-Range"); it != call->req.end() && it->value() != id) {
    *refusal = ErrorAnswer(409, "wrong range: this node routes the key to range " + id + ", not " +
                                    std::string(it->value()) + "; retry");
    return std::nullopt;
  }
  if (r->sm == nullptr) {
    *refusal = ErrorAnswer(503, "range " + id + " is not hosted on this node yet; retry");
    // A range a split made is routed to (the splits this node applied) a moment before
    // it is hosted here (the upkeep's next pass): the request waits for it.
    if (call->reroutes < kMaxReroutes) {
      Reroute(call, "range " + id + " is not hosted on this node yet");
      refusal->result(http::status::unknown);  // answered later
    }
    return std::nullopt;
  }
  return Shard{r->sm, r->id, {}};
}

bool KvServer::Impl::IsLeader(const Shard& s) const {
  if (s.range == 0) return IsLeader();
  return ranges->host().GroupLeader(s.range) == ranges->self();
}

void KvServer::Impl::Propose(const Shard& s, std::string data, raft::Host::Callback done) {
  if (s.range == 0) return node->Propose(std::move(data), timeout(), std::move(done));
  ranges->host().Propose(s.range, std::move(data), timeout(), std::move(done));
}

void KvServer::Impl::Forward(const CallPtr& call, const Shard& s) {
  if (s.range == 0) return Forward(call);
  const raft::NodeId leader = ranges->host().GroupLeader(s.range);
  const std::string addr = leader != raft::kNoNode ? ranges->HttpAddrOf(leader) : "";
  if (addr.empty())
    return Answer(call, ErrorAnswer(503, "range " + std::to_string(s.range) +
                                             " has no leader known here; retry"));
  ForwardTo(call, addr, s.range, {});
}

std::optional<std::vector<KvServer::Impl::Shard>> KvServer::Impl::ShardsOverlapping(
    const std::string& prefix, const std::string& start_after, HttpResponse* refusal) const {
  const std::string prefix_end = PrefixEnd(prefix);
  std::vector<Shard> shards;
  for (const RangeDescriptor& d : ranges->Directory()) {
    const bool before_end = prefix_end.empty() || d.start < prefix_end;
    const bool after_start = d.end.empty() || (d.end > prefix && d.end > start_after);
    if (!before_end || !after_start) continue;
    RocksStateMachine* rsm = ranges->StateMachine(d.id);
    if (rsm == nullptr) {
      *refusal = ErrorAnswer(
          503, "range " + std::to_string(d.id) + " is not hosted on this node yet; retry");
      return std::nullopt;
    }
    shards.push_back(Shard{rsm, d.id, d});
  }
  if (shards.empty()) {
    *refusal = ErrorAnswer(503, "the range directory is not known on this node yet; retry");
    return std::nullopt;
  }
  return shards;
}

void KvServer::Impl::ListRanges(const CallPtr& call, std::size_t limit) {
  const Target& t = call->target;
  const std::string prefix = t.Param("prefix");
  const std::string start_after = t.Param("start_after");
  HttpResponse refusal;
  auto overlapping = ShardsOverlapping(prefix, start_after, &refusal);
  if (!overlapping) return Answer(call, std::move(refusal));
  const std::vector<Shard> shards = std::move(*overlapping);  // in key order
  // Each range's state after its own barrier: a page is linearizable per range, not one
  // point in time across ranges (no cross-range transactions; docs/http-api.md).
  auto list = [this, call, limit, shards, prefix, start_after] {
    std::vector<std::pair<std::string, std::string>> items;
    std::size_t bytes = 0;
    for (const Shard& s : shards) {
      if (items.size() >= limit || bytes >= flags.max_list_bytes) break;
      auto part =
          s.sm->List(prefix, start_after, limit - items.size(), flags.max_list_bytes - bytes);
      if (!part.ok()) return Answer(call, ErrorAnswer(500, part.status().ToString()));
      // Checked after the read (a split moves the span before it deletes the keys): the
      // range still holds the span it was routed for, else the listing is routed again.
      if (auto span = s.sm->Range();
          span ? span->start != s.routed.start || span->end != s.routed.end
               : s.routed.generation != 1)
        return Reroute(call, "a range of the listing split");
      for (auto& kv : *part) {
        if (!s.routed.Contains(kv.first)) continue;
        bytes += kv.first.size() + kv.second.size();
        items.push_back(std::move(kv));
      }
    }
    HttpResponse res = ListPageAnswer(items, limit, call->target.Param("encoding") == "base64",
                                      flags.max_list_bytes);
    res.set("X-Kv-Ranges", std::to_string(shards.size()));
    Answer(call, std::move(res));
  };
  if (t.Param("consistency") == "stale" || shards.empty()) return list();
  if (std::string f = ReadFailure(); !f.empty())
    return Answer(call, ErrorAnswer(503, f + "; consistency=stale reads still work"));
  // The barriers run together; their completions come back on this call's I/O thread.
  auto left = std::make_shared<std::size_t>(shards.size());
  auto failed = std::make_shared<raft::Status>();
  for (const Shard& s : shards) {
    AfterReadBarrier(call, s.range, [this, call, left, failed, list](const raft::Status& st) {
      if (!st.ok() && failed->ok()) *failed = st;
      if (--*left > 0) return;
      if (!failed->ok()) return Answer(call, StatusAnswer(*failed, /*is_read=*/true));
      list();
    });
  }
}

std::string KvServer::Impl::RangesStatusJson() const {
  nlohmann::json j;
  j["id"] = flags.id;
  j["cluster_id"] = ClusterId();
  j["mode"] = "ranges";
  j["experimental"] = "ranges mode: ranges split, each replicated on every node";
  j["failure"] = Failure();
  j["db_size_bytes"] = ranges->ApproximateSizeBytes();
  j["quota_bytes"] = quota->limit();
  j["alarms"] = nlohmann::json::array();
  if (quota->alarm()) j["alarms"].push_back("NOSPACE");
  j["processes"] = nlohmann::json::array();
  for (const auto& [id, p] : ranges->meta().Processes())
    j["processes"].push_back({{"id", p.name},
                              {"raft_addr", p.raft_addr},
                              {"http_addr", p.http_addr},
                              {"state", p.state == ProcessState::kMember ? "member" : "leaving"}});
  auto names = [this](const std::vector<raft::NodeId>& ids) {
    nlohmann::json a = nlohmann::json::array();
    for (raft::NodeId id : ids) {
      std::string n = ranges->NameOf(id);
      a.push_back(n.empty() ? std::to_string(id) : n);
    }
    return a;
  };
  auto range_json = [&](RangeId id) {
    nlohmann::json r;
    r["id"] = id;
    auto st = ranges->host().GroupStatus(id);
    if (!st.ok()) {
      r["hosted"] = false;
      return r;
    }
    r["hosted"] = true;
    r["role"] = raft::RoleName(st->role);
    r["leader"] = st->leader == raft::kNoNode ? nlohmann::json(nullptr)
                                              : nlohmann::json(ranges->NameOf(st->leader));
    r["term"] = st->term;
    r["commit_index"] = st->commit;
    r["applied_index"] = st->applied;
    r["last_index"] = st->last_index;
    r["snapshot_index"] = st->snapshot_index;
    r["asleep"] = st->asleep;
    r["voters"] = names(st->voters);
    r["learners"] = names(st->learners);
    if (RocksStateMachine* rsm = ranges->StateMachine(id))
      r["size_bytes"] = rsm->ApproximateSizeBytes();
    return r;
  };
  j["meta"] = range_json(kMetaRange);
  j["ranges"] = nlohmann::json::array();
  for (const RangeDescriptor& d : ranges->Directory()) {
    nlohmann::json r = range_json(d.id);
    r["start"] = d.start;
    r["end"] = d.end;  // "": the end of the key space
    r["generation"] = d.generation;
    j["ranges"].push_back(std::move(r));
  }
  const raft::HostMetrics m = ranges->host().GetMetrics();
  j["host"] = {{"groups", m.groups},
               {"awake_groups", m.awake_groups},
               {"disk_rounds", m.disk_rounds},
               {"log_syncs", m.log_syncs}};
  return Dump(j);
}

void KvServer::Impl::RangesMetrics(PromWriter& w) const {
  const raft::HostMetrics m = ranges->host().GetMetrics();
  w.Gauge("kv_host_groups", "Raft groups hosted (the meta range and the data ranges).", m.groups);
  w.Gauge("kv_host_awake_groups", "Hosted groups not quiesced.", m.awake_groups);
  w.Counter("kv_host_disk_rounds_total",
            "Rounds of the shared log: every group's pending writes, one sync.", m.disk_rounds);
  w.Counter("kv_host_log_syncs_total", "fdatasyncs of the shared log.", m.log_syncs);
  w.Counter("kv_host_proposals_committed_total", "Proposals committed and applied here.",
            m.proposals_committed);
  w.Counter("kv_host_proposals_failed_total", "Proposals that failed after being accepted.",
            m.proposals_failed);
  w.Counter("kv_host_snapshots_taken_total",
            "Range snapshots taken and recorded (each range's log compacted behind it).",
            m.snapshots_taken);
  w.Counter("kv_host_snapshots_installed_total", "Range snapshots received and restored.",
            m.snapshots_installed);
  w.Counter("kv_host_snapshots_sent_total", "Range snapshots a peer received whole.",
            m.snapshots_sent);
  w.Counter("kv_host_log_segments_reclaimed_total",
            "Shared-log segments deleted once every range had moved past them.",
            m.segments_reclaimed);
  w.Counter("kv_host_frames_refused_total", "Group frames the host refused from a peer.",
            m.frames_refused);
  w.Gauge("kv_state_machine_failed",
          "1 while a range's state machine cannot apply (a full disk) and retries.",
          std::uint64_t{Failure().empty() ? 0u : 1u});
  // Per range, for the kRangeLabels lowest ids; the others summed into range="other".
  struct Row {
    std::string label;
    std::uint64_t leader = 0, term = 0, commit = 0, applied = 0, size = 0;
  };
  std::vector<Row> rows;
  Row other{"other"};
  bool have_other = false;
  std::size_t n = 0;
  for (const raft::GroupStatusInfo& st : ranges->host().GroupStatuses()) {
    RocksStateMachine* rsm = ranges->StateMachine(st.group);
    Row r{std::to_string(st.group),
          st.role == raft::Role::kLeader ? 1u : 0u,
          st.term,
          st.commit,
          st.applied,
          rsm ? rsm->ApproximateSizeBytes() : 0};
    if (n++ < kRangeLabels) {
      rows.push_back(r);
    } else {
      have_other = true;
      other.leader += r.leader;
      other.commit += r.commit;
      other.applied += r.applied;
      other.size += r.size;
    }
  }
  if (have_other) rows.push_back(other);
  auto family = [&](const char* name, const char* help, std::uint64_t Row::*field) {
    w.Header(name, "gauge", help);
    for (const Row& r : rows) w.Sample(name, {{"range", r.label}}, r.*field);
  };
  family("kv_range_leader", "1 when this node leads the range (range=\"1\": the meta range).",
         &Row::leader);
  family("kv_range_term", "The range's Raft term (0 for range=\"other\").", &Row::term);
  family("kv_range_commit_index", "Highest log index known committed in the range.", &Row::commit);
  family("kv_range_applied_index", "Highest log index applied by the range's state machine.",
         &Row::applied);
  family("kv_range_size_bytes", "Approximate size of the range's RocksDB state.", &Row::size);
  w.Gauge("kv_db_size_bytes", "Approximate size of the RocksDB state (every range).",
          ranges->ApproximateSizeBytes());
}

void KvServer::Impl::HandleRangesControl(const CallPtr& call) {
  const HttpRequest& req = call->req;
  const std::string_view route = call->route;
  if (route == "/status" || route == "/metrics" || route == "/health" || route == "/livez" ||
      route == "/readyz") {
    if (req.method() != http::verb::get)
      return Answer(call, ErrorAnswer(405, "only GET " + std::string(route)));
    if (route == "/livez") return Answer(call, JsonAnswer(200, "{\"live\": true}"));
    if (route == "/status") return Answer(call, JsonAnswer(200, RangesStatusJson()));
    if (route == "/metrics") return Answer(call, MetricsAnswer());
    // /health and /readyz: every range of the directory hosted here with a leader known.
    std::string why;
    const auto dir = ranges->Directory();
    if (dir.empty()) why = "the range directory is not known here yet";
    for (const RangeDescriptor& d : dir) {
      auto st = ranges->host().GroupStatus(d.id);
      if (!st.ok()) {
        why = "range " + std::to_string(d.id) + " is not hosted here yet";
      } else if (st->leader == raft::kNoNode) {
        why = "range " + std::to_string(d.id) + " has no leader known";
      }
      if (!why.empty()) break;
    }
    if (std::string f = Failure(); why.empty() && !f.empty())
      why = auth ? "storage failure; see the node's log or /status" : f;
    if (shutting_down) why = "shutting down";
    if (!why.empty()) {
      HttpResponse res = ErrorAnswer(503, why);
      res.set(http::field::retry_after, "1");
      return Answer(call, std::move(res));
    }
    return Answer(call,
                  JsonAnswer(200, route == "/readyz" ? "{\"ready\": true}" : "{\"ok\": true}"));
  }
  if (route == "/split") return SplitRange(call);
  if (route == "/backup" || route == "/backup/{id}") return HandleBackup(call);
  if (route != "/join" && route != "/leave")
    return Answer(call, ErrorAnswer(route == "other" ? 404 : 501,
                                    route == "other"
                                        ? "no such route"
                                        : std::string(route) + " is not built in ranges mode yet "
                                                               "(docs/multi-raft.md)"));
  if (req.method() != http::verb::post)
    return Answer(call, ErrorAnswer(405, "only POST " + std::string(route)));
  if (!JsonContentType(req))
    return Answer(call, ErrorAnswer(415, "the body must be JSON (Content-Type: application/json)"));
  auto j = nlohmann::json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Answer(call, ErrorAnswer(400, "body must be a JSON object"));
  auto field = [&j](const char* name) {
    auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  // Both run on the meta range's leader.
  if (ForwardToMetaLeader(call, std::chrono::seconds(route == "/leave" ? 60 : 5))) return;
  if (route == "/leave") return LeaveRanges(call, field("id"));
  JoinRequest jr{field("id"), field("raft_addr"), field("http_addr")};
  if (field("mode") != "ranges")
    return Answer(call, ErrorAnswer(409,
                                    "this cluster runs in ranges mode: start the joiner with "
                                    "-shards (any value >= 2)"));
  if (JoinVerdict v = CheckJoin(jr, {}); v.kind == JoinVerdict::Kind::kRefused)
    return Answer(call, ErrorAnswer(v.status, v.message));
  // The joiner learns the processes to dial from the answer: this one among them.
  if (ranges->meta().Processes().count(ranges->self()) == 0)
    return Answer(call, ErrorAnswer(503, "the meta range is still bootstrapping; retry"));
  ProcessRecord p;
  p.id = raft::NodeIdFromName(jr.name);
  p.name = jr.name;
  p.raft_addr = jr.raft_addr;
  p.http_addr = jr.http_addr;
  ranges->AddProcess(p, timeout(), [this, call](raft::Result<std::string> r) {
    if (!r.ok()) return Answer(call, StatusAnswer(r.status()));
    if (!r->empty()) return Answer(call, ErrorAnswer(409, "join refused: " + *r));
    // The processes the joiner dials first; its meta replica learns the rest.
    nlohmann::json out;
    out["processes"] = nlohmann::json::array();
    for (const auto& [id, q] : ranges->meta().Processes())
      out["processes"].push_back({{"id", q.name}, {"raft_addr", q.raft_addr}});
    Answer(call, JsonAnswer(200, Dump(out)));
  });
}

namespace {

// Polls (every 100 ms, on the request's I/O thread) until process `p` is out of the meta
// table, then answers 200; 504 at the deadline (the cluster goes on removing it).
struct LeaveWait : std::enable_shared_from_this<LeaveWait> {
  KvServer::Impl* impl;
  CallPtr call;
  raft::NodeId p;
  std::string name;
  std::chrono::steady_clock::time_point deadline;
  boost::asio::steady_timer timer;
  LeaveWait(KvServer::Impl* impl, CallPtr call, raft::NodeId p, std::string name)
      : impl(impl),
        call(call),
        p(p),
        name(std::move(name)),
        deadline(std::chrono::steady_clock::now() + std::chrono::seconds(60)),
        timer(call->info.io) {}
  void Poll() {
    if (impl->ranges->meta().Processes().count(p) == 0) {
      impl->Log(raft::LogLevel::kInfo, "node removed", {{"node", name}});
      return impl->Answer(call, JsonAnswer(200, "{\"removed\": " + JsonString(name) + "}"));
    }
    if (std::chrono::steady_clock::now() >= deadline || impl->shutting_down)
      return impl->Answer(call, ErrorAnswer(504, "node '" + name +
                                                     "' is still leaving (its ranges are "
                                                     "being handed over); see /status"));
    timer.expires_after(std::chrono::milliseconds(100));
    timer.async_wait([self = shared_from_this()](boost::system::error_code) { self->Poll(); });
  }
};

}  // namespace

namespace {

// Polls (every 50 ms, on the request's I/O thread) until the directory has a range
// starting at `key` (the ordered split published), then answers 200 with the two
// ranges; 504 at the deadline (the split may still come).
struct SplitWait : std::enable_shared_from_this<SplitWait> {
  KvServer::Impl* impl;
  CallPtr call;
  std::string key;
  std::chrono::steady_clock::time_point deadline;
  boost::asio::steady_timer timer;
  SplitWait(KvServer::Impl* impl, CallPtr call, std::string key, std::chrono::milliseconds timeout)
      : impl(impl),
        call(call),
        key(std::move(key)),
        deadline(std::chrono::steady_clock::now() + timeout),
        timer(call->info.io) {}
  void Poll() {
    const std::vector<RangeDescriptor> dir = impl->ranges->meta().Ranges();
    for (std::size_t i = 0; i < dir.size(); ++i) {
      if (dir[i].start != key || i == 0) continue;
      nlohmann::json out;
      for (const RangeDescriptor* d : {&dir[i - 1], &dir[i]})
        out["ranges"].push_back(
            {{"id", d->id}, {"start", d->start}, {"end", d->end}, {"generation", d->generation}});
      return impl->Answer(call, JsonAnswer(200, Dump(out)));
    }
    if (std::chrono::steady_clock::now() >= deadline || impl->shutting_down)
      return impl->Answer(call, ErrorAnswer(504,
                                            "the split was ordered but is not in the "
                                            "directory yet; see /status"));
    timer.expires_after(std::chrono::milliseconds(50));
    timer.async_wait([self = shared_from_this()](boost::system::error_code) { self->Poll(); });
  }
};

}  // namespace

bool KvServer::Impl::ForwardToMetaLeader(const CallPtr& call,
                                         std::chrono::milliseconds extra_wait) {
  auto meta = ranges->host().GroupStatus(kMetaRange);
  if (meta.ok() && meta->role == raft::Role::kLeader) return false;
  const std::string addr =
      meta.ok() && meta->leader != raft::kNoNode ? ranges->HttpAddrOf(meta->leader) : std::string();
  if (addr.empty()) {
    Answer(call, ErrorAnswer(503, "the meta range has no leader; retry"));
  } else {
    ForwardTo(call, addr, 0, extra_wait);
  }
  return true;
}

void KvServer::Impl::SplitRange(const CallPtr& call) {
  if (call->req.method() != http::verb::post)
    return Answer(call, ErrorAnswer(405, "only POST /split"));
  const std::string key = call->target.Param("key");
  const std::size_t max_key = std::min<std::size_t>(flags.max_key_bytes, kMaxRangeKeyBytes);
  if (key.empty() || key.size() > max_key)
    return Answer(
        call, ErrorAnswer(400, "key must be a key of 1.." + std::to_string(max_key) + " bytes"));
  if (ForwardToMetaLeader(call, std::chrono::seconds(10))) return;
  for (const RangeDescriptor& d : ranges->meta().Ranges())
    if (d.start == key) return Answer(call, ErrorAnswer(409, "a range already starts at this key"));
  ranges->OrderSplit(key, timeout(), [this, call, key](raft::Result<std::string> r) {
    if (!r.ok()) return Answer(call, StatusAnswer(r.status()));
    if (!r->empty()) return Answer(call, ErrorAnswer(409, "split refused: " + *r));
    boost::asio::post(call->info.io, [this, call, key] {
      std::make_shared<SplitWait>(this, call, key, std::chrono::seconds(10))->Poll();
    });
  });
}

void KvServer::Impl::Reroute(const CallPtr& call, const std::string& why) {
  if (call->reroutes >= kMaxReroutes) return Answer(call, ErrorAnswer(503, why + "; retry"));
  ++call->reroutes;
  ranges->RefreshRoutes();
  boost::asio::post(call->info.io, [this, call] {
    auto timer = std::make_shared<boost::asio::steady_timer>(
        call->info.io, std::chrono::milliseconds(20 * call->reroutes));
    timer->async_wait([this, call, timer](boost::system::error_code) {
      if (shutting_down)
        return Answer(call, ErrorAnswer(503, "node is shutting down; retry another node"));
      HandleData(call);
    });
  });
}

void KvServer::Impl::LeaveRanges(const CallPtr& call, const std::string& name) {
  const raft::NodeId p = raft::NodeIdFromName(name);
  const auto processes = ranges->meta().Processes();
  auto it = processes.find(p);
  if (name.empty() || it == processes.end() || it->second.name != name)
    return Answer(call, ErrorAnswer(404, "node '" + name + "' is not a member"));
  std::size_t staying = 0;
  for (const auto& [id, q] : processes) staying += id != p && q.state == ProcessState::kMember;
  if (staying == 0) return Answer(call, ErrorAnswer(409, "node '" + name + "' is the last member"));
  ranges->Leave(p, timeout(), [this, call, p, name](raft::Result<std::string> r) {
    if (!r.ok()) return Answer(call, StatusAnswer(r.status()));
    if (!r->empty()) return Answer(call, ErrorAnswer(409, "leave refused: " + *r));
    boost::asio::post(call->info.io, [this, call, p, name] {
      std::make_shared<LeaveWait>(this, call, p, name)->Poll();
    });
  });
}

raft::Status KvServer::Impl::JoinRanges(const std::string& via, const std::string& answer) {
  auto j = nlohmann::json::parse(answer, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("processes") || !j["processes"].is_array())
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "the join answer from " + via + " names no processes (not ranges mode?)");
  for (const auto& p : j["processes"]) {
    if (!p.is_object() || !p.contains("id") || !p["id"].is_string() || !p.contains("raft_addr") ||
        !p["raft_addr"].is_string())
      continue;
    const raft::NodeId id = raft::NodeIdFromName(p["id"].get<std::string>());
    if (id == ranges->self()) continue;
    if (raft::Status s = ranges->SetPeer(id, p["raft_addr"].get<std::string>()); !s.ok()) return s;
  }
  return raft::Status::Ok();
}

void KvServer::Impl::RangesUpkeepLoop() {
  using namespace std::chrono;
  auto next_expiry = steady_clock::now();
  std::unique_lock<std::mutex> l(stop_mu);
  while (!stop_cv.wait_for(l, milliseconds(100), [this] { return stop_requested; })) {
    l.unlock();
    ranges->Reconcile();
    if (steady_clock::now() >= next_expiry) {
      next_expiry = steady_clock::now() + seconds(1);
      quota->Observe(ranges->ApproximateSizeBytes());
      // TTL: each range's leader proposes expire for its due keys (as ExpireDue).
      for (const RangeDescriptor& d : ranges->Directory()) {
        RocksStateMachine* rsm = ranges->StateMachine(d.id);
        if (rsm == nullptr || !IsLeader(Shard{rsm, d.id, {}}) || !rsm->Failure().empty()) continue;
        auto due = rsm->DueExpiries(WallClockMs(), 1000);
        if (!due.ok()) continue;
        std::vector<std::future<raft::Result<std::string>>> pending;
        for (auto& [key, at] : *due) {
          Command c;
          c.op = Op::kExpire;
          c.key = std::move(key);
          c.expire_at_ms = at;
          pending.push_back(ranges->host().Propose(d.id, EncodeCommand(c), timeout()));
        }
        for (auto& f : pending) (void)f.get();  // not lost: retried next pass
      }
    }
    l.lock();
  }
}

}  // namespace kv
