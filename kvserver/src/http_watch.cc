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
// Not chosen: a per-watcher in-memory queue filled by the apply thread (memory grows
// with a slow reader and a restart loses it); the history in RocksDB is the queue.
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

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

std::string EventLine(const Event& e, bool base64) {
  // A key or value that is not UTF-8 goes as base64 in any mode, flagged on the event.
  const bool b64 = base64 || !ValidUtf8(e.key) || !ValidUtf8(e.value);
  std::string line = "{\"index\": " + std::to_string(e.index) + ", \"type\": \"";
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

std::string CompactedLine(std::uint64_t from, std::uint64_t oldest) {
  return "{\"type\": \"error\", \"code\": 410, \"error\": \"index " + std::to_string(from) +
         " is older than the retained history (-watch-history): watch again from " +
         std::to_string(oldest) + " or later, after reading the current values\", " +
         "\"oldest_index\": " + std::to_string(oldest) + "}\n";
}

}  // namespace

struct KvServer::Impl::Watcher : std::enable_shared_from_this<Watcher> {
  Watcher(Impl* impl, boost::asio::any_io_executor io, ResponseStream out, std::string prefix,
          std::uint64_t next, bool base64)
      : impl(impl),
        io(io),
        out(std::move(out)),
        prefix(std::move(prefix)),
        next(next),
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

  // I/O thread.
  void Pump() {
    if (done) return;
    if (out.Closed()) return Finish();
    if (out.Backlog() > kMaxBacklog) return;  // the tick tries again
    auto page = impl->sm->History(next, prefix, kPageEvents, kPageScan, kPageBytes);
    if (!page.ok()) {
      out.Write("{\"type\": \"error\", \"code\": 500, \"error\": " +
                JsonString(page.status().ToString()) + "}\n");
      return Finish();
    }
    if (page->compacted) {  // a snapshot installed here moved the history past us
      out.Write(CompactedLine(next, page->start));
      return Finish();
    }
    std::string lines;
    for (const Event& e : page->events) lines += EventLine(e, base64);
    if (!lines.empty()) {
      if (!out.Write(std::move(lines))) return Finish();
      last_write = std::chrono::steady_clock::now();
    }
    next = page->next;
    if (next <= page->applied) Wake();  // more is already there
  }

  void Tick() {
    timer.expires_after(kTick);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->done) return;
      if (self->out.Closed()) return self->Finish();
      if (std::chrono::steady_clock::now() - self->last_write >= kProgressEvery &&
          self->out.Backlog() == 0) {
        // Every event before `next` has been sent (or did not match).
        if (!self->out.Write(
                "{\"type\": \"progress\", \"index\": " + std::to_string(self->next - 1) + "}\n"))
          return self->Finish();
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
  std::uint64_t next;  // the first index not yet looked at; I/O thread
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
  std::uint64_t from = sm->AppliedIndex() + 1;  // default: changes from now on
  if (t.Has("from_index")) {
    auto n = ParseU64(t.Param("from_index"));
    if (!n || *n == 0) return Answer(call, ErrorAnswer(400, "from_index must be a number >= 1"));
    from = *n;
  }
  auto probe = sm->History(from, prefix, 0, 0, 0);
  if (!probe.ok()) return Answer(call, StatusAnswer(probe.status()));
  if (probe->compacted) {
    nlohmann::json j;
    j["error"] = "from_index " + std::to_string(from) +
                 " is older than the retained history (-watch-history): read the current "
                 "values, then watch from oldest_index or later";
    j["oldest_index"] = probe->start;
    return Answer(call, JsonAnswer(410, j.dump()));
  }
  if (shutting_down) return Answer(call, ErrorAnswer(503, "node is shutting down"));
  HttpResponse head{http::status::ok, 11};
  head.set(http::field::content_type, "application/x-ndjson");
  head.set(http::field::cache_control, "no-store");
  head.set("X-Raft-Index", std::to_string(probe->applied));
  counters.Count(
      call->route, call->req.method_string(), 200,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - call->start).count());
  auto w = std::make_shared<Watcher>(this, call->info.io, call->respond.Stream(std::move(head)),
                                     std::move(prefix), from, base64);
  {
    std::lock_guard<std::mutex> l(watch_mu);
    watchers.push_back(w);
  }
  Log(raft::LogLevel::kDebug, "watch started",
      {{"from_index", std::to_string(from)}, {"peer", call->info.peer}});
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
