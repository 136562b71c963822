// Checks of a /join request (see join_check.h).
#include "join_check.h"

#include <boost/asio/ip/address.hpp>
#include <charconv>

namespace kv {
namespace {

bool NameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool ValidDnsName(std::string_view h) {
  if (h.empty() || h.size() > 253 || h.front() == '-' || h.front() == '.') return false;
  for (char c : h)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.'))
      return false;
  return true;
}

JoinVerdict Refuse(int status, std::string message) {
  JoinVerdict v;
  v.kind = JoinVerdict::Kind::kRefused;
  v.status = status;
  v.message = std::move(message);
  return v;
}

}  // namespace

bool ValidNodeName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!NameChar(c)) return false;
  return true;
}

std::string AddrProblem(std::string_view addr) {
  auto colon = addr.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return "must be host:port";
  std::string_view host = addr.substr(0, colon), port_s = addr.substr(colon + 1);
  int port = 0;
  auto [p, ec] = std::from_chars(port_s.data(), port_s.data() + port_s.size(), port);
  if (ec != std::errc() || p != port_s.data() + port_s.size() || port < 1 || port > 65535)
    return "port must be 1..65535";
  boost::system::error_code bad;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return "malformed [IPv6] host";
    auto a = boost::asio::ip::make_address_v6(std::string(host.substr(1, host.size() - 2)), bad);
    if (bad) return "malformed [IPv6] host";
    if (a.is_unspecified()) return "host must be an address peers can dial, not [::]";
    return "";
  }
  auto a = boost::asio::ip::make_address_v4(std::string(host), bad);
  if (!bad) return a.is_unspecified() ? "host must be an address peers can dial, not 0.0.0.0" : "";
  if (!ValidDnsName(host)) return "host must be an IP address or a DNS name";
  return "";
}

JoinVerdict CheckJoin(const JoinRequest& req, const std::vector<raft::MemberStatus>& members) {
  if (!ValidNodeName(req.name))
    return Refuse(400, "join: id must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
  for (auto [what, addr] : {std::pair<const char*, const std::string*>{"raft_addr", &req.raft_addr},
                            {"http_addr", &req.http_addr}}) {
    if (std::string why = AddrProblem(*addr); !why.empty())
      return Refuse(400, std::string("join: ").append(what).append(" ").append(why));
  }
  const raft::NodeId id = raft::NodeIdFromName(req.name);
  for (const auto& ms : members) {
    const raft::MemberInfo& m = ms.info;
    if (m.id == id && m.name != req.name)
      return Refuse(409, std::string("join: id '")
                             .append(req.name)
                             .append("' hashes to the same node id as member '")
                             .append(m.name)
                             .append("'; choose another name"));
    if (m.id == id) {
      if (m.raft_addr != req.raft_addr || m.app_data != req.http_addr)
        return Refuse(409, std::string("node '")
                               .append(req.name)
                               .append("' is already a member at raft ")
                               .append(m.raft_addr)
                               .append(", http ")
                               .append(m.app_data));
      JoinVerdict v;
      v.kind = ms.voter ? JoinVerdict::Kind::kAlreadyVoter : JoinVerdict::Kind::kPromote;
      return v;
    }
  }
  for (const auto& ms : members) {
    const raft::MemberInfo& m = ms.info;
    if (m.raft_addr == req.raft_addr || m.app_data == req.http_addr)
      return Refuse(409, std::string("join: member '")
                             .append(m.name)
                             .append("' already uses raft ")
                             .append(m.raft_addr)
                             .append(", http ")
                             .append(m.app_data)
                             .append("; remove it first (POST /leave)"));
  }
  if (members.size() >= kMembersMax)
    return Refuse(409, std::string("join: the cluster already has ")
                           .append(std::to_string(kMembersMax))
                           .append(" members (voters and learners), the most it may have"));
  JoinVerdict v;
  v.kind = JoinVerdict::Kind::kAdd;
  return v;
}

}  // namespace kv
