// counterd: one replica of a replicated counter, driven by a line-based console on
// stdin. See README.md for a three-node walkthrough.
//
//   counterd --name n1 --raft 127.0.0.1:5001 --data ./data/n1 [--bootstrap]
//
// Every command prints exactly one line on stdout, starting with "ok" or "error";
// logs go to stderr. The process stops gracefully on `quit`, end of input, SIGINT or
// SIGTERM: raft::Node::Stop() answers pending requests, joins its threads and closes
// its files.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "counter_state_machine.h"
#include "raft/node.h"
#include "stderr_logger.h"

namespace counter {
namespace {

using namespace std::chrono_literals;

constexpr auto kRequestTimeout = 5s;
constexpr auto kCatchUpTimeout = 10s;

constexpr char kUsage[] =
    "usage: counterd --name NAME --raft HOST:PORT --data DIR [--bootstrap]\n"
    "                [--cluster-id ID] [--secret SECRET] [--tick-ms N]\n"
    "                [--snapshot-entries N] [--snapshot-trailing N]\n"
    "                [--log-level debug|info|warn|error]\n"
    "\n"
    "  --name NAME            this member's name; its node id is derived from it\n"
    "  --raft HOST:PORT       Raft address: bound, and advertised to the other members\n"
    "  --data DIR             log, hard state and snapshots (created if missing)\n"
    "  --bootstrap            start a new one-member cluster if DIR holds no state\n"
    "                         (without it, an empty node waits to be added with `add`)\n"
    "  --cluster-id ID        members of one cluster must agree (default: counter)\n"
    "  --secret SECRET        when set, peers must prove they know it\n"
    "  --tick-ms N            Raft tick (default 100; elections after 10-20 ticks)\n"
    "  --snapshot-entries N   snapshot every N applied entries (default 10000)\n"
    "  --snapshot-trailing N  log entries kept behind a snapshot (default 1000)\n"
    "  --log-level LEVEL      stderr log threshold (default info)\n";

constexpr char kHelp[] =
    "ok commands: incr [N] | get | status | members | add NAME HOST:PORT | "
    "promote NAME | remove NAME | transfer NAME | help | quit";

struct Flags {
  std::string name;
  std::string raft_addr;
  std::string data_dir;
  bool bootstrap = false;
  std::string cluster_id = "counter";
  std::string secret;
  int tick_ms = 100;
  std::uint64_t snapshot_entries = 10000;
  std::uint64_t snapshot_trailing = 1000;
  raft::LogLevel log_level = raft::LogLevel::kInfo;
};

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// Returns an error message, or "" when the flags are complete and valid.
std::string ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (arg == "--bootstrap") {
      f->bootstrap = true;
    } else if (arg == "--help" || arg == "-h") {
      return "help";
    } else if (!value(&v)) {
      return "unknown flag or missing value: " + arg;
    } else if (arg == "--name") {
      f->name = v;
    } else if (arg == "--raft") {
      f->raft_addr = v;
    } else if (arg == "--data") {
      f->data_dir = v;
    } else if (arg == "--cluster-id") {
      f->cluster_id = v;
    } else if (arg == "--secret") {
      f->secret = v;
    } else if (arg == "--tick-ms") {
      if (!ParseNumber(v, &f->tick_ms) || f->tick_ms <= 0) return "bad --tick-ms: " + v;
    } else if (arg == "--snapshot-entries") {
      if (!ParseNumber(v, &f->snapshot_entries) || f->snapshot_entries == 0)
        return "bad --snapshot-entries: " + v;
    } else if (arg == "--snapshot-trailing") {
      if (!ParseNumber(v, &f->snapshot_trailing)) return "bad --snapshot-trailing: " + v;
    } else if (arg == "--log-level") {
      if (v == "debug") {
        f->log_level = raft::LogLevel::kDebug;
      } else if (v == "info") {
        f->log_level = raft::LogLevel::kInfo;
      } else if (v == "warn") {
        f->log_level = raft::LogLevel::kWarn;
      } else if (v == "error") {
        f->log_level = raft::LogLevel::kError;
      } else {
        return "bad --log-level: " + v;
      }
    } else {
      return "unknown flag: " + arg;
    }
  }
  if (f->name.empty()) return "--name is required";
  if (f->raft_addr.empty()) return "--raft is required";
  if (f->data_dir.empty()) return "--data is required";
  return "";
}

// ---------------------------------------------------------------- stdin and signals

int g_signal_pipe[2] = {-1, -1};

extern "C" void OnSignal(int) {
  char c = 's';
  // Async-signal-safe; a full pipe already holds a wake-up, so a short write is fine.
  ssize_t ignored = write(g_signal_pipe[1], &c, 1);
  (void)ignored;
}

bool InstallSignalHandlers() {
  if (pipe(g_signal_pipe) != 0) return false;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGINT, &sa, nullptr) != 0 || sigaction(SIGTERM, &sa, nullptr) != 0) return false;
  signal(SIGPIPE, SIG_IGN);  // a closed stdout must not kill the node mid-write
  return true;
}

// Reads lines from stdin while watching the signal pipe. Next() returns nullopt at end
// of input or when a signal arrived.
class ConsoleInput {
 public:
  std::optional<std::string> Next() {
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      if (eof_) {
        if (buf_.empty()) return std::nullopt;
        return std::exchange(buf_, "");
      }
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {g_signal_pipe[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return std::nullopt;
      }
      if (fds[1].revents != 0) {
        signaled_ = true;
        return std::nullopt;
      }
      char chunk[4096];
      ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
        continue;
      }
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  bool signaled() const { return signaled_; }

 private:
  std::string buf_;
  bool eof_ = false;
  bool signaled_ = false;
};

// ---------------------------------------------------------------- the console

class Console {
 public:
  Console(raft::Node* node, CounterStateMachine* sm) : node_(node), sm_(sm) {}

  // Runs one command line and returns its one-line answer; sets *quit on `quit`.
  std::string Execute(const std::string& line, bool* quit) {
    std::istringstream in(line);
    std::string cmd;
    std::vector<std::string> args;
    in >> cmd;
    for (std::string a; in >> a;) args.push_back(a);
    if (cmd.empty()) return "";
    if (cmd == "quit" || cmd == "exit") {
      *quit = true;
      return "ok bye";
    }
    if (cmd == "help") return kHelp;
    if (cmd == "incr" && args.size() <= 1) return Incr(args.empty() ? "1" : args[0]);
    if (cmd == "get" && args.empty()) return Get();
    if (cmd == "status" && args.empty()) return StatusLine();
    if (cmd == "members" && args.empty()) return MembersLine();
    if (cmd == "add" && args.size() == 2) return Add(args[0], args[1]);
    if (cmd == "promote" && args.size() == 1) return Promote(args[0]);
    if (cmd == "remove" && args.size() == 1) return Remove(args[0]);
    if (cmd == "transfer" && args.size() == 1) return Transfer(args[0]);
    return "error unknown command or wrong arguments: '" + line + "' (try help)";
  }

 private:
  std::string NameOf(raft::NodeId id) const {
    if (id == raft::kNoNode) return "none";
    for (const raft::MemberInfo& m : node_->Members())
      if (m.id == id) return m.name;
    return std::to_string(id);
  }

  // kNotLeader carries the leader's numeric id in its message; a person wants a name.
  std::string Error(const raft::Status& s) const {
    if (s.code() == raft::ErrorCode::kNotLeader) {
      raft::NodeId leader = node_->GetStatus().leader;
      if (leader == raft::kNoNode || leader == node_->id())
        return "error NotLeader: no leader known (election in progress?)";
      for (const raft::MemberInfo& m : node_->Members())
        if (m.id == leader)
          return "error NotLeader: the leader is " + m.name + " (" + m.raft_addr + ")";
    }
    return "error " + s.ToString();
  }

  std::string Incr(const std::string& arg) {
    std::int64_t delta = 0;
    if (!ParseNumber(std::string_view(arg), &delta)) return "error incr needs an integer: " + arg;
    auto r = node_->Propose(EncodeIncr(delta), kRequestTimeout).get();
    if (!r.ok()) return Error(r.status());
    return "ok " + *r;
  }

  // Linearizable: ReadBarrier completes once this replica has applied everything that
  // was committed when it was called; the local value is then at least that fresh.
  std::string Get() {
    auto r = node_->ReadBarrier(kRequestTimeout).get();
    if (!r.ok()) return Error(r.status());
    return "ok " + std::to_string(sm_->value());
  }

  std::string StatusLine() const {
    raft::NodeStatusInfo s = node_->GetStatus();
    std::string out =
        "ok name=" + s.name + " role=" + raft::RoleName(s.role) +
        " term=" + std::to_string(s.term) + " leader=" + NameOf(s.leader) +
        " commit=" + std::to_string(s.commit) + " applied=" + std::to_string(s.applied) +
        " last=" + std::to_string(s.last_index) + " snapshot=" + std::to_string(s.snapshot_index) +
        " value=" + std::to_string(sm_->value());
    if (!s.failure.empty()) out += " failure=\"" + s.failure + "\"";
    return out;
  }

  // Members as the configuration has them; replication progress is known on the leader.
  std::string MembersLine() const {
    raft::NodeStatusInfo s = node_->GetStatus();
    std::sort(s.members.begin(), s.members.end(),
              [](const auto& a, const auto& b) { return a.info.name < b.info.name; });
    // "ok n1 127.0.0.1:5001 voter; n2 127.0.0.1:5002 voter match=7 Replicate"
    std::string out = "ok";
    for (std::size_t i = 0; i < s.members.size(); ++i) {
      const raft::MemberStatus& m = s.members[i];
      out += (i == 0 ? " " : "; ") + m.info.name + " " + m.info.raft_addr +
             (m.voter ? " voter" : " learner");
      if (s.role == raft::Role::kLeader && m.info.id != s.id)
        out += " match=" + std::to_string(m.match) + " " + raft::ProgressStateName(m.state);
    }
    if (s.members.empty()) out += " none known yet: waiting to be added";
    return out;
  }

  // Adds NAME as a learner, waits until it has caught up with the log, then promotes it
  // to voter: a voter that cannot yet acknowledge would count against the quorum.
  std::string Add(const std::string& name, const std::string& addr) {
    raft::MemberInfo m{raft::NodeIdFromName(name), name, addr, ""};
    auto added = node_->AddLearner(m, kRequestTimeout).get();
    if (!added.ok()) return Error(added.status());
    raft::Index target = node_->GetStatus().commit;
    auto deadline = std::chrono::steady_clock::now() + kCatchUpTimeout;
    while (!CaughtUp(m.id, target)) {
      if (std::chrono::steady_clock::now() >= deadline)
        return "error " + name +
               " was added as a learner but has not caught up; is it running? "
               "then run: promote " +
               name;
      std::this_thread::sleep_for(50ms);
    }
    auto promoted = node_->PromoteLearner(m.id, kRequestTimeout).get();
    if (!promoted.ok()) return Error(promoted.status());
    return "ok " + name + " added as a voter";
  }

  bool CaughtUp(raft::NodeId id, raft::Index target) const {
    for (const raft::MemberStatus& m : node_->GetStatus().members)
      if (m.info.id == id) return m.match >= target;
    return false;
  }

  std::string Promote(const std::string& name) {
    auto r = node_->PromoteLearner(raft::NodeIdFromName(name), kRequestTimeout).get();
    if (!r.ok()) return Error(r.status());
    return "ok " + name + " is a voter";
  }

  std::string Remove(const std::string& name) {
    auto r = node_->RemoveMember(raft::NodeIdFromName(name), kRequestTimeout).get();
    if (!r.ok()) return Error(r.status());
    return "ok " + name + " removed";
  }

  std::string Transfer(const std::string& name) {
    raft::Status s = node_->TransferLeadership(raft::NodeIdFromName(name), kRequestTimeout).get();
    if (!s.ok()) return Error(s);
    return "ok " + name + " leads";
  }

  raft::Node* node_;
  CounterStateMachine* sm_;
};

int Main(int argc, char** argv) {
  Flags flags;
  if (std::string err = ParseFlags(argc, argv, &flags); !err.empty()) {
    if (err == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "counterd: %s\n\n%s", err.c_str(), kUsage);
    return 2;
  }
  if (!InstallSignalHandlers()) {
    std::perror("counterd: signal setup");
    return 1;
  }

  StderrLogger logger(flags.log_level);
  CounterStateMachine sm;
  raft::NodeOptions opts;
  opts.self = raft::MemberInfo{raft::NodeIdFromName(flags.name), flags.name, flags.raft_addr, ""};
  opts.data_dir = flags.data_dir;
  opts.cluster_id = flags.cluster_id;
  opts.cluster_secret = flags.secret;
  opts.bootstrap = flags.bootstrap;
  opts.tick_ms = flags.tick_ms;
  opts.snapshot_entries = flags.snapshot_entries;
  opts.snapshot_trailing_entries = flags.snapshot_trailing;
  opts.logger = &logger;

  auto started = raft::Node::Start(opts, &sm);
  if (!started.ok()) {
    std::fprintf(stderr, "counterd: cannot start: %s\n", started.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<raft::Node> node = std::move(started).value();
  std::fprintf(stderr, "counterd %s: raft %s, data %s; type `help` for commands\n",
               flags.name.c_str(), flags.raft_addr.c_str(), flags.data_dir.c_str());

  Console console(node.get(), &sm);
  ConsoleInput input;
  const bool interactive = isatty(STDIN_FILENO) != 0;
  for (bool quit = false; !quit;) {
    if (interactive) std::cout << flags.name << "> " << std::flush;
    std::optional<std::string> line = input.Next();
    if (!line) break;
    std::string answer = console.Execute(*line, &quit);
    if (!answer.empty()) std::cout << answer << std::endl;
  }
  std::fprintf(stderr, "counterd %s: stopping (%s)\n", flags.name.c_str(),
               input.signaled() ? "signal" : "end of input or quit");
  node->Stop();
  return 0;
}

}  // namespace
}  // namespace counter

int main(int argc, char** argv) { return counter::Main(argc, argv); }
