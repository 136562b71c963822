// Human-readable names of the public enums, and Status rendering.
#include "raft/config.h"
#include "raft/message.h"
#include "raft/raw_node.h"
#include "raft/status.h"

namespace raft {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "OK";
    case ErrorCode::kNotLeader:
      return "NotLeader";
    case ErrorCode::kProposalDropped:
      return "ProposalDropped";
    case ErrorCode::kConfChangePending:
      return "ConfChangePending";
    case ErrorCode::kInvalidArgument:
      return "InvalidArgument";
    case ErrorCode::kCompacted:
      return "Compacted";
    case ErrorCode::kUnavailable:
      return "Unavailable";
    case ErrorCode::kCorruption:
      return "Corruption";
    case ErrorCode::kIOError:
      return "IOError";
    case ErrorCode::kNoSpace:
      return "NoSpace";
    case ErrorCode::kTimeout:
      return "Timeout";
    case ErrorCode::kShutdown:
      return "Shutdown";
    case ErrorCode::kBusy:
      return "Busy";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = ErrorCodeName(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

const char* MessageTypeName(MessageType t) {
  switch (t) {
    case MessageType::kAppend:
      return "Append";
    case MessageType::kAppendResponse:
      return "AppendResponse";
    case MessageType::kVote:
      return "Vote";
    case MessageType::kVoteResponse:
      return "VoteResponse";
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteResponse:
      return "PreVoteResponse";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResponse:
      return "HeartbeatResponse";
    case MessageType::kSnapshot:
      return "Snapshot";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
    case MessageType::kReadIndex:
      return "ReadIndex";
    case MessageType::kReadIndexResponse:
      return "ReadIndexResponse";
  }
  return "Unknown";
}

bool IsResponse(MessageType t) {
  switch (t) {
    case MessageType::kAppendResponse:
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
    case MessageType::kHeartbeatResponse:
    case MessageType::kReadIndexResponse:
      return true;
    default:
      return false;
  }
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kFollower:
      return "Follower";
    case Role::kPreCandidate:
      return "PreCandidate";
    case Role::kCandidate:
      return "Candidate";
    case Role::kLeader:
      return "Leader";
  }
  return "Unknown";
}

const char* ProgressStateName(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe:
      return "Probe";
    case ProgressState::kReplicate:
      return "Replicate";
    case ProgressState::kSnapshot:
      return "Snapshot";
  }
  return "Unknown";
}

Status Config::Validate() const {
  if (id == kNoNode) return Status(ErrorCode::kInvalidArgument, "config.id must not be 0");
  if (heartbeat_ticks <= 0)
    return Status(ErrorCode::kInvalidArgument, "config.heartbeat_ticks must be > 0");
  if (election_ticks <= heartbeat_ticks)
    return Status(ErrorCode::kInvalidArgument,
                  "config.election_ticks must be greater than heartbeat_ticks");
  if (max_inflight_msgs == 0)
    return Status(ErrorCode::kInvalidArgument, "config.max_inflight_msgs must be > 0");
  if (read_only == ReadOnlyOption::kLeaseBased && !check_quorum)
    return Status(ErrorCode::kInvalidArgument,
                  "config.read_only = kLeaseBased requires check_quorum");
  return Status::Ok();
}

bool Ready::Empty() const {
  return !soft_state && !hard_state && !snapshot && entries.empty() && committed_entries.empty() &&
         messages.empty() && messages_after_persist.empty() && read_states.empty() && !removed;
}

}  // namespace raft
