// GET /watch?prefix=P&from_index=N[&encoding=base64]: the change history as
// newline-delimited JSON (docs/http-api.md, "Watch"), served by any node from its own
// applied state, so a watch does not care which node leads.
//
// One Watcher per stream, driven on its request's I/O thread: the apply thread only
// wakes it (OnApplied posts at most one pump per watcher). A pump reads one bounded page
// of history (RocksStateMachine::History: one consistent view, index order) from its
// cursor and writes the matching events; it goes on while the cursor is behind the
// applied index and the stream's backlog is small. Events are therefore sent in index
// order, each once, with no gap: the cursor only moves past what a page looked at. A
// once-a-second tick catches up after a full backlog and sends a progress line when the
// stream was quiet for kProgressEvery (so a client knows how far it has seen, and a
// vanished client is found by the failed write).
//
// Ranges mode (docs/http-api.md, "Ranges mode"): each range has its own history and
// index, so a watch has one cursor per range its prefix overlaps, read in turn by each
// pump; its position is the vector of the cursors ("range:index,..."), events name
// their range, and `from=` takes a position back.
//
// Not chosen: a per-watcher in-memory queue filled by the apply thread (memory grows
// with a slow reader and a restart loses it); the history in RocksDB is the queue.
#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "kv_server_impl.h"
#include "utf8.h"

namespace kv {
namespace {

constexpr std::size_t kPageEvents = 1000;
constexpr std::size_t kPageScan = 10000;
constexpr std::size_t kPageBytes = 256 << 10;
constexpr std::size_t kMaxBacklog = 1 << 20;
constexpr auto kTick = std::chrono::seconds(1);
constexpr auto kProgressEvery = std::chrono::seconds(5);

// `range` 0: single-group mode (the event names no range).
std::string EventLine(const Event& e, bool base64, std::uint64_t range) {
  // A key or value that is not UTF-8 goes as base64 in any mode, flagged on the event.
  const bool b64 = base64 || !ValidUtf8(e.key) || !ValidUtf8(e.value);
  std::string line = "{";
  if (range != 0) line.append("\"range\": ").append(std::to_string(range)).append(", ");
  line.append("\"index\": ").append(std::to_string(e.index)).append(", \"type\": \"");
  line.append(EventTypeName(e.type)).append("\", \"key\": ");
  line += JsonString(b64 ? Base64(e.key) : e.key);
  if (e.type == EventType::kPut) {
    line += ", \"value\": ";
    line += JsonString(b64 ? Base64(e.value) : e.value);
  }
  if (b64) line += ", \"encoding\": \"base64\"";
  line += "}\n";
  return line;
}

std::string CompactedLine(std::uint64_t from, std::uint64_t oldest, std::uint64_t range) {
  std::string line = "{\"type\": \"error\", \"code\": 410, \"error\": \"";
  if (range != 0) line.append("range ").append(std::to_string(range)).append(": ");
  line.append("index ").append(std::to_string(from));
  line.append(" is older than the retained history (-watch-history): watch again from ");
  line.append(std::to_string(oldest)).append(" or later, after reading the current values\", ");
  if (range != 0) line.append("\"range\": ").append(std::to_string(range)).append(", ");
  line.append("\"oldest_index\": ").append(std::to_string(oldest)).append("}\n");
  return line;
}

// "range:index,...": the position of a watch in ranges mode (its cursors, each the last
// index looked at).
struct WatchCursor {
  std::uint64_t range = 0;  // 0: the single group
  RocksStateMachine* sm = nullptr;
  std::uint64_t next = 0;  // the first index not yet looked at
};

std::string Position(const std::vector<WatchCursor>& cursors) {
  std::string out;
  for (const WatchCursor& c : cursors) {
    if (!out.empty()) out += ",";
    out.append(std::to_string(c.range)).append(":").append(std::to_string(c.next - 1));
  }
  return out;
}

// `from=range:index,...` of a ranges-mode watch; nullopt when malformed.
std::optional<std::map<std::uint64_t, std::uint64_t>> ParsePosition(std::string_view s) {
  std::map<std::uint64_t, std::uint64_t> out;
  while (!s.empty()) {
    const std::size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    const std::size_t colon = item.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto range = ParseU64(item.substr(0, colon));
    auto index = ParseU64(item.substr(colon + 1));
    if (!range || !index || *index == 0 || !out.emplace(*range, *index).second) return std::nullopt;
  }
  return out;
}

}  // namespace

struct KvServer::Impl::Watcher : std::enable_shared_from_this<Watcher> {
  Watcher(Impl* impl, boost::asio::any_io_executor io, ResponseStream out, std::string prefix,
          std::vector<WatchCursor> cursors, bool base64)
      : impl(impl),
        io(io),
        out(std::move(out)),
        prefix(std::move(prefix)),
        cursors(std::move(cursors)),
        base64(base64),
        timer(io) {}

  // Any thread: schedules one pump on the I/O thread (coalesced).
  void Wake() {
    if (pump_posted.exchange(true)) return;
    boost::asio::post(io, [self = shared_from_this()] {
      self->pump_posted = false;
      self->Pump();
    });
  }

  // I/O thread. Ranges mode: a range a split made since the watch started, overlapping
  // the prefix, gets a cursor from its beginning (its origin: every event of its keys
  // since the split is in its history), once this node hosts it.
  void FollowSplits() {
    const std::uint64_t version = impl->ranges->RoutesVersion();
    if (version == routes_seen) return;
    bool missing = false;
    for (const RangeDescriptor& d : impl->ranges->Directory()) {
      const std::string end = PrefixEnd(prefix);
      if (!(end.empty() || d.start < end) || !(d.end.empty() || d.end > prefix)) continue;
      if (std::any_of(cursors.begin(), cursors.end(),
                      [&](const WatchCursor& c) { return c.range == d.id; }))
        continue;
      RocksStateMachine* sm = impl->ranges->StateMachine(d.id);
      if (sm == nullptr) {
        missing = true;  // not hosted here yet: looked for again at the next pump
        continue;
      }
      cursors.push_back(WatchCursor{d.id, sm, sm->OriginIndex() + 1});
    }
    if (!missing) routes_seen = version;
  }

  // I/O thread.
  void Pump() {
    if (done) return;
    if (out.Closed()) return Finish();
    if (out.Backlog() > kMaxBacklog) return;  // the tick tries again
    if (cursors[0].range != 0) FollowSplits();
    bool more = false;
    for (WatchCursor& c : cursors) {
      auto page = c.sm->History(c.next, prefix, kPageEvents, kPageScan, kPageBytes);
      if (!page.ok()) {
        out.Write("{\"type\": \"error\", \"code\": 500, \"error\": " +
                  JsonString(page.status().ToString()) + "}\n");
        return Finish();
      }
      if (page->compacted) {  // a snapshot installed here moved the history past us
        out.Write(CompactedLine(c.next, page->start, c.range));
        return Finish();
      }
      std::string lines;
      for (const Event& e : page->events) lines += EventLine(e, base64, c.range);
      if (!lines.empty()) {
        if (!out.Write(std::move(lines))) return Finish();
        last_write = std::chrono::steady_clock::now();
      }
      c.next = page->next;
      more |= c.next <= page->applied;  // more is already there
    }
    if (more) Wake();
  }

  // The progress line: every event up to the position has been sent (or did not match).
  std::string ProgressLine() const {
    if (cursors.size() == 1 && cursors[0].range == 0)
      return "{\"type\": \"progress\", \"index\": " + std::to_string(cursors[0].next - 1) + "}\n";
    return "{\"type\": \"progress\", \"position\": \"" + Position(cursors) + "\"}\n";
  }

  void Tick() {
    timer.expires_after(kTick);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->done) return;
      if (self->out.Closed()) return self->Finish();
      if (std::chrono::steady_clock::now() - self->last_write >= kProgressEvery &&
          self->out.Backlog() == 0) {
        if (!self->out.Write(self->ProgressLine())) return self->Finish();
        self->last_write = std::chrono::steady_clock::now();
      }
      self->Pump();
      self->Tick();
    });
  }

  // I/O thread (or shutdown: EndWatches).
  void Finish() {
    if (done.exchange(true)) return;
    out.End();
    boost::asio::post(io, [self = shared_from_this()] { self->timer.cancel(); });
    impl->RemoveWatcher(this);
  }

  Impl* impl;
  boost::asio::any_io_executor io;
  ResponseStream out;
  const std::string prefix;
  // In key order of their ranges at the start, then those splits made; I/O thread.
  std::vector<WatchCursor> cursors;
  std::uint64_t routes_seen = 0;  // RangesMode::RoutesVersion when FollowSplits last looked
  const bool base64;
  boost::asio::steady_timer timer;
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
  std::atomic<bool> pump_posted{false};
  std::atomic<bool> done{false};
};

void KvServer::Impl::HandleWatch(const CallPtr& call) {
  const Target& t = call->target;
  if (call->req.method() != http::verb::get)
    return Answer(call, ErrorAnswer(405, "only GET /watch"));
  const bool base64 = t.Param("encoding") == "base64";
  if (t.Has("encoding") && !base64 && t.Param("encoding") != "text")
    return Answer(call, ErrorAnswer(400, "encoding must be text or base64"));
  std::string prefix = t.Param("prefix");
  if (base64) {
    auto raw = Base64Decode(prefix);
    if (!raw) return Answer(call, ErrorAnswer(400, "prefix is not base64 (encoding=base64)"));
    prefix = std::move(*raw);
  }
  // The cursors: the one group's, or one per range the prefix overlaps, each from now on
  // (the next index to apply) unless from_index (one group) or from (ranges) says where.
  std::vector<WatchCursor> cursors;
  if (!ranges) {
    cursors.push_back(WatchCursor{0, sm.get(), sm->AppliedIndex() + 1});
    if (t.Has("from"))
      return Answer(call, ErrorAnswer(400, "from is for ranges mode: use from_index"));
    if (t.Has("from_index")) {
      auto n = ParseU64(t.Param("from_index"));
      if (!n || *n == 0) return Answer(call, ErrorAnswer(400, "from_index must be a number >= 1"));
      cursors[0].next = *n;
    }
  } else {
    if (t.Has("from_index"))
      return Answer(call, ErrorAnswer(400,
                                      "in ranges mode a watch's position is one index per "
                                      "range: use from=range:index,..."));
    std::map<std::uint64_t, std::uint64_t> from;
    if (t.Has("from")) {
      auto p = ParsePosition(t.Param("from"));
      if (!p) return Answer(call, ErrorAnswer(400, "from must be range:index,... (index >= 1)"));
      from = std::move(*p);
    }
    HttpResponse refusal;
    auto shards = ShardsOverlapping(prefix, "", &refusal);
    if (!shards) return Answer(call, std::move(refusal));
    // With a position, a range it does not name (one a split made after it was taken)
    // is followed from its beginning; without one, every range from now on.
    for (const Shard& s : *shards) {
      auto it = from.find(s.range);
      cursors.push_back(WatchCursor{s.range, s.sm,
                                    it != from.end() ? it->second
                                    : from.empty()   ? s.sm->AppliedIndex() + 1
                                                     : s.sm->OriginIndex() + 1});
    }
  }
  std::vector<std::string> applied;  // per cursor, for the head
  for (const WatchCursor& c : cursors) {
    auto probe = c.sm->History(c.next, prefix, 0, 0, 0);
    if (!probe.ok()) return Answer(call, StatusAnswer(probe.status()));
    if (probe->compacted) {
      nlohmann::json j;
      j["error"] = (c.range != 0 ? "range " + std::to_string(c.range) + ": from index "
                                 : std::string("from_index ")) +
                   std::to_string(c.next) +
                   " is older than the retained history (-watch-history): read the current "
                   "values, then watch from oldest_index or later";
      if (c.range != 0) j["range"] = c.range;
      j["oldest_index"] = probe->start;
      return Answer(call, JsonAnswer(410, j.dump()));
    }
    applied.push_back(c.range == 0
                          ? std::to_string(probe->applied)
                          : std::to_string(c.range) + ":" + std::to_string(probe->applied));
  }
  if (shutting_down) return Answer(call, ErrorAnswer(503, "node is shutting down"));
  HttpResponse head{http::status::ok, 11};
  head.set(http::field::content_type, "application/x-ndjson");
  head.set(http::field::cache_control, "no-store");
  std::string position;
  for (const std::string& a : applied) position += (position.empty() ? "" : ",") + a;
  // The applied index (one group) or position (ranges) the watch started at.
  head.set(ranges ? "X-Kv-Position" : "X-Raft-Index", position);
  counters.Count(
      call->route, call->req.method_string(), 200,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - call->start).count());
  const std::string first = Position(cursors);
  auto w = std::make_shared<Watcher>(this, call->info.io, call->respond.Stream(std::move(head)),
                                     std::move(prefix), std::move(cursors), base64);
  {
    std::lock_guard<std::mutex> l(watch_mu);
    watchers.push_back(w);
  }
  Log(raft::LogLevel::kDebug, "watch started", {{"from", first}, {"peer", call->info.peer}});
  boost::asio::post(call->info.io, [w] {
    w->Pump();
    w->Tick();
  });
}

void KvServer::Impl::OnApplied(raft::Index) {
  std::lock_guard<std::mutex> l(watch_mu);
  for (const auto& w : watchers) w->Wake();
}

void KvServer::Impl::RemoveWatcher(Watcher* w) {
  std::lock_guard<std::mutex> l(watch_mu);
  std::erase_if(watchers, [w](const std::shared_ptr<Watcher>& p) { return p.get() == w; });
}

void KvServer::Impl::EndWatches() {
  std::vector<std::shared_ptr<Watcher>> all;
  {
    std::lock_guard<std::mutex> l(watch_mu);
    all = watchers;
  }
  for (const auto& w : all) w->Finish();
}

std::size_t KvServer::Impl::WatchersOpen() const {
  std::lock_guard<std::mutex> l(watch_mu);
  return watchers.size();
}

}  // namespace kv
