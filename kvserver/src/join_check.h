// The checks a /join request passes before the leader changes the membership (security
// review F-16): a well-formed node name, dialable addresses, no second identity for an
// existing name, id or address, and a bounded membership. Pure functions over the current
// membership: no I/O, testable without a cluster.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "raft/node.h"

namespace kv {

// Members (voters and learners) a cluster may have; a join beyond it is refused. Far
// below the wire format's kConfNodesMax, so a snapshot's membership always encodes.
constexpr std::size_t kMembersMax = 64;

// [A-Za-z0-9._-]{1,64}: node names reach logs, metrics labels and the default data
// directory (./data/<id>).
bool ValidNodeName(std::string_view name);

// "host:port" a peer can dial: port 1..65535; host an IPv4 literal, a bracketed IPv6
// literal or a DNS name (letters, digits, '-', '.'; at most 253 characters), and not an
// unspecified address (0.0.0.0, [::]). Empty when valid, else why not.
std::string AddrProblem(std::string_view addr);

struct JoinRequest {
  std::string name;
  std::string raft_addr;
  std::string http_addr;
};

struct JoinVerdict {
  enum class Kind {
    kAdd,           // a new member: add as learner, then promote
    kPromote,       // already a learner with these addresses: promote (a retried join)
    kAlreadyVoter,  // already a voter with these addresses: nothing to do
    kRefused,       // `status` and `message` say why
  };
  Kind kind = Kind::kRefused;
  int status = 0;  // kRefused: 400 (malformed) or 409 (conflicts with the membership)
  std::string message;
};

// Decides a join against the current membership:
// - 400: a bad name or address;
// - 409: the name is a member at other addresses; another name has the same id (an FNV
//   collision) or either address; or the membership already has kMembersMax members.
JoinVerdict CheckJoin(const JoinRequest& req, const std::vector<raft::MemberStatus>& members);

}  // namespace kv
