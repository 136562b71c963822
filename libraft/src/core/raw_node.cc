#include "raft/raw_node.h"

#include "core/raft_core.h"

namespace raft {

RawNode::RawNode(std::unique_ptr<RaftCore> core) : core_(std::move(core)) {}
RawNode::~RawNode() = default;

Result<std::unique_ptr<RawNode>> RawNode::Create(const Config& config, const Storage* storage) {
  auto core = RaftCore::Create(config, storage);
  if (!core.ok()) return core.status();
  return std::unique_ptr<RawNode>(new RawNode(std::move(core).value()));
}

void RawNode::Tick() { core_->Tick(); }
Status RawNode::Step(const Message& m) { return core_->Step(m); }
Result<LogPosition> RawNode::Propose(std::string data) { return core_->Propose(std::move(data)); }
Result<LogPosition> RawNode::ProposeConfChange(const ConfChange& cc) {
  return core_->ProposeConfChange(cc);
}
Status RawNode::ReadIndex(std::string context) { return core_->ReadIndex(std::move(context)); }
Status RawNode::TransferLeadership(NodeId target) { return core_->TransferLeadership(target); }
void RawNode::Campaign() { core_->Campaign(); }
void RawNode::ReportUnreachable(NodeId id) { core_->ReportUnreachable(id); }
void RawNode::ReportLeaderLost(NodeId id) { core_->ReportLeaderLost(id); }
void RawNode::ReportSnapshot(NodeId id, bool success) { core_->ReportSnapshot(id, success); }
bool RawNode::Quiesced() const { return core_->quiesced(); }
void RawNode::Unquiesce() { core_->Unquiesce(); }
bool RawNode::HasReady() const { return core_->HasReady(); }
Ready RawNode::GetReady() { return core_->GetReady(); }
void RawNode::Advance(const Ready& rd) { core_->Advance(rd); }
std::vector<Message> RawNode::TakeMessages() { return core_->TakeMessages(); }
std::vector<Entry> RawNode::TakeCommitted() { return core_->TakeCommitted(); }
void RawNode::PauseCommitted(bool paused) { core_->PauseCommitted(paused); }
NodeStatus RawNode::GetStatus() const { return core_->GetStatus(); }
NodeId RawNode::id() const { return core_->id(); }
Role RawNode::role() const { return core_->role(); }
NodeId RawNode::leader() const { return core_->leader(); }
Term RawNode::term() const { return core_->term(); }

}  // namespace raft
