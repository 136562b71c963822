// kvctl: command-line client for kvserver. Works against any node; when a node is down
// it tries the others it knows (from -addr and from the cluster's /status). A write is
// never re-sent to another node once it may have been sent (see Send): when its answer
// is lost, kvctl reports "outcome unknown" and exits with 1.
//
// HTTPS: an address https://h:p, or a bare h:p when -cacert or -cert is given (nodes
// learned from /status use the scheme of the node that listed them: a cluster serves one
// scheme). -cacert: the CA the nodes' certificates must chain to (default: the system's);
// -cert/-key: the client certificate, for nodes with -client-cert-auth.
//
// Credentials: a bearer token (nodes with -auth-file) from -token-file FILE or the
// environment variable KVCTL_TOKEN, never from argv (other local users can read it there:
// security review F-9); or the client certificate.
//
//   kvctl [-addr [https://]h:p[,...]] [-cacert F] [-cert F -key F] [-o text|json]
//         [-token-file F] [-timeout-ms N] COMMAND ARGS
// The commands and their usage are in kCommands (`kvctl help`, `kvctl CMD -h`). The
// default -addr is $KVCTL_ADDR (same syntax), else 127.0.0.1:3000.
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "auth.h"
#include "build_info.h"
#include "flags.h"
#include "http_client.h"
#include "http_util.h"
#include "raft/node.h"
#include "ranges_backup.h"
#include "utf8.h"

namespace {

struct Options {
  std::vector<std::string> addrs = {"127.0.0.1:3000"};
  kv::HttpClientTls tls;  // -cacert, -cert, -key
  bool json = false;
  std::string token;
  int timeout_ms = 10000;
  bool stale = false;
  int limit = 100;
  bool all = false;        // list: every page
  std::uint64_t ttl = 0;   // put, create, cas: seconds to live (0: none)
  std::uint64_t from = 0;  // watch: first index (0: from now)
};

// One command: its arguments, a one-line summary and what more there is to know. Both
// `kvctl help CMD` and `kvctl CMD -h` print it.
struct CommandDoc {
  const char* name;
  const char* args;  // synopsis after the name
  std::size_t min_args, max_args;
  const char* summary;
  const char* detail;
};

constexpr CommandDoc kCommands[] = {
    {"put", "KEY VALUE [-ttl S]", 2, 2, "write VALUE under KEY",
     "Prints OK (-o json: the answer, with the log index of the write). -ttl S: the key\n"
     "is removed about S seconds later, on every node, unless written again (put, create\n"
     "and cas take -ttl)."},
    {"get", "KEY [-stale]", 1, 1, "read KEY",
     "Linearizable (through the leader); -stale reads this node's copy, possibly old.\n"
     "Exit 1 with '404' when the key does not exist. -o json: {\"key\", \"value\"}, both\n"
     "base64 with \"encoding\": \"base64\" when either is not valid UTF-8."},
    {"del", "KEY", 1, 1, "delete KEY", "Prints 'deleted' or 'not found'."},
    {"cas", "KEY OLD NEW", 3, 3, "compare-and-set: write NEW only if KEY holds OLD",
     "Exit 1 with '412' and the current value when it does not."},
    {"create", "KEY VALUE", 2, 2, "write VALUE only if KEY does not exist",
     "Exit 1 with '412' when it exists."},
    {"list", "[PREFIX] [-limit N] [-all] [-stale]", 0, 1, "list keys and values under PREFIX",
     "In byte order, one 'KEY<tab>VALUE' line each (raw bytes). One page of at most -limit\n"
     "items (default 100, at most 1000); -all pages through everything (each page is its\n"
     "own linearizable read, so the whole is not one point in time). -o json: {\"items\":\n"
     "[{\"key\", \"value\"}...], \"more\": bool}, an item's key and value base64 with\n"
     "\"encoding\": \"base64\" when either is not valid UTF-8."},
    {"status", "", 0, 0, "this node's role, term, leader, indexes and the members",
     "The node answering is the first of -addr that answers."},
    {"members", "", 0, 0, "the members: id, role, Raft and HTTP addresses", ""},
    {"ranges", "", 0, 0, "the key ranges of a cluster in ranges mode (-shards)",
     "One line per range, in key order: id, [start, end), leader, term, commit and applied\n"
     "index on the node answering, approximate size. Exit 1 when the node is not in\n"
     "ranges mode."},
    {"endpoint", "health", 1, 1, "ask every member (found from any one) whether it is ready",
     "GET /readyz on each member's HTTP address: healthy when it is a member with a known\n"
     "leader, caught up, its storage sound. Exit 1 when any member is not healthy."},
    {"join", "ID RAFT_ADDR HTTP_ADDR", 3, 3, "add a node (as a learner, promoted once caught up)",
     "Needs an admin token (-token-file or KVCTL_TOKEN) on a cluster with -auth-file.\n"
     "A kvserver started with -join does this itself."},
    {"leave", "ID", 1, 1, "remove a member", "Needs an admin token on a cluster with -auth-file."},
    {"transfer-leader", "ID", 1, 1, "hand leadership to member ID",
     "Needs an admin token on a cluster with -auth-file."},
    {"snapshot", "save FILE [-stale]", 2, 2, "save a backup of the cluster's state to FILE",
     "A consistent copy at one applied index (every write acknowledged before the command\n"
     "started; -stale: whatever the node answering has, for a cluster without a majority),\n"
     "with its index, term and members, checked end to end. Restore it with\n"
     "'kvserver -restore FILE' on an empty data directory. Needs an admin token on a\n"
     "cluster with -auth-file."},
    {"watch", "[PREFIX] [-from N]", 0, 1, "print every change to keys under PREFIX as it happens",
     "Streams GET /watch: one line per change, '<index> put <key> <value>', '<index> delete\n"
     "<key>' or '<index> expire <key>' (-o json: the server's JSON lines), in log order, from\n"
     "index N (default: from now). When the node goes away it resumes on the next of\n"
     "-addr from the last index seen + 1, so nothing is missed or printed twice. Exit 1\n"
     "when N is older than the history the nodes keep (410). Runs until interrupted. In\n"
     "ranges mode (-shards) an index is its range's: lines start '<range>:<index>', and a\n"
     "resume is from each range's last index seen + 1 (-from is for one group only)."},
    {"help", "[COMMAND]", 0, 1, "this text, or one command's", ""},
};

const CommandDoc* FindCommand(const std::string& name) {
  for (const auto& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

constexpr const char* kGlobalFlags =
    "flags (before or after the command):\n"
    "  -addr [https://]H:P[,...]  nodes to try, in order (default: $KVCTL_ADDR, else\n"
    "                             127.0.0.1:3000); the others are learned from /status\n"
    "  -cacert FILE               PEM CA the nodes' HTTPS certificates must chain to\n"
    "                             (default: the system's); with it, H:P means HTTPS\n"
    "  -cert FILE -key FILE       PEM client certificate (nodes with -client-cert-auth)\n"
    "  -o text|json               output format (default text)\n"
    "  -token-file FILE           bearer token for nodes with -auth-file (or $KVCTL_TOKEN;\n"
    "                             never on the command line)\n"
    "  -timeout-ms N              wait for an answer (default 10000)\n"
    "  -limit N, -all, -stale     list: page size, every page; get/list: read locally\n"
    "  -ttl S                     put/create/cas: the key expires after S seconds\n"
    "  -from N                    watch: start at log index N\n"
    "  -version                   print kvctl's version, git commit and build type\n"
    "  -h, -help                  this text; after a command, that command's usage\n";

void PrintUsage(FILE* out) {
  std::fputs("usage: kvctl [flags] COMMAND [ARGS]\n\ncommands:\n", out);
  for (const auto& c : kCommands) {
    std::string synopsis = std::string(c.name) + " " + c.args;
    std::fprintf(out, "  %-36s %s\n", synopsis.c_str(), c.summary);
  }
  std::fputs("\n", out);
  std::fputs(kGlobalFlags, out);
  std::fputs("\n'kvctl help COMMAND' or 'kvctl COMMAND -h' shows one command.\n", out);
}

void PrintCommandUsage(const CommandDoc& c, FILE* out) {
  std::fprintf(out, "usage: kvctl [flags] %s %s\n\n%s.\n", c.name, c.args, c.summary);
  if (*c.detail != '\0') std::fprintf(out, "%s\n", c.detail);
  std::fputs("\n", out);
  std::fputs(kGlobalFlags, out);
}

// Bad command line: the message, then where to look; exit code 2.
int UsageError(const std::string& message, const CommandDoc* c = nullptr) {
  std::fprintf(stderr, "kvctl: %s\n", message.c_str());
  if (c != nullptr) {
    std::fprintf(stderr, "usage: kvctl [flags] %s %s\nRun 'kvctl %s -h' for more.\n", c->name,
                 c->args, c->name);
  } else {
    std::fputs("Run 'kvctl help' for the commands and flags.\n", stderr);
  }
  return 2;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto p = s.find(sep, start);
    out.push_back(s.substr(start, p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}

// Whether `method` changes state: a write is sent to at most one node once it may have
// left (see Send).
bool IsWrite(const std::string& method) { return method != "GET" && method != "HEAD"; }

// Whether a failed attempt sent nothing: the TCP connection or the TLS session was never
// established. Every other transport error (Write, Read, ...) may have delivered the
// request.
bool NothingSent(httplib::Error e) {
  return e == httplib::Error::Connection || e == httplib::Error::ConnectionTimeout ||
         e == httplib::Error::SSLConnection || e == httplib::Error::SSLServerVerification;
}

// The answer of Send: `result` from the last node tried (`used`), and whether a write's
// outcome is unknown (it may have been sent, and no answer came back).
struct Sent {
  httplib::Result result;
  bool outcome_unknown = false;
};

// Appends to `addrs` the HTTP address of every member `cli`'s node lists in its /status,
// in that node's scheme (a cluster serves one scheme); nothing when it does not answer.
void LearnMembers(httplib::Client& cli, const httplib::Headers& h, bool https,
                  std::vector<std::string>* addrs) {
  auto st = cli.Get("/status", h);
  if (!st || st->status != 200) return;
  auto j = nlohmann::json::parse(st->body, nullptr, false);
  if (j.is_discarded() || !j.contains("members") || !j["members"].is_array()) return;
  for (const auto& m : j["members"]) {
    if (!m.is_object() || !m.contains("http_addr") || !m["http_addr"].is_string()) continue;
    std::string a = https ? "https://" : "http://";
    addrs->push_back(a.append(m["http_addr"].get<std::string>()));
  }
}

// Sends the request to the known nodes in turn (learning the others from /status) until
// one answers. A read moves on after any transport error or a 503. A write moves on only
// when nothing was sent (the connection was refused or timed out) or the node answered
// 503 (it did not take the write); after any other error the write may have been applied,
// so it is never re-sent elsewhere: the outcome is unknown.
Sent Send(const Options& o, const std::string& method, const std::string& path,
          const std::string& body, std::string* used) {
  std::vector<std::string> addrs = o.addrs;
  std::set<std::string> tried;
  std::optional<httplib::Result> last;
  for (std::size_t i = 0; i < addrs.size() && i < 16; ++i) {
    const bool https_default = !o.tls.ca_file.empty() || !o.tls.cert_file.empty();
    auto addr = kv::ParseHttpAddr(addrs[i], https_default, "-addr");
    if (!addr.ok() || !tried.insert(addr->ToString()).second) continue;
    auto client = kv::MakeHttpClient(*addr, o.tls);
    if (!client.ok()) {
      std::fprintf(stderr, "kvctl: %s\n", client.status().message().c_str());
      std::exit(2);
    }
    httplib::Client& cli = **client;
    cli.set_connection_timeout(std::chrono::seconds(2));
    cli.set_read_timeout(std::chrono::milliseconds(o.timeout_ms));
    cli.set_write_timeout(std::chrono::milliseconds(o.timeout_ms));
    httplib::Headers h;
    if (!o.token.empty()) h.emplace("Authorization", std::string("Bearer ").append(o.token));
    httplib::Request req;
    req.method = method;
    req.path = path;
    req.headers = h;
    req.body = body;
    if (!body.empty() && method == "POST") req.set_header("Content-Type", "application/json");
    last.emplace(cli.send(req));
    *used = addrs[i];
    if (*last && (*last)->status != 503) return {std::move(*last)};
    if (!*last && IsWrite(method) && !NothingSent(last->error())) {
      return {std::move(*last), /*outcome_unknown=*/true};
    }
    LearnMembers(cli, h, addr->https, &addrs);  // the other members, if it answers
  }
  if (last) return {std::move(*last)};
  return {httplib::Result(nullptr, httplib::Error::Connection)};
}

int Report(const Options& o, const Sent& sent, const std::string& addr) {
  const httplib::Result& r = sent.result;
  if (!r && sent.outcome_unknown) {
    std::fprintf(stderr,
                 "kvctl: outcome unknown: the request was sent to %s and no answer came back "
                 "(%s); it may or may not have been applied, and was not re-sent\n",
                 addr.c_str(), httplib::to_string(r.error()).c_str());
    return 1;
  }
  if (!r) {
    std::fprintf(stderr, "kvctl: no node reachable (last tried %s: %s)\n", addr.c_str(),
                 httplib::to_string(r.error()).c_str());
    return 1;
  }
  if (r->status >= 400) {
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    std::string msg =
        !j.is_discarded() && j.contains("error") ? j["error"].get<std::string>() : r->body;
    if (o.json) {
      std::cout << r->body << "\n";
    } else {
      std::fprintf(stderr, "kvctl: %d %s\n", r->status, msg.c_str());
    }
    return 1;
  }
  return 0;
}

// One key and value as JSON, binary safe: as text when both are valid UTF-8, else both
// base64 with "encoding": "base64".
std::string PairJson(std::string_view key, std::string_view value) {
  const bool text = kv::ValidUtf8(key) && kv::ValidUtf8(value);
  auto field = [text](std::string_view v) {
    return text ? kv::JsonString(v) : kv::JsonString(kv::Base64(v));
  };
  return std::string("{\"key\": ")
      .append(field(key))
      .append(", \"value\": ")
      .append(field(value))
      .append(text ? "}" : ", \"encoding\": \"base64\"}");
}

// list: pages are asked for in base64 (binary safe) and decoded here; each page is
// printed as it comes, so -all holds one page in memory.
int List(const Options& o, const std::string& prefix) {
  std::string after;
  bool started = false, more = false;
  std::size_t printed = 0;
  if (o.json) std::cout << "{\"items\": [";
  for (;;) {
    std::string path = "/kv?encoding=base64&prefix=" + kv::PercentEncode(prefix) +
                       "&limit=" + std::to_string(o.limit);
    if (started) path.append("&start_after=").append(kv::PercentEncode(after));
    if (o.stale) path.append("&consistency=stale");
    std::string used;
    auto sent = Send(o, "GET", path, "", &used);
    Options plain = o;
    plain.json = plain.json && !started;  // the error body would land inside our JSON
    if (int rc = Report(plain, sent, used)) return rc;
    started = true;
    auto j = nlohmann::json::parse(sent.result->body, nullptr, false);
    auto fail = [&] {
      std::fprintf(stderr, "kvctl: %s answered a listing kvctl cannot read\n", used.c_str());
      return 1;
    };
    if (j.is_discarded() || !j.contains("items") || !j["items"].is_array()) return fail();
    for (const auto& it : j["items"]) {
      if (!it.contains("key") || !it["key"].is_string() || !it.contains("value") ||
          !it["value"].is_string())
        return fail();
      auto k = kv::Base64Decode(it["key"].get<std::string>());
      auto v = kv::Base64Decode(it["value"].get<std::string>());
      if (!k || !v) return fail();
      if (o.json) {
        std::cout << (printed > 0 ? ", " : "") << PairJson(*k, *v);
      } else {
        std::cout.write(k->data(), static_cast<std::streamsize>(k->size()));
        std::cout.put('\t');
        std::cout.write(v->data(), static_cast<std::streamsize>(v->size()));
        std::cout.put('\n');
      }
      ++printed;
    }
    more = j.contains("next") && j["next"].is_string();
    if (!more || !o.all) break;
    auto next = kv::Base64Decode(j["next"].get<std::string>());
    if (!next) return fail();
    after = std::move(*next);
  }
  if (o.json) std::cout << "], \"more\": " << (more ? "true" : "false") << "}\n";
  std::cout.flush();
  return 0;
}

std::string FormatMs(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fms", ms);
  return buf;
}

// snapshot save FILE: POST /backup on the first node that answers, then its pieces from
// that node into FILE.part (one piece in memory at a time; a piece whose answer is lost is
// asked for again), checked end to end (raft::VerifyBackupFile; kv::VerifyRangesBackup for
// a ranges cluster's), fsynced and renamed to FILE; the node's copy is deleted.
int SnapshotSave(const Options& o, const std::string& file) {
  std::string used;
  // The node answers once the whole backup is written: allow it minutes, not seconds.
  Options slow = o;
  slow.timeout_ms = std::max(o.timeout_ms, 600000);
  auto sent = Send(slow, "POST", o.stale ? "/backup?consistency=stale" : "/backup", "{}", &used);
  if (int rc = Report(o, sent, used)) return rc;
  auto made = nlohmann::json::parse(sent.result->body, nullptr, false);
  if (made.is_discarded() || !made.contains("id") || !made.contains("bytes")) {
    std::fprintf(stderr, "kvctl: snapshot save: unexpected answer from %s: %s\n", used.c_str(),
                 sent.result->body.c_str());
    return 1;
  }
  const std::string id = made.value("id", "");
  const std::uint64_t total = made.value("bytes", std::uint64_t{0});
  Options one = o;
  one.addrs = {used};  // the backup lives on that node only
  const std::string part = file + ".part";
  std::FILE* out = std::fopen(part.c_str(), "wb");
  if (out == nullptr) {
    std::fprintf(stderr, "kvctl: snapshot save: cannot create %s: %s\n", part.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::uint64_t have = 0;
  int failures = 0;
  while (have < total) {
    auto piece = Send(one, "GET", "/backup/" + id + "?offset=" + std::to_string(have), "", &used);
    if (!piece.result || piece.result->status != 200 || piece.result->body.empty()) {
      if (++failures < 5) continue;  // a read: asking again is harmless
      std::fclose(out);
      std::remove(part.c_str());
      if (int rc = Report(o, piece, used)) return rc;
      std::fprintf(stderr, "kvctl: snapshot save: the backup ended at byte %llu of %llu\n",
                   static_cast<unsigned long long>(have), static_cast<unsigned long long>(total));
      return 1;
    }
    failures = 0;
    const std::string& b = piece.result->body;
    if (std::fwrite(b.data(), 1, b.size(), out) != b.size()) {
      std::fprintf(stderr, "kvctl: snapshot save: writing %s: %s\n", part.c_str(),
                   std::strerror(errno));
      std::fclose(out);
      std::remove(part.c_str());
      return 1;
    }
    have += b.size();
  }
  const bool flushed = std::fflush(out) == 0 && ::fsync(::fileno(out)) == 0;
  std::fclose(out);
  // A ranges-mode cluster's backup holds every range (ranges_backup.h).
  const bool of_ranges = kv::IsRangesBackup(part);
  raft::Result<raft::BackupInfo> info = raft::BackupInfo{};
  raft::Result<std::vector<kv::RangesBackupPart>> parts = std::vector<kv::RangesBackupPart>{};
  if (of_ranges)
    parts = kv::VerifyRangesBackup(part);
  else
    info = raft::VerifyBackupFile(part);
  const raft::Status checked = !info.ok() ? info.status() : parts.status();
  if (!flushed || !checked.ok()) {
    std::fprintf(stderr, "kvctl: snapshot save: %s\n",
                 flushed ? checked.message().c_str() : "cannot sync the file");
    std::remove(part.c_str());
    return 1;
  }
  if (std::rename(part.c_str(), file.c_str()) != 0) {
    std::fprintf(stderr, "kvctl: snapshot save: cannot rename %s to %s: %s\n", part.c_str(),
                 file.c_str(), std::strerror(errno));
    return 1;
  }
  (void)Send(one, "DELETE", "/backup/" + id, "", &used);
  if (o.json) {
    nlohmann::json j = made;
    j["file"] = file;
    std::cout << j.dump() << "\n";
  } else if (of_ranges) {
    std::cout << "saved backup of " << parts->size() << " ranges (" << total << " bytes) to "
              << file << "\n";
  } else {
    std::string members;
    for (const auto& m : info->members) members.append(members.empty() ? "" : ",").append(m.name);
    std::cout << "saved backup at index " << info->meta.index << " (term " << info->meta.term
              << ", " << info->bytes << " bytes, members " << members << ") to " << file << "\n";
  }
  return 0;
}

// watch: GET /watch on each known node in turn: -addr, and the members the first node
// that answers /status lists (so the watch goes on when every -addr node is gone). Every
// line moves the cursor (an event to its index + 1, a progress line past its index);
// after a lost connection the next address is asked from the cursor, so the output has
// no gap and no repeat.
int Watch(const Options& o, const std::string& prefix) {
  std::uint64_t next = o.from;  // 0 until the first answer says where "now" is
  // Ranges mode (docs/http-api.md): the next index per range, from the stream's
  // X-Kv-Position, progress positions and events; resumed with from=range:index,...
  std::map<std::uint64_t, std::uint64_t> range_next;
  auto merge_position = [&range_next](const std::string& position) {
    std::size_t at = 0;
    while (at < position.size()) {
      std::size_t end = position.find(',', at);
      if (end == std::string::npos) end = position.size();
      const std::string item = position.substr(at, end - at);
      const std::size_t colon = item.find(':');
      if (colon != std::string::npos) {
        const std::uint64_t r = std::strtoull(item.substr(0, colon).c_str(), nullptr, 10);
        const std::uint64_t i = std::strtoull(item.substr(colon + 1).c_str(), nullptr, 10);
        range_next[r] = std::max(range_next[r], i + 1);
      }
      at = end + 1;
    }
  };
  int failures = 0;
  std::vector<std::string> addrs = o.addrs;
  bool learned = false;
  for (std::size_t attempt = 0;; ++attempt) {
    const bool https_default = !o.tls.ca_file.empty() || !o.tls.cert_file.empty();
    auto addr = kv::ParseHttpAddr(addrs[attempt % addrs.size()], https_default, "-addr");
    if (!addr.ok()) return UsageError(addr.status().message());
    auto client = kv::MakeHttpClient(*addr, o.tls);
    if (!client.ok()) {
      std::fprintf(stderr, "kvctl: %s\n", client.status().message().c_str());
      return 2;
    }
    httplib::Client& cli = **client;
    cli.set_connection_timeout(std::chrono::seconds(2));
    // The server sends a progress line every few seconds: silence this long is a dead node.
    cli.set_read_timeout(std::chrono::seconds(20));
    httplib::Headers h;
    if (!o.token.empty()) h.emplace("Authorization", std::string("Bearer ").append(o.token));
    if (!learned) {
      const std::size_t known = addrs.size();
      LearnMembers(cli, h, addr->https, &addrs);
      learned = addrs.size() > known;
      if (learned) {
        // Each node once, -addr first: a member also given as -addr is not asked twice as
        // often.
        std::vector<std::string> unique;
        std::set<std::string> seen;
        for (const auto& a : addrs) {
          auto p = kv::ParseHttpAddr(a, https_default, "-addr");
          if (p.ok() && seen.insert(p->ToString()).second) unique.push_back(a);
        }
        addrs = std::move(unique);
      }
    }
    std::string path = "/watch?prefix=" + kv::PercentEncode(prefix);
    if (!range_next.empty()) {
      path += "&from=";
      for (const auto& [r, i] : range_next) {
        if (path.back() != '=') path += ",";
        path.append(std::to_string(r)).append(":").append(std::to_string(i));
      }
    } else if (next != 0) {
      path += "&from_index=" + std::to_string(next);
    }
    int status = 0;
    std::string pending, error_body;
    bool fatal = false;
    auto on_head = [&](const httplib::Response& r) {
      status = r.status;
      if (status == 200 && next == 0 && r.has_header("X-Raft-Index"))
        next = std::strtoull(r.get_header_value("X-Raft-Index").c_str(), nullptr, 10) + 1;
      if (status == 200 && range_next.empty() && r.has_header("X-Kv-Position"))
        merge_position(r.get_header_value("X-Kv-Position"));
      return true;
    };
    auto on_data = [&](const char* data, std::size_t n) {
      if (status != 200) {
        error_body.append(data, n);
        return true;
      }
      failures = 0;
      pending.append(data, n);
      for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;
           pending.erase(0, nl + 1)) {
        const std::string line = pending.substr(0, nl);
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) continue;
        const std::string type = j.value("type", "");
        if (type == "progress") {
          next = std::max(next, j.value("index", std::uint64_t{0}) + 1);
          if (j.contains("position")) merge_position(j.value("position", ""));
          continue;
        }
        if (type == "error") {
          std::fprintf(stderr, "kvctl: watch: %s\n", j.value("error", line).c_str());
          fatal = j.value("code", 0) == 410;
          return false;
        }
        const std::uint64_t index = j.value("index", std::uint64_t{0});
        std::string where = std::to_string(index);
        if (j.contains("range")) {  // ranges mode: the index is the range's
          const std::uint64_t range = j.value("range", std::uint64_t{0});
          if (index < range_next[range]) continue;  // never printed twice
          range_next[range] = index + 1;
          where = std::to_string(range) + ":" + where;
        } else {
          if (index < next) continue;  // never printed twice
          next = index + 1;
        }
        if (o.json) {
          std::cout << line << "\n";
        } else {
          const bool b64 = j.value("encoding", "") == "base64";
          auto text = [b64](const std::string& v) {
            return b64 ? kv::Base64Decode(v).value_or(v) : v;
          };
          std::cout << where << " " << type << " " << text(j.value("key", ""));
          if (type == "put") std::cout << " " << text(j.value("value", ""));
          std::cout << "\n";
        }
        std::cout.flush();
      }
      return true;
    };
    auto r = cli.Get(path, h, on_head, on_data);
    if (fatal) return 1;
    if (status != 0 && status != 200 && status != 503) {
      auto j = nlohmann::json::parse(error_body, nullptr, false);
      std::fprintf(stderr, "kvctl: watch: %d %s\n", status,
                   !j.is_discarded() && j.contains("error") ? j["error"].get<std::string>().c_str()
                                                            : error_body.c_str());
      return 1;
    }
    if (++failures > 3 * static_cast<int>(addrs.size()) + 10) {
      std::fprintf(stderr, "kvctl: watch: no node answers (last: %s: %s)\n",
                   addr->ToString().c_str(),
                   r ? "stream ended" : httplib::to_string(r.error()).c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(failures > 1 ? 500 : 50));
  }
}

// endpoint health: the members from the first node that answers /status, then
// GET /readyz on each, in the scheme of that node.
int EndpointHealth(const Options& o) {
  std::string used;
  auto sent = Send(o, "GET", "/status", "", &used);
  if (int rc = Report(o, sent, used)) return rc;
  auto j = nlohmann::json::parse(sent.result->body, nullptr, false);
  if (j.is_discarded() || !j.contains("members") || !j["members"].is_array()) {
    std::fprintf(stderr, "kvctl: %s answered a /status kvctl cannot read\n", used.c_str());
    return 1;
  }
  const bool https_default = !o.tls.ca_file.empty() || !o.tls.cert_file.empty();
  auto via = kv::ParseHttpAddr(used, https_default, "-addr");
  const bool https = via.ok() && via->https;
  httplib::Headers h;
  if (!o.token.empty()) h.emplace("Authorization", std::string("Bearer ").append(o.token));
  nlohmann::json out = nlohmann::json::array();
  bool all_healthy = true;
  if (!o.json)
    std::printf("%-22s %-12s %-10s %-9s %s\n", "ENDPOINT", "ID", "HEALTH", "TOOK", "DETAIL");
  for (const auto& m : j["members"]) {
    const std::string id = m.value("id", ""), addr = m.value("http_addr", "");
    nlohmann::json r = {{"endpoint", addr}, {"id", id}, {"healthy", false}};
    std::string detail;
    auto parsed = kv::ParseHttpAddr(std::string(https ? "https://" : "http://").append(addr), https,
                                    "member address");
    auto client = parsed.ok() ? kv::MakeHttpClient(*parsed, o.tls)
                              : raft::Result<std::unique_ptr<httplib::Client>>(parsed.status());
    if (!client.ok()) {
      detail = client.status().message();
    } else {
      httplib::Client& cli = **client;
      cli.set_connection_timeout(std::chrono::seconds(2));
      cli.set_read_timeout(std::chrono::milliseconds(o.timeout_ms));
      const auto start = std::chrono::steady_clock::now();
      auto res = cli.Get("/readyz", h);
      const double took_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      if (!res) {
        detail = httplib::to_string(res.error());
      } else {
        r["took_ms"] = took_ms;
        auto body = nlohmann::json::parse(res->body, nullptr, false);
        const bool ready = res->status == 200 && !body.is_discarded() && body.value("ready", false);
        r["healthy"] = ready;
        if (ready) {
          detail =
              "leader " +
              (body["leader"].is_string() ? body["leader"].get<std::string>() : std::string("?")) +
              ", applied " + std::to_string(body.value("applied_index", 0ull));
        } else if (!body.is_discarded() && body.contains("error") && body["error"].is_string()) {
          detail = std::to_string(res->status) + " " + body["error"].get<std::string>();
        } else {
          detail = std::to_string(res->status);
        }
      }
    }
    r["detail"] = detail;
    const bool healthy = r["healthy"].get<bool>();
    all_healthy = all_healthy && healthy;
    if (!o.json) {
      std::string took =
          r.contains("took_ms") ? FormatMs(r["took_ms"].get<double>()) : std::string("-");
      std::printf("%-22s %-12s %-10s %-9s %s\n", addr.c_str(), id.c_str(),
                  healthy ? "healthy" : "UNHEALTHY", took.c_str(), detail.c_str());
    }
    out.push_back(std::move(r));
  }
  if (o.json)
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return all_healthy ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const char* env = std::getenv("KVCTL_ADDR"); env != nullptr && *env != '\0')
    o.addrs = Split(env, ',');
  std::vector<std::string> args;
  bool help = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string name = a.rfind("--", 0) == 0  ? a.substr(2)
                       : a.rfind("-", 0) == 0 ? a.substr(1)
                                              : "";
    name = name.substr(0, name.find('='));
    auto value = [&](std::string* out) {
      if (auto eq = a.find('='); eq != std::string::npos) {
        *out = a.substr(eq + 1);
        return true;
      }
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    auto missing = [&] {
      return UsageError(std::string("flag -").append(name).append(" needs a value"));
    };
    auto bad = [&](const std::string& v) {
      return UsageError(std::string("bad value '").append(v).append("' for flag -").append(name));
    };
    std::string v;
    if (name == "addr") {
      if (!value(&v)) return missing();
      o.addrs = Split(v, ',');
    } else if (name == "o") {
      if (!value(&v)) return missing();
      if (v != "json" && v != "text") return bad(v);
      o.json = v == "json";
    } else if (name == "cacert") {
      if (!value(&o.tls.ca_file)) return missing();
    } else if (name == "cert") {
      if (!value(&o.tls.cert_file)) return missing();
    } else if (name == "key") {
      if (!value(&o.tls.key_file)) return missing();
    } else if (name == "token") {
      return UsageError(
          "-token was removed: a token on the command line is visible to every local user "
          "(ps); use -token-file FILE or the environment variable KVCTL_TOKEN");
    } else if (name == "token-file") {
      if (!value(&v)) return missing();
      auto token = kv::ReadSecretFile(v, "-token-file");
      if (!token.ok()) {
        std::fprintf(stderr, "kvctl: %s\n", token.status().message().c_str());
        return 2;
      }
      o.token = std::move(token).value();
    } else if (name == "timeout-ms") {
      if (!value(&v)) return missing();
      o.timeout_ms = std::atoi(v.c_str());
      if (o.timeout_ms <= 0) return bad(v);
    } else if (name == "stale") {
      o.stale = true;
    } else if (name == "all") {
      o.all = true;
    } else if (name == "limit") {
      if (!value(&v)) return missing();
      o.limit = std::atoi(v.c_str());
      if (o.limit <= 0 || o.limit > 1000) return bad(v);
    } else if (name == "ttl" || name == "from") {
      if (!value(&v)) return missing();
      const auto n = kv::ParseU64(v);
      if (!n || *n == 0) return bad(v);
      (name == "ttl" ? o.ttl : o.from) = *n;
    } else if (name == "version") {
      std::fputs(kv::VersionText("kvctl").c_str(), stdout);
      return 0;
    } else if (name == "h" || name == "help") {
      help = true;
    } else if (!name.empty() && a != "-") {
      return UsageError(std::string("unknown flag ").append(a));
    } else {
      args.push_back(a);
    }
  }
  if (o.token.empty()) {
    if (const char* env = std::getenv("KVCTL_TOKEN"); env != nullptr && *env != '\0') o.token = env;
  }
  if (!o.token.empty() && !kv::BearerToken(std::string("Bearer ").append(o.token)))
    return UsageError(
        "the token holds characters a bearer token may not (A-Z a-z 0-9 - . _ ~ + /)");
  if (args.empty()) {
    if (help) {
      PrintUsage(stdout);
      return 0;
    }
    return UsageError("no command given");
  }
  const std::string& cmd = args[0];
  const CommandDoc* doc = FindCommand(cmd);
  if (doc == nullptr) return UsageError(std::string("unknown command '").append(cmd).append("'"));
  if (help) {
    PrintCommandUsage(*doc, stdout);
    return 0;
  }
  const std::size_t nargs = args.size() - 1;
  if (nargs < doc->min_args || nargs > doc->max_args)
    return UsageError(cmd + ": wrong number of arguments", doc);
  if (cmd == "help") {
    if (nargs == 0) {
      PrintUsage(stdout);
      return 0;
    }
    const CommandDoc* about = FindCommand(args[1]);
    if (about == nullptr)
      return UsageError(std::string("unknown command '").append(args[1]).append("'"));
    PrintCommandUsage(*about, stdout);
    return 0;
  }
  std::string used;
  auto key_path = [](const std::string& k) { return "/kv/" + kv::PercentEncode(k); };
  // put, create, cas: the TTL as one more query parameter.
  auto ttl_param = [&o](bool first) {
    return o.ttl == 0 ? std::string() : (first ? "?ttl=" : "&ttl=") + std::to_string(o.ttl);
  };

  if (cmd == "put") {
    auto sent = Send(o, "PUT", key_path(args[1]) + ttl_param(true), args[2], &used);
    const httplib::Result& r = sent.result;
    if (int rc = Report(o, sent, used)) return rc;
    std::cout << (o.json ? r->body : "OK") << "\n";
  } else if (cmd == "create") {
    auto sent =
        Send(o, "PUT", key_path(args[1]) + "?prev_exist=false" + ttl_param(false), args[2], &used);
    const httplib::Result& r = sent.result;
    if (int rc = Report(o, sent, used)) return rc;
    std::cout << (o.json ? r->body : "OK") << "\n";
  } else if (cmd == "cas") {
    auto sent =
        Send(o, "PUT",
             key_path(args[1]) + "?prev_value=" + kv::PercentEncode(args[2]) + ttl_param(false),
             args[3], &used);
    const httplib::Result& r = sent.result;
    if (int rc = Report(o, sent, used)) return rc;
    std::cout << (o.json ? r->body : "OK") << "\n";
  } else if (cmd == "get") {
    auto sent =
        Send(o, "GET", key_path(args[1]) + (o.stale ? "?consistency=stale" : ""), "", &used);
    const httplib::Result& r = sent.result;
    if (int rc = Report(o, sent, used)) return rc;
    if (o.json) {
      std::cout << PairJson(args[1], r->body) << "\n";
    } else {
      std::cout.write(r->body.data(), static_cast<std::streamsize>(r->body.size()));
      std::cout << "\n";
    }
  } else if (cmd == "del") {
    auto sent = Send(o, "DELETE", key_path(args[1]), "", &used);
    const httplib::Result& r = sent.result;
    if (int rc = Report(o, sent, used)) return rc;
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    std::cout << (o.json ? r->body : (j.value("deleted", false) ? "deleted" : "not found")) << "\n";
  } else if (cmd == "list") {
    return List(o, args.size() == 2 ? args[1] : "");
  } else if (cmd == "watch") {
    return Watch(o, args.size() == 2 ? args[1] : "");
  } else if (cmd == "snapshot") {
    if (args[1] != "save")
      return UsageError(std::string("snapshot: unknown subcommand '").append(args[1]).append("'"),
                        doc);
    return SnapshotSave(o, args[2]);
  } else if (cmd == "endpoint") {
    if (args[1] != "health")
      return UsageError(std::string("endpoint: unknown subcommand '").append(args[1]).append("'"),
                        doc);
    return EndpointHealth(o);
  } else if (cmd == "ranges") {
    auto sent = Send(o, "GET", "/status", "", &used);
    const httplib::Result& r = sent.result;
    if (int rc = Report(o, sent, used)) return rc;
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("ranges") || !j["ranges"].is_array()) {
      std::fprintf(stderr, "kvctl: ranges: %s is not in ranges mode (-shards)\n", used.c_str());
      return 1;
    }
    if (o.json) {
      std::cout << j["ranges"].dump() << "\n";
      return 0;
    }
    auto key = [](const nlohmann::json& v, const char* none) {
      std::string k = v.is_string() ? v.get<std::string>() : "";
      return k.empty() ? std::string(none) : nlohmann::json(k).dump();
    };
    std::printf("%-6s %-12s %-12s %-12s %-6s %-10s %-10s %s\n", "RANGE", "START", "END", "LEADER",
                "TERM", "COMMIT", "APPLIED", "BYTES");
    for (const auto& g : j["ranges"]) {
      const auto& leader = g.contains("leader") ? g["leader"] : nlohmann::json();
      std::printf("%-6s %-12s %-12s %-12s %-6s %-10s %-10s %s\n",
                  std::to_string(g.value("id", 0ull)).c_str(), key(g["start"], "-inf").c_str(),
                  key(g["end"], "+inf").c_str(),
                  leader.is_string() ? leader.get<std::string>().c_str() : "none",
                  std::to_string(g.value("term", 0ull)).c_str(),
                  std::to_string(g.value("commit_index", 0ull)).c_str(),
                  std::to_string(g.value("applied_index", 0ull)).c_str(),
                  std::to_string(g.value("size_bytes", 0ull)).c_str());
    }
  } else if (cmd == "status" || cmd == "members") {
    auto sent = Send(o, "GET", "/status", "", &used);
    const httplib::Result& r = sent.result;
    if (int rc = Report(o, sent, used)) return rc;
    if (o.json) {
      std::cout << r->body << "\n";
      return 0;
    }
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (cmd == "status") {
      std::cout << "node      " << j.value("id", "") << " (" << used << ")\n"
                << "role      " << j.value("role", "") << "\n"
                << "term      " << j.value("term", 0) << "\n"
                << "leader    " << (j["leader"].is_null() ? "none" : j["leader"].value("id", ""))
                << "\n"
                << "commit    " << j.value("commit_index", 0) << "\n"
                << "applied   " << j.value("applied_index", 0) << "\n";
      if (!j.value("failure", "").empty())
        std::cout << "FAILURE   " << j.value("failure", "") << "\n";
    }
    std::printf("%-12s %-8s %-22s %-22s\n", "MEMBER", "ROLE", "RAFT", "HTTP");
    std::string leader = j["leader"].is_null() ? "" : j["leader"].value("id", "");
    for (const auto& m : j["members"]) {
      std::string role = m.value("id", "") == leader ? "leader"
                         : m.value("voter", false)   ? "voter"
                                                     : "learner";
      std::printf("%-12s %-8s %-22s %-22s\n", m.value("id", "").c_str(), role.c_str(),
                  m.value("raft_addr", "").c_str(), m.value("http_addr", "").c_str());
    }
  } else if (cmd == "join") {
    for (std::size_t i = 1; i <= 3; ++i) {
      if (!kv::ValidUtf8(args[i])) {  // JSON cannot carry it (dump() would throw)
        std::fprintf(stderr, "kvctl: join: '%s' is not valid UTF-8\n", args[i].c_str());
        return 2;
      }
    }
    nlohmann::json b = {{"id", args[1]}, {"raft_addr", args[2]}, {"http_addr", args[3]}};
    auto sent = Send(o, "POST", "/join", b.dump(), &used);
    const httplib::Result& r = sent.result;
    if (int rc = Report(o, sent, used)) return rc;
    std::cout << (o.json ? r->body : "joined " + args[1]) << "\n";
  } else {  // leave, transfer-leader {
    if (!kv::ValidUtf8(args[1])) {
      std::fprintf(stderr, "kvctl: %s: '%s' is not valid UTF-8\n", cmd.c_str(), args[1].c_str());
      return 2;
    }
    nlohmann::json b = {{"id", args[1]}};
    auto sent = Send(o, "POST", "/" + cmd, b.dump(), &used);
    const httplib::Result& r = sent.result;
    if (int rc = Report(o, sent, used)) return rc;
    std::cout << (o.json ? r->body : "OK") << "\n";
  }
  return 0;
}
