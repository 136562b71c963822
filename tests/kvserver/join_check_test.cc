// The checks of a /join request (kvserver/src/join_check.h; security review F-16).
#include "join_check.h"

#include <catch2/catch.hpp>

namespace kv {
namespace {

raft::MemberStatus Member(const std::string& name, const std::string& raft_addr,
                          const std::string& http_addr, bool voter = true) {
  raft::MemberStatus ms;
  ms.info.name = name;
  ms.info.id = raft::NodeIdFromName(name);
  ms.info.raft_addr = raft_addr;
  ms.info.app_data = http_addr;
  ms.voter = voter;
  return ms;
}

}  // namespace

TEST_CASE("join: node names and addresses are validated", "[kvserver][join]") {
  CHECK(ValidNodeName("node-1.a_B"));
  CHECK(ValidNodeName(std::string(64, 'a')));
  CHECK_FALSE(ValidNodeName(""));
  CHECK_FALSE(ValidNodeName(std::string(65, 'a')));
  const std::vector<std::string_view> bad_names = {
      "a b", "a/b", "../x", "n\xc3\xa9", std::string_view("a\0b", 3), "a:b", "a\n"};
  for (std::string_view bad : bad_names) CHECK_FALSE(ValidNodeName(bad));

  CHECK(AddrProblem("127.0.0.1:4000").empty());
  CHECK(AddrProblem("[::1]:4000").empty());
  CHECK(AddrProblem("node-1.example:65535").empty());
  CHECK(AddrProblem("127.0.0.1") == "must be host:port");
  CHECK(AddrProblem(":4000") == "must be host:port");
  CHECK(AddrProblem("127.0.0.1:0") == "port must be 1..65535");
  CHECK(AddrProblem("127.0.0.1:65536") == "port must be 1..65535");
  CHECK(AddrProblem("127.0.0.1:4x") == "port must be 1..65535");
  CHECK(AddrProblem("0.0.0.0:4000").find("not 0.0.0.0") != std::string::npos);
  CHECK(AddrProblem("[::]:4000").find("not [::]") != std::string::npos);
  CHECK(AddrProblem("[zz]:4000") == "malformed [IPv6] host");
  CHECK(AddrProblem("::1:4000") == "host must be an IP address or a DNS name");
  CHECK(AddrProblem("a b:4000") == "host must be an IP address or a DNS name");
  CHECK(AddrProblem("-x:4000") == "host must be an IP address or a DNS name");
  CHECK(AddrProblem(std::string(254, 'a') + ":1") == "host must be an IP address or a DNS name");
}

TEST_CASE("join: verdicts against the membership", "[kvserver][join]") {
  std::vector<raft::MemberStatus> members = {
      Member("n0", "127.0.0.1:4000", "127.0.0.1:3000"),
      Member("n1", "127.0.0.1:4001", "127.0.0.1:3001", /*voter=*/false)};
  auto check = [&](JoinRequest r) { return CheckJoin(r, members); };
  using K = JoinVerdict::Kind;

  CHECK(check({"n2", "127.0.0.1:4002", "127.0.0.1:3002"}).kind == K::kAdd);
  // A retried join: idempotent.
  CHECK(check({"n0", "127.0.0.1:4000", "127.0.0.1:3000"}).kind == K::kAlreadyVoter);
  CHECK(check({"n1", "127.0.0.1:4001", "127.0.0.1:3001"}).kind == K::kPromote);
  // The same name at other addresses.
  JoinVerdict v = check({"n0", "127.0.0.1:4009", "127.0.0.1:3000"});
  CHECK(v.kind == K::kRefused);
  CHECK(v.status == 409);
  CHECK(v.message == "node 'n0' is already a member at raft 127.0.0.1:4000, http 127.0.0.1:3000");
  // Another name at a member's address.
  v = check({"n3", "127.0.0.1:4001", "127.0.0.1:3003"});
  CHECK(v.status == 409);
  CHECK(v.message.find("member 'n1' already uses") != std::string::npos);
  v = check({"n3", "127.0.0.1:4003", "127.0.0.1:3000"});
  CHECK(v.status == 409);
  // Malformed requests.
  CHECK(check({"", "127.0.0.1:4002", "127.0.0.1:3002"}).status == 400);
  CHECK(check({"n 2", "127.0.0.1:4002", "127.0.0.1:3002"}).status == 400);
  v = check({"n2", "127.0.0.1:4002", "nohost"});
  CHECK(v.status == 400);
  CHECK(v.message == "join: http_addr must be host:port");
  CHECK(check({"n2", "0.0.0.0:4002", "127.0.0.1:3002"}).status == 400);

  // A name whose id collides with a member's (FNV-1a is not collision resistant): a member
  // recorded under another name with the id the new name hashes to.
  raft::MemberStatus forged = Member("n5", "127.0.0.1:4005", "127.0.0.1:3005");
  forged.info.id = raft::NodeIdFromName("victim");
  members.push_back(forged);
  v = check({"victim", "127.0.0.1:4006", "127.0.0.1:3006"});
  CHECK(v.status == 409);
  CHECK(v.message.find("same node id as member 'n5'") != std::string::npos);
}

TEST_CASE("join: the membership is capped at kMembersMax", "[kvserver][join]") {
  std::vector<raft::MemberStatus> members;
  for (std::size_t i = 0; i + 1 < kMembersMax; ++i) {
    const std::string n = std::to_string(i);
    members.push_back(Member(std::string("n").append(n), std::string("10.0.0.1:").append(n + "1"),
                             std::string("10.0.0.2:").append(n + "1"), i < 3));
  }
  JoinRequest r{"last", "10.0.1.1:1", "10.0.1.2:1"};
  CHECK(CheckJoin(r, members).kind == JoinVerdict::Kind::kAdd);
  members.push_back(Member("last", "10.0.1.1:1", "10.0.1.2:1", false));
  CHECK(CheckJoin(r, members).kind == JoinVerdict::Kind::kPromote);  // a member still may
  JoinVerdict v = CheckJoin({"extra", "10.0.2.1:1", "10.0.2.2:1"}, members);
  CHECK(v.status == 409);
  CHECK(v.message.find("already has 64 members") != std::string::npos);
}

}  // namespace kv
