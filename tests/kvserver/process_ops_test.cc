// Operators' habits against real processes (issue 15, "Deployment and habits";
// docs/operations.md "Deployment"): -version on kvserver and kvctl, the kv_build_info
// metric; /livez and /readyz on a leader, a follower, a node still joining and one that
// lost its quorum; /metrics with exact integers and the process_* metrics, accepted by
// `promtool check metrics` (Debian package prometheus; the check is skipped, saying so,
// only when promtool is not installed); kvctl's KVCTL_ADDR and usage texts; -join with
// several addresses; -config and KVSERVER_* variables; -advertise-laddr/-advertise-raddr.
//
//   build/tests/kvserver/process_ops_test    # or '[version]', '[readyz]', '[metrics]', '[kvctl]',
//   '[join]', '[config]', '[advertise]'
#include <fmt/format.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "process_harness.h"

namespace kvtest {
namespace {

using Run = CommandRun;  // harness_util.h: RunCommand

std::string KvctlBinary() {
  if (const char* env = std::getenv("KVCTL_BIN"); env != nullptr && *env != '\0') return env;
  return KVCTL_BIN;
}

// -version's three lines: "<program> <version>", "commit <c>", "build_type <t>".
struct Version {
  std::string version, commit, build_type;
};

Version ParseVersion(const std::string& program, const std::string& text) {
  static const std::regex re(
      R"(^(\S+) ([0-9]+\.[0-9]+\.[0-9]+)\ncommit ([0-9a-f]{12}(-dirty)?|unknown)\nbuild_type (\S+)\n$)");
  std::smatch m;
  INFO("-version output:\n" << text);
  REQUIRE(std::regex_match(text, m, re));
  REQUIRE(m[1].str() == program);
  return {m[2].str(), m[3].str(), m[5].str()};
}

TEST_CASE("-version on kvserver and kvctl; kv_build_info says the same", "[version]") {
  Run server = RunCommand(KvserverBinary() + " -version");
  REQUIRE(server.exit_code == 0);
  Version sv = ParseVersion("kvserver", server.output);
  Run server2 = RunCommand(KvserverBinary() + " --version");
  REQUIRE(server2.exit_code == 0);
  REQUIRE(server2.output == server.output);
  Run ctl = RunCommand(KvctlBinary() + " -version");
  REQUIRE(ctl.exit_code == 0);
  Version cv = ParseVersion("kvctl", ctl.output);
  CHECK(cv.version == sv.version);
  CHECK(cv.commit == sv.commit);
  CHECK(cv.build_type == sv.build_type);

  ProcessCluster cluster;
  cluster.Start(1);
  HttpReply metrics = cluster.node(0).Client().Metrics();
  REQUIRE(metrics.Ok());
  std::string want =
      fmt::format("kv_build_info{{version=\"{}\",commit=\"{}\",build_type=\"{}\"}} 1\n", sv.version,
                  sv.commit, sv.build_type);
  INFO("/metrics:\n" << metrics.body);
  CHECK(metrics.body.find(want) != std::string::npos);
  CHECK(metrics.body.find("# TYPE kv_build_info gauge\n") != std::string::npos);
}

// GET /readyz until its status is `code` (and, when not ready, its reason `reason`).
void WaitReady(const NodeProcess& node, int code, const std::string& reason = {},
               Millis limit = 10s) {
  HttpReply last;
  bool ok = WaitUntil(limit, [&] {
    last = node.Client(2s).Request("GET", "/readyz");
    return last.status == code && (reason.empty() || last.Json().value("reason", "") == reason);
  });
  INFO(node.id() << ": waited for /readyz " << code << " " << reason
                 << "; last: " << last.Describe());
  REQUIRE(ok);
}

TEST_CASE("/livez and /readyz: leader, follower, a node still joining, a lost quorum", "[readyz]") {
  ProcessCluster cluster;
  cluster.Start(3);
  std::size_t leader = cluster.WaitLeader();
  std::size_t follower = cluster.Follower(leader);
  cluster.WaitCaughtUp(follower);
  for (std::size_t i : {leader, follower}) {
    HttpReply live = cluster.node(i).Client().Request("GET", "/livez");
    INFO(live.Describe());
    CHECK(live.status == 200);
    CHECK(live.Json().value("live", false));
    WaitReady(cluster.node(i), 200);
    HttpReply ready = cluster.node(i).Client().Request("GET", "/readyz");
    INFO(ready.Describe());
    CHECK(ready.content_type == "application/json");
    CHECK(ready.Json().value("ready", false));
    CHECK(ready.Json().value("leader", "") == cluster.node(leader).id());
  }
  // Only GET.
  CHECK(cluster.node(leader).Client().Request("POST", "/readyz").status == 405);
  CHECK(cluster.node(leader).Client().Request("PUT", "/livez").status == 405);
  // The probes are counted under their own route.
  HttpReply metrics = cluster.node(follower).Client().Metrics();
  CHECK(metrics.body.find(R"(kv_http_requests_total{route="/readyz",method="GET",code="200"})") !=
        std::string::npos);

  SECTION("a node that has not joined yet: live, not ready") {
    // -join to a port nothing listens on: the node serves HTTP and keeps retrying.
    NodeProcess& lonely = cluster.AddNode();
    lonely.Start(fmt::format("127.0.0.1:{}", PickFreePort()));
    lonely.WaitServing();
    CHECK(lonely.Client().Request("GET", "/livez").status == 200);
    HttpReply ready = lonely.Client().Request("GET", "/readyz");
    INFO(ready.Describe());
    CHECK(ready.status == 503);
    CHECK(ready.retry_after == "1");
    CHECK(ready.Json().value("ready", true) == false);
    CHECK(ready.Json().value("reason", "") == "not_member");
    CHECK_FALSE(ready.Json().value("error", "").empty());
  }
  SECTION("the last node of three, its quorum gone: live, not ready") {
    std::size_t other = cluster.Follower(leader, 1);
    cluster.node(leader).Kill();
    cluster.node(other).Kill();
    WaitReady(cluster.node(follower), 503, "no_leader");
    CHECK(cluster.node(follower).Client().Request("GET", "/livez").status == 200);
    // Health says the same as before (no leader), and stays a separate route.
    CHECK(cluster.node(follower).Client().Health().status == 503);
    // Back: the cluster elects a leader and the node is ready again.
    cluster.node(leader).Start();
    WaitReady(cluster.node(follower), 200, {}, 20s);
  }
}

// The sample lines of an exposition: name{labels} -> value text.
std::map<std::string, std::string> Samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.rfind(' ');
    REQUIRE(sp != std::string::npos);
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

double Value(const std::map<std::string, std::string>& samples, const std::string& name) {
  auto it = samples.find(name);
  INFO("metric " << name);
  REQUIRE(it != samples.end());
  return std::strtod(it->second.c_str(), nullptr);
}

TEST_CASE("/metrics: exact integers, process_* metrics, promtool check metrics", "[metrics]") {
  ProcessCluster cluster;
  cluster.Start(1);
  KvClient client = cluster.node(0).Client();
  // 1.4 MB through the log: kv_raft_bytes_appended_total passes 1,000,000.
  const std::string big(700 * 1000, 'v');
  PutOk(client, "big/1", big);
  PutOk(client, "big/2", big);
  HttpReply metrics = client.Metrics();
  REQUIRE(metrics.Ok());
  INFO("/metrics:\n" << metrics.body);
  auto samples = Samples(metrics.body);

  // Every value that is an integer is written as one: digits only, no exponent.
  for (const auto& [name, text] : samples) {
    double v = std::strtod(text.c_str(), nullptr);
    INFO(name << " " << text);
    if (std::isfinite(v) && v == std::trunc(v))
      CHECK(text.find_first_not_of("-0123456789") == std::string::npos);
  }
  const std::string& appended = samples.at("kv_raft_bytes_appended_total");
  CHECK(appended.size() >= 7);
  CHECK(std::stoull(appended) >= 1400000u);

  // process_*: this node's own numbers.
  CHECK(Value(samples, "process_resident_memory_bytes") > 1e6);
  CHECK(samples.at("process_resident_memory_bytes").find_first_not_of("0123456789") ==
        std::string::npos);
  double open = Value(samples, "process_open_fds");
  CHECK(open >= 5);  // the listeners, RocksDB, the log
  CHECK(Value(samples, "process_max_fds") >= open);
  CHECK(Value(samples, "process_cpu_seconds_total") >= 0);
  double now = static_cast<double>(std::time(nullptr));
  double start = Value(samples, "process_start_time_seconds");
  CHECK(start <= now + 1);
  CHECK(start > now - 120);
  CHECK(metrics.body.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
  // Request latency by route: the two PUTs at least (this /metrics is answered after).
  const std::string puts = "kv_http_request_duration_seconds_count{route=\"/kv/{key}\"} ";
  const auto at = metrics.body.find(puts);
  REQUIRE(at != std::string::npos);
  CHECK(std::stoull(metrics.body.substr(at + puts.size())) >= 2);

  // docs/grafana/kvserver.json asks only for metrics the node serves.
  {
    std::ifstream in(DASHBOARD_JSON);
    REQUIRE(in);
    const std::string dashboard((std::istreambuf_iterator<char>(in)), {});
    const std::regex metric_name("\\b(kv|process)_[a-z_]+");
    int names = 0;
    for (auto it = std::sregex_iterator(dashboard.begin(), dashboard.end(), metric_name);
         it != std::sregex_iterator(); ++it, ++names) {
      std::string family = it->str();
      if (family.ends_with("_bucket")) family.resize(family.size() - 7);
      INFO("the dashboard uses " << it->str());
      CHECK(metrics.body.find("# TYPE " + family + " ") != std::string::npos);
    }
    CHECK(names >= 15);
  }

  // promtool, on exactly what the node served.
  if (RunCommand("command -v promtool >/dev/null 2>&1").exit_code != 0) {
    WARN(
        "SKIPPED promtool check metrics: promtool not found (Debian package prometheus; "
        "scripts/install-deps.sh installs it)");
    return;
  }
  std::filesystem::path file = cluster.root() / "metrics.txt";
  {
    std::ofstream out(file, std::ios::binary);
    out << metrics.body;
  }
  Run check = RunCommand(fmt::format("promtool check metrics < '{}' 2>&1", file.string()));
  INFO("promtool check metrics:\n" << check.output);
  CHECK(check.exit_code == 0);
  CHECK(check.output.empty());  // no lint findings either
}

// kvctl with stdout and stderr together.
Run Kvctl(const std::string& env, const std::string& args) {
  return RunCommand(fmt::format("{} {} -timeout-ms 3000 {} 2>&1", env, KvctlBinary(), args));
}

TEST_CASE("kvctl: KVCTL_ADDR is the default address; usage for every command", "[kvctl]") {
  ProcessCluster cluster;
  cluster.Start(1);
  const std::string live = cluster.node(0).http_addr();
  const std::string dead = fmt::format("127.0.0.1:{}", PickFreePort());
  const std::string env = "env KVCTL_ADDR=" + live;

  Run put = Kvctl(env, "put env/k v1");
  INFO(put.output);
  REQUIRE(put.exit_code == 0);
  Run get = Kvctl(env, "get env/k");
  CHECK(get.exit_code == 0);
  CHECK(get.output == "v1\n");
  // -addr wins over KVCTL_ADDR; KVCTL_ADDR (a list, like -addr) is used without it.
  CHECK(Kvctl("env KVCTL_ADDR=" + dead, "-addr " + live + " get env/k").output == "v1\n");
  Run list = Kvctl(fmt::format("env KVCTL_ADDR={},{}", dead, live), "get env/k");
  CHECK(list.exit_code == 0);
  CHECK(list.output == "v1\n");
  Run nobody = Kvctl("env KVCTL_ADDR=" + dead, "get env/k");
  CHECK(nobody.exit_code == 1);
  CHECK(nobody.output.find("no node reachable (last tried " + dead) != std::string::npos);

  // kvctl help: every command, exit 0.
  Run help = Kvctl("", "help");
  INFO(help.output);
  CHECK(help.exit_code == 0);
  for (const char* cmd : {"put", "get", "del", "cas", "create", "list", "status", "members",
                          "endpoint", "join", "leave", "transfer-leader", "help"}) {
    INFO(cmd);
    CHECK(help.output.find(fmt::format("\n  {} ", cmd)) != std::string::npos);
    Run h = Kvctl("", fmt::format("{} -h", cmd));
    CHECK(h.exit_code == 0);
    CHECK(h.output.rfind(fmt::format("usage: kvctl [flags] {}", cmd), 0) == 0);
    CHECK(Kvctl("", fmt::format("help {}", cmd)).output == h.output);
  }
  CHECK(help.output.find("KVCTL_ADDR") != std::string::npos);
  CHECK(Kvctl("", "-h").output == help.output);

  // Mistakes: exit 2 and a message saying what is wrong.
  Run few = Kvctl(env, "put onlykey");
  CHECK(few.exit_code == 2);
  CHECK(few.output.rfind(
            "kvctl: put: wrong number of arguments\nusage: kvctl [flags] put KEY VALUE [-ttl S]\n",
            0) == 0);
  Run unknown = Kvctl(env, "frobnicate");
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.output.find("unknown command 'frobnicate'") != std::string::npos);
  Run none = Kvctl(env, "");
  CHECK(none.exit_code == 2);
  CHECK(none.output.find("no command given") != std::string::npos);
  Run flag = Kvctl(env, "-limit");
  CHECK(flag.exit_code == 2);
  CHECK(flag.output.find("flag -limit needs a value") != std::string::npos);
  CHECK(Kvctl(env, "-o yaml status").output.find("bad value 'yaml' for flag -o") !=
        std::string::npos);
}

TEST_CASE("-join with several addresses: a dead one is skipped", "[join]") {
  ProcessCluster cluster;
  cluster.Start(1);
  const std::string dead = fmt::format("127.0.0.1:{}", PickFreePort());
  NodeProcess& joiner = cluster.AddNode();
  joiner.Start(fmt::format("{}, {}", dead, cluster.node(0).http_addr()));
  joiner.WaitServing();
  cluster.WaitVoters(2);
  // The default log format is hclog's: "<ts> [INFO]  kvserver: <msg>: key=value ...". The
  // joiner logs its success after the leader has counted it: wait for the line.
  const std::string joined = fmt::format("[INFO]  kvserver: joined the cluster: via=http://{}",
                                         cluster.node(0).http_addr());
  CHECK(WaitUntil(5s, [&] { return joiner.Log().find(joined) != std::string::npos; }));
  std::string log = joiner.Log();
  INFO(log);
  CHECK(log.find("join attempt failed; trying the next -join address") != std::string::npos);
  CHECK(log.find(dead) != std::string::npos);
  // Members are named by their -id in the log, not by their 64-bit ids (the joiner hears
  // from the leader before it has the membership: there the leader is still a number).
  CHECK(cluster.node(0).Log().find("[INFO]  raft: leader changed: leader=node0 role=Leader") !=
        std::string::npos);
  cluster.WaitCaughtUp(1);
  WaitReady(joiner, 200);
}

// kvctl list -all pages through everything, binary safe; get/list -o json base64 what is
// not UTF-8; endpoint health asks every member (issue 15, kvctl).
TEST_CASE("kvctl: list -all, binary-safe JSON output, endpoint health", "[kvctl]") {
  ProcessCluster cluster;
  cluster.Start(3);
  const std::size_t leader = cluster.WaitLeader();
  KvClient c = cluster.node(leader).Client();
  for (int i = 0; i < 25; ++i) PutOk(c, fmt::format("p/{:02}", i), fmt::format("v{}", i));
  PutOk(c, "q/outside", "x");
  const std::string binary("b\xff\x00\n", 4);
  PutOk(c, "p/zz-binary", binary);
  const std::string env = "env KVCTL_ADDR=" + cluster.node(leader).http_addr();

  // Text: every key under the prefix across pages of 4, raw bytes.
  Run all = Kvctl(env, "list p/ -all -limit 4");
  REQUIRE(all.exit_code == 0);
  std::string want;
  for (int i = 0; i < 25; ++i) want += fmt::format("p/{:02}\tv{}\n", i, i);
  want += "p/zz-binary\t" + binary + "\n";
  CHECK(all.output == want);
  // Without -all: one page, and JSON says there is more.
  Run page = Kvctl(env, "-o json list p/ -limit 4");
  REQUIRE(page.exit_code == 0);
  auto pj = nlohmann::json::parse(page.output);
  CHECK(pj["items"].size() == 4);
  CHECK(pj["more"] == true);
  // JSON with -all: the binary item is base64, the others text.
  Run js = Kvctl(env, "-o json list p/ -all -limit 7");
  REQUIRE(js.exit_code == 0);
  auto j = nlohmann::json::parse(js.output);
  REQUIRE(j["items"].size() == 26);
  CHECK(j["more"] == false);
  CHECK(j["items"][3] == nlohmann::json({{"key", "p/03"}, {"value", "v3"}}));
  const auto& last = j["items"][25];
  CHECK(last.value("encoding", "") == "base64");
  CHECK(Base64Decode(last.value("key", "")) == "p/zz-binary");
  CHECK(Base64Decode(last.value("value", "")) == binary);
  Run get = Kvctl(env, "-o json get p/zz-binary");
  REQUIRE(get.exit_code == 0);
  auto gj = nlohmann::json::parse(get.output);
  CHECK(Base64Decode(gj.value("value", "")) == binary);
  CHECK(gj.value("encoding", "") == "base64");
  CHECK(nlohmann::json::parse(Kvctl(env, "-o json get p/01").output) ==
        nlohmann::json({{"key", "p/01"}, {"value", "v1"}}));

  // endpoint health: all three healthy, found from one address.
  Run health = Kvctl(env, "endpoint health");
  INFO(health.output);
  CHECK(health.exit_code == 0);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(health.output.find(cluster.node(i).http_addr()) != std::string::npos);
    CHECK(std::regex_search(health.output,
                            std::regex(cluster.node(i).id() + " +healthy +[0-9.]+ms +leader ")));
  }
  // One member down: it is reported, the others stay healthy, exit 1.
  const std::size_t down = cluster.Follower(leader);
  cluster.node(down).Kill();
  Run degraded = Kvctl(env, "-o json endpoint health");
  INFO(degraded.output);
  CHECK(degraded.exit_code == 1);
  auto dj = nlohmann::json::parse(degraded.output);
  REQUIRE(dj.size() == 3);
  for (const auto& e : dj) {
    const bool is_down = e.value("id", "") == cluster.node(down).id();
    CHECK(e.value("healthy", !is_down) == !is_down);
    if (is_down) CHECK_FALSE(e.value("detail", "").empty());
  }
  CHECK(Kvctl(env, "endpoint sickness").exit_code == 2);
  // The transport names the lost peer by its -id.
  CHECK(WaitUntil(5s, [&] {
    return cluster.node(leader).Log().find("transport: peer unreachable: peer=" +
                                           cluster.node(down).id()) != std::string::npos;
  }));
}

// -config FILE and KVSERVER_<FLAG> variables reach a real node, the command line winning.
TEST_CASE("-config file and KVSERVER_* variables configure a node", "[config]") {
  ProcessCluster cluster;
  NodeProcess& n = cluster.AddNode();
  const auto conf = cluster.root() / "node0.conf";
  std::ofstream(conf) << "# limits for this test\n"
                         "max-value-bytes = 64\n"
                         "max_key_bytes = \"16\"\n"
                         "log-level = debug\n";
  n.mutable_spec().env = {"KVSERVER_CONFIG=" + conf.string(), "KVSERVER_LOG_FORMAT=json",
                          "KVSERVER_MAX_KEY_BYTES=8"};
  n.mutable_spec().extra_args = {"-log-level", "info"};  // argv wins over the file
  cluster.Start(1);
  KvClient c = n.Client();
  CHECK(c.Put("k", std::string(64, 'v')).status == 200);
  CHECK(c.Put("k", std::string(65, 'v')).status == 413);  // from the file
  CHECK(c.Put("12345678", "v").status == 200);
  CHECK(c.Put("123456789", "v").status == 413);  // the environment beat the file's 16
  std::string log = n.Log();
  INFO(log.substr(0, 4000));
  CHECK(log.find("\"msg\":\"settings read from the config file\"") != std::string::npos);
  CHECK(log.find("\"level\":\"debug\"") == std::string::npos);  // -log-level info won
  // A bad value in the file stops the node with status 2, naming the line.
  n.Kill();
  std::ofstream(conf) << "max-value-bytes = lots\n";
  n.Start();
  REQUIRE(n.WaitExit(10s) == std::optional<int>(2));
  CHECK(n.Log().find("bad value 'lots' for flag -max-value-bytes (config file " + conf.string() +
                     ":1)") != std::string::npos);
}

// Listening on 0.0.0.0 with -advertise-laddr/-advertise-raddr: the membership, /join and
// forwarding use the advertised addresses. Without them the join would be refused
// (0.0.0.0 is no address a peer can dial; join_check.cc).
TEST_CASE("-advertise-laddr/-advertise-raddr: listen on 0.0.0.0, give the cluster 127.0.0.1",
          "[advertise]") {
  ProcessCluster cluster;
  for (int i = 0; i < 2; ++i) {
    NodeProcess& n = cluster.AddNode();
    n.mutable_spec().extra_args = {"-laddr",           fmt::format("0.0.0.0:{}", n.http_port()),
                                   "-raddr",           fmt::format("0.0.0.0:{}", n.raft_port()),
                                   "-advertise-laddr", n.http_addr(),
                                   "-advertise-raddr", n.raft_addr()};
  }
  cluster.Start(2);
  const std::size_t leader = cluster.WaitLeader();
  auto st = cluster.node(leader).StatusJson();
  INFO(st.dump());
  for (std::size_t i = 0; i < 2; ++i) {
    bool found = false;
    for (const auto& m : st["members"]) {
      if (m.value("id", "") != cluster.node(i).id()) continue;
      found = true;
      CHECK(m.value("http_addr", "") == cluster.node(i).http_addr());
      CHECK(m.value("raft_addr", "") == cluster.node(i).raft_addr());
    }
    CHECK(found);
    std::string log = cluster.node(i).Log();
    CHECK(log.find("[INFO]  kvserver: http listening: laddr=0.0.0.0:") != std::string::npos);
    CHECK(log.find("set -advertise-") == std::string::npos);  // no warning: they are set
  }
  // A write through the follower is forwarded to the leader's advertised address.
  const std::size_t follower = cluster.Follower(leader);
  PutOk(cluster.node(follower).Client(), "adv", "1");
  RequireValue(cluster.node(leader).Client(), "adv", "1");
}

// Issue 15, backup and restore: kvctl snapshot save streams a checked backup from a node
// to a file; kvserver -restore seeds a new cluster (a new id, one member) from it on an
// empty data directory; two nodes join; every key reads back on every node. A restore
// refuses a directory that holds anything, and -join with it; a damaged file is refused.
TEST_CASE("backup and restore: kvctl snapshot save, kvserver -restore, two nodes join",
          "[kvctl][backup]") {
  ProcessCluster cluster;
  cluster.Start(3);
  const std::size_t leader = cluster.WaitLeader();
  KvClient client = cluster.node(leader).Client();
  std::map<std::string, std::string> written;
  for (int i = 0; i < 300; ++i) {
    std::string k = fmt::format("bk/{:04}", i);
    std::string v = fmt::format("value {} {}", i, std::string(static_cast<std::size_t>(i), 'x'));
    PutOk(client, k, v);
    written[k] = v;
  }
  const std::string old_id = cluster.node(leader).StatusJson()["cluster_id"];
  const std::filesystem::path file = cluster.root() / "backup.snap";
  // From a follower: its backup follows a read barrier, so it holds every write above.
  const std::size_t follower = cluster.Follower(leader);
  Run save = Kvctl("", fmt::format("-addr {} snapshot save {}", cluster.node(follower).http_addr(),
                                   file.string()));
  INFO(save.output);
  REQUIRE(save.exit_code == 0);
  CHECK(save.output.find("saved backup at index") != std::string::npos);
  REQUIRE(std::filesystem::exists(file));
  CHECK_FALSE(std::filesystem::exists(file.string() + ".part"));
  // The node kept nothing: kvctl deleted its copy.
  const auto backups = cluster.node(follower).spec().data_dir / "backups";
  CHECK((!std::filesystem::exists(backups) || std::filesystem::is_empty(backups)));
  // -o json: the backup's index, term and members.
  Run again =
      Kvctl("", fmt::format("-addr {} -o json snapshot save {}", cluster.node(leader).http_addr(),
                            (cluster.root() / "again.snap").string()));
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  auto j = nlohmann::json::parse(again.output);
  CHECK(j["members"].size() == 3);
  CHECK(j["index"].get<std::uint64_t>() > 300);

  // Everything lost: every process and data directory.
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    cluster.node(i).Kill();
    std::filesystem::remove_all(cluster.node(i).spec().data_dir);
  }
  NodeProcess& seed = cluster.AddNode();
  // -restore with -join, or into a directory that holds anything: refused.
  seed.Start(cluster.node(0).http_addr(), {"-restore", file.string()});
  REQUIRE(seed.WaitExit(10s) == std::optional<int>(1));
  CHECK(seed.Log().find("-restore seeds a new cluster") != std::string::npos);
  std::filesystem::create_directories(seed.spec().data_dir);
  { std::ofstream(seed.spec().data_dir / "stray") << "x"; }
  seed.Start(std::nullopt, {"-restore", file.string()});
  REQUIRE(seed.WaitExit(10s) == std::optional<int>(1));
  CHECK(seed.Log().find("is not empty") != std::string::npos);
  std::filesystem::remove_all(seed.spec().data_dir);
  // A damaged file: refused, nothing left behind but the refusal.
  const std::filesystem::path damaged = cluster.root() / "damaged.snap";
  std::filesystem::copy_file(file, damaged);
  std::filesystem::resize_file(damaged, std::filesystem::file_size(file) - 1);
  seed.Start(std::nullopt, {"-restore", damaged.string()});
  REQUIRE(seed.WaitExit(10s) == std::optional<int>(1));
  std::filesystem::remove_all(seed.spec().data_dir);

  seed.Start(std::nullopt, {"-restore", file.string()});
  seed.WaitServing();
  REQUIRE(WaitUntil(10s, [&] {
    auto st = seed.StatusJson();
    return IsLeaderRole(st) && st["members"].size() == 1;
  }));
  const std::string new_id = seed.StatusJson()["cluster_id"];
  CHECK(new_id != old_id);
  CHECK(seed.Log().find("restored from a backup") != std::string::npos);
  for (const auto& [k, v] : written) RequireValue(seed.Client(), k, v);
  PutOk(seed.Client(), "bk/after", "restore");
  for (std::size_t i : cluster.AddJoiners(seed.http_addr(), 2, 1)) {
    for (const auto& [k, v] : written) RequireValue(cluster.node(i).Client(), k, v, true);
    RequireValue(cluster.node(i).Client(), "bk/after", "restore", true);
  }
  // A restart of the seed resumes its log; the flag is not needed again (and refused).
  REQUIRE(seed.Terminate() == 0);
  seed.Start(std::nullopt, {"-restore", file.string()});
  REQUIRE(seed.WaitExit(10s) == std::optional<int>(1));
  seed.Start();
  seed.WaitServing();
  cluster.WaitVoters(3);
  RequireValue(seed.Client(), "bk/0007", written["bk/0007"]);
}

}  // namespace
}  // namespace kvtest
