// The full-node simulator's clients: requests to the leader or any node, their history for the
// linearizability checker, the read-index and acknowledgement checks (node_sim_internal.h).
#include <fmt/format.h>

#include "node_sim_internal.h"

namespace raft::nodesim::internal {

Node::Callback ClientGivesUp(SimWorld& world, Node::Callback cb) {
  auto once = std::make_shared<Node::Callback>(std::move(cb));
  auto run = [once](Result<std::string> r) {
    if (!*once) return;
    Node::Callback c = std::move(*once);
    *once = nullptr;
    c(std::move(r));
  };
  world.After(kOpTimeout + 500ms, [run] {
    run(Status(ErrorCode::kTimeout, "the client gave up: no answer from the process"));
  });
  return run;
}

SimRun::WriteCommand SimRun::MakeWrite(std::uint64_t kind, const std::string& key,
                                       const std::string& value, std::uint64_t op,
                                       const std::optional<std::string>& expected) {
  WriteCommand w;
  if (kind < 7) {
    w.input = lin::Input::Put(key, value);
    w.cmd = EncodePut(key, value);
  } else if (kind < 9) {
    w.input = lin::Input::Cas(key, expected, value);
    w.cmd = EncodeCas(key, expected, value);
  } else {
    w.input = lin::Input::Delete(key);
    w.cmd = EncodeDelete(key, op);
  }
  w.tag = w.cmd.substr(w.cmd.rfind('\n') + 1);
  return w;
}

void SimRun::OnReadAnswer(lin::HistoryRecorder::OpId id, const Result<std::string>& res,
                          Index floor, const std::string& where, const SimKv* kv,
                          const std::string& key) {
  if (res.ok() && std::stoull(*res) < floor)
    Fail(
        fmt::format("stale read index: a read on {} got index {}, but a write at index {} was "
                    "acknowledged before the read began",
                    where, *res, floor));
  if (res.ok() && kv != nullptr) {
    history_.Complete(id, Now(), lin::Output::Value(kv->Get(key)));
    ++res_.reads_ok;
  } else {
    history_.Discard(id);  // a read without an answer constrains nothing
  }
}

Index SimRun::OnWriteAnswer(lin::HistoryRecorder::OpId id, lin::OpKind kind,
                            const std::string& value, const std::string& tag,
                            const Result<std::string>& res) {
  if (!res.ok()) {
    switch (res.status().code()) {
      // Refused before it was proposed, or (kProposalDropped) the runtime promises it was
      // not applied: the checker holds it to that.
      case ErrorCode::kNotLeader:
      case ErrorCode::kBusy:
      case ErrorCode::kInvalidArgument:
      case ErrorCode::kConfChangePending:
      case ErrorCode::kProposalDropped:
        ++res_.ops_discarded;
        history_.Discard(id);
        break;
      default:  // kTimeout, kShutdown, kIOError...: outcome unknown
        ++res_.ops_unknown;
        break;
    }
    return 0;
  }
  ++res_.ops_ok;
  if (kind == lin::OpKind::kCas) {
    history_.Complete(id, Now(), lin::Output::Swapped(*res == "1"));
    if (*res == "1") acked_values_.insert(value);
  } else {
    history_.Complete(id, Now(), lin::Output::Ack());
    if (kind == lin::OpKind::kPut) acked_values_.insert(value);
  }
  auto it = tag_index_.find(tag);
  if (it == tag_index_.end()) {
    Fail("an acknowledged write was never applied anywhere: " + tag);
    return 0;
  }
  return it->second;
}

void Sim::ClientLoop(int client) {
  if (finished_ || failed() || !faults_on_) return;
  Rng& r = world_.rng();
  auto next = [this, client] {
    world_.After(std::chrono::microseconds(world_.rng().Range(0, 20000)),
                 [this, client] { ClientLoop(client); });
  };
  Proc* target = r.Chance(0.6) ? Leader() : nullptr;
  if (target == nullptr) target = RandomUp();
  if (target == nullptr) {
    next();
    return;
  }
  const std::string key = fmt::format("k{}", r.Uniform(static_cast<std::uint64_t>(o_.keys)));
  const std::uint64_t op = next_op_++;
  // Unique values (so acknowledged writes can be found), of varied length (so
  // snapshots span several chunks).
  const std::string value =
      fmt::format("v{}{}", op, std::string(static_cast<std::size_t>(r.Uniform(40)), 'x'));
  const std::uint64_t kind = r.Uniform(10);
  const int slot = target->slot;
  Node* node = target->node.get();
  if (kind < 4) {
    auto id = history_.Invoke(static_cast<lin::ClientId>(client), Now(), lin::Input::Get(key));
    const Index floor = max_acked_index_;
    ++reads_in_flight_[slot];
    node->ReadBarrier(kOpTimeout,
                      ClientSide([this, id, slot, key, next, floor](Result<std::string> res) {
                        --reads_in_flight_[slot];
                        Proc& p = *procs_[static_cast<std::size_t>(slot)];
                        OnReadAnswer(id, res, floor, fmt::format("n{}", slot), p.kv.get(), key);
                        if (!finished_) next();
                      }));
    return;
  }
  // A CAS expects the current value of some node's state machine, or absence.
  std::optional<std::string> expected;
  if (kind >= 7 && kind < 9 && target->kv && r.Chance(0.8)) expected = target->kv->Get(key);
  WriteCommand w = MakeWrite(kind, key, value, op, expected);
  const std::string tag = w.tag;
  const lin::OpKind op_kind = w.input.kind;
  auto id = history_.Invoke(static_cast<lin::ClientId>(client), Now(), w.input);
  node->Propose(std::move(w.cmd), kOpTimeout,
                ClientSide([this, id, op_kind, value, tag, next](Result<std::string> res) {
                  const Index at = OnWriteAnswer(id, op_kind, value, tag, res);
                  if (at > max_acked_index_) max_acked_index_ = at;
                  if (!finished_) next();
                }));
}

}  // namespace raft::nodesim::internal
