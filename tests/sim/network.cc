#include "network.h"

namespace raft::sim {

bool Network::Send(Message m, std::string snapshot_data, std::int64_t now, Rng& rng) {
  ++counters_.sent;
  for (const Entry& e : m.entries) counters_.bytes += e.data.size();
  counters_.bytes += snapshot_data.size();
  if (!Connected(m.from, m.to) || rng.Chance(faults_.drop)) {
    ++counters_.dropped;
    return false;
  }
  int copies = rng.Chance(faults_.duplicate) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    Envelope e;
    e.msg = m;
    e.snapshot_data = snapshot_data;
    std::int64_t delay = rng.Range(faults_.delay_min_ticks, faults_.delay_max_ticks);
    if (rng.Chance(faults_.long_delay)) delay += rng.Range(0, faults_.long_delay_max_ticks);
    e.deliver_tick = now + delay;
    e.seq = next_seq_++;
    queue_.emplace(std::make_pair(e.deliver_tick, e.seq), std::move(e));
  }
  return true;
}

std::vector<Envelope> Network::TakeDue(std::int64_t now) {
  std::vector<Envelope> out;
  while (!queue_.empty() && queue_.begin()->first.first <= now) {
    out.push_back(std::move(queue_.begin()->second));
    queue_.erase(queue_.begin());
  }
  return out;
}

void Network::Requeue(Envelope e, std::int64_t tick) {
  e.deliver_tick = tick;
  e.seq = next_seq_++;
  queue_.emplace(std::make_pair(e.deliver_tick, e.seq), std::move(e));
}

void Network::Isolate(const std::set<NodeId>& group, const std::set<NodeId>& all) {
  for (NodeId a : group) {
    for (NodeId b : all) {
      if (!group.count(b)) BlockBoth(a, b);
    }
  }
}

}  // namespace raft::sim
