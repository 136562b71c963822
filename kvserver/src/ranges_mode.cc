#include "ranges_mode.h"

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

#include "kv_command.h"
#include "ranges_backup.h"
#include "rocks_state_machine_fs.h"

namespace kv {
namespace {

constexpr std::chrono::milliseconds kChangeTimeout{5000};
// A split order not carried out in this long is cancelled; a range's leader proposes an
// ordered split again after kSplitRetry.
constexpr std::chrono::seconds kSplitOrderTimeout{30};
constexpr std::chrono::seconds kSplitRetry{3};

bool Has(const std::vector<raft::NodeId>& v, raft::NodeId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

// Replaces <dir>/<name> with `contents`, durably (a temporary file renamed over it).
raft::Status WriteSmallFile(const std::string& dir, const std::string& name,
                            const std::string& contents) {
  const std::string path = dir + "/" + name;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << contents;
    f.close();
    if (!f) return raft::Status(raft::ErrorCode::kIOError, "cannot write " + tmp);
  }
  if (raft::Status s = fs::FsyncPath(tmp); !s.ok()) return s;
  return fs::RenameDurably(tmp, path, dir);
}

// <data>/shards: the number of ranges a bootstrap asked for, written before the host
// starts, so that the meta range's leader finishes the bootstrap after a crash.
raft::Status WriteShards(const std::string& data, int shards) {
  return WriteSmallFile(data, "shards", std::to_string(shards) + "\n");
}

// <data>/restoring: a -restore is under way (removed once the meta range holds the
// restored directory); a start that finds it refuses the directory.
constexpr std::string_view kRestoringMarker = "restoring";

int ReadShards(const std::string& data) {
  std::ifstream f(data + "/shards");
  int n = 0;
  return (f >> n) && n >= 2 && n <= 95 ? n : 0;
}

// <data>/peers: the processes this host knew last ("id raft_addr" lines), read at start.
// A restarted process learns its peers from the meta range, which it cannot reach
// without them: the meta range's own log is not enough (its commit index may be behind
// what it holds, and only a peer tells it more).
std::map<raft::NodeId, std::string> ReadPeers(const std::string& data) {
  std::map<raft::NodeId, std::string> peers;
  std::ifstream f(data + "/peers");
  raft::NodeId id = 0;
  std::string addr;
  while (f >> id >> addr)
    if (id != raft::kNoNode && !addr.empty()) peers[id] = addr;
  return peers;
}

}  // namespace

void MetaStateMachine::Apply(const std::vector<raft::Entry>& entries,
                             std::vector<std::string>* results) {
  std::lock_guard<std::mutex> l(mu_);
  for (const raft::Entry& e : entries) {
    if (e.type != raft::EntryType::kNormal || e.data.empty()) {
      results->emplace_back();
    } else if (auto c = DecodeMetaCommand(e.data); !c.ok()) {
      results->push_back("malformed meta command: " + c.status().message());
    } else {
      results->push_back(state_.Apply(*c));
    }
    applied_.store(e.index);
  }
}

namespace {

// The meta state frozen as its encoded record (a few KiB: the processes and the directory).
class MetaSnapshotSource final : public raft::SnapshotSource {
 public:
  explicit MetaSnapshotSource(std::string body) : body_(std::move(body)) {}
  raft::Status WriteTo(raft::SnapshotWriter* out) override { return out->Write(body_); }

 private:
  std::string body_;
};

}  // namespace

raft::Result<std::unique_ptr<raft::SnapshotSource>> MetaStateMachine::PrepareSnapshot() {
  std::lock_guard<std::mutex> l(mu_);
  return std::unique_ptr<raft::SnapshotSource>(
      std::make_unique<MetaSnapshotSource>(state_.EncodeSnapshot()));
}

raft::Status MetaStateMachine::Restore(raft::SnapshotReader* in, const raft::SnapshotMeta& meta) {
  // Bounded: the record of at most 4096 processes and 1024 descriptors (meta_state.cc).
  constexpr std::size_t kMaxBytes = 64u << 20;
  std::string body;
  char buf[64 * 1024];
  for (;;) {
    auto n = in->Read(buf, sizeof(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    body.append(buf, *n);
    if (body.size() > kMaxBytes)
      return raft::Status(raft::ErrorCode::kCorruption, "meta snapshot over 64 MiB");
  }
  auto st = MetaState::DecodeSnapshot(body);
  if (!st.ok()) return st.status();
  std::lock_guard<std::mutex> l(mu_);
  state_ = std::move(st).value();
  applied_.store(meta.index);
  return raft::Status::Ok();
}

std::map<raft::NodeId, ProcessRecord> MetaStateMachine::Processes() const {
  std::lock_guard<std::mutex> l(mu_);
  return state_.processes();
}

std::vector<RangeDescriptor> MetaStateMachine::Ranges() const {
  std::lock_guard<std::mutex> l(mu_);
  return state_.ranges().All();
}

std::map<RangeId, SplitOrder> MetaStateMachine::SplitOrders() const {
  std::lock_guard<std::mutex> l(mu_);
  return state_.split_orders();
}

raft::Result<std::unique_ptr<RangesMode>> RangesMode::Start(RangesOptions options) {
  options.host.data_dir = options.data + "/host";
  options.host.self = options.self.id;
  std::unique_ptr<RangesMode> rm(new RangesMode(std::move(options)));
  RangesOptions& o = rm->opts_;
  rm->fresh_ = !std::filesystem::exists(o.host.data_dir);
  const bool restore = rm->fresh_ && !o.restore_from.empty();
  const bool bootstrap = rm->fresh_ && (o.shards >= 2 || restore);
  if (!restore)
    if (raft::Status s = RestoreCutShort(o.data); !s.ok()) return s;
  if (restore) {
    if (raft::Status s =
            WriteSmallFile(o.data, std::string(kRestoringMarker), o.restore_from + "\n");
        !s.ok())
      return s;
  } else if (bootstrap) {
    if (raft::Status s = WriteShards(o.data, o.shards); !s.ok()) return s;
  } else {
    o.shards = ReadShards(o.data);  // 0 on a joiner: it never writes the directory
  }
  // Published by the meta range's leader unless the directory is there (a bootstrap
  // that crashed before publishing it finishes at the restart).
  if (!restore && o.shards >= 2) rm->bootstrap_ranges_ = BootstrapRanges(o.shards, {o.self.id});
  for (const auto& [id, addr] : ReadPeers(o.data))
    if (id != o.self.id) o.host.peers.emplace(id, addr);
  auto host = raft::Host::Start(o.host);
  if (!host.ok()) return host.status();
  rm->host_ = std::move(host).value();
  std::vector<raft::NodeId> voters;
  if (bootstrap) voters.push_back(o.self.id);
  if (raft::Status s = rm->host_->CreateGroup(kMetaRange, voters, &rm->meta_); !s.ok()) return s;
  if (restore)
    if (raft::Status s = rm->RestoreRanges(); !s.ok()) return s;
  rm->Log(raft::LogLevel::kInfo,
          "ranges mode started (experimental: ranges split, each on every node)",
          {{"start", restore      ? "restore"
                     : bootstrap  ? "bootstrap"
                     : rm->fresh_ ? "join"
                                  : "resume"},
           {"shards", std::to_string(o.shards)}});
  return rm;
}

RangesMode::~RangesMode() { Stop(); }

void RangesMode::Stop() {
  if (stopped_.exchange(true)) return;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (auto& [id, sm] : sms_) sm->Interrupt();  // a stalled Apply must not block Stop
  }
  if (host_) host_->Stop();
  std::unique_lock<std::shared_mutex> l(mu_);
  for (auto& [id, sm] : sms_) sm->Close();
}

raft::Status RestoreCutShort(const std::string& data) {
  if (!fs::Exists(data + "/" + std::string(kRestoringMarker))) return raft::Status::Ok();
  return raft::Status(raft::ErrorCode::kInvalidArgument,
                      "a -restore was cut short in " + data +
                          " (the file 'restoring' is there): remove the directory's contents and "
                          "restore again");
}

std::pair<std::size_t, std::size_t> RangesMode::HandOverLeaderships(
    std::chrono::milliseconds limit) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t pending = 0, handed = 0;
  };
  auto wait = std::make_shared<Wait>();  // outlives this call: a late callback finds it
  std::size_t led = 0;
  for (const raft::GroupStatusInfo& st : host_->GroupStatuses()) {
    if (st.role != raft::Role::kLeader) continue;
    ++led;
    raft::NodeId best = raft::kNoNode;
    raft::Index best_match = 0;
    for (const auto& [p, match] : st.match)
      if (p != self() && Has(st.voters, p) && (best == raft::kNoNode || match > best_match)) {
        best = p;
        best_match = match;
      }
    if (best == raft::kNoNode) continue;  // the only voter
    {
      std::lock_guard<std::mutex> l(wait->mu);
      ++wait->pending;
    }
    host_->TransferLeadership(st.group, best, limit, [wait](raft::Status s) {
      std::lock_guard<std::mutex> l(wait->mu);
      --wait->pending;
      if (s.ok()) ++wait->handed;
      wait->cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> l(wait->mu);
  wait->cv.wait_for(l, limit + std::chrono::milliseconds(100), [&] { return wait->pending == 0; });
  return {wait->handed, led};
}

std::optional<RangesMode::Route> RangesMode::RouteKey(std::string_view key) {
  for (int attempt = 0;; ++attempt) {
    {
      std::shared_lock<std::shared_mutex> l(mu_);
      const RangeDescriptor* d = map_.Lookup(key);
      if (d == nullptr) return std::nullopt;
      auto it = sms_.find(d->id);
      RocksStateMachine* sm = it == sms_.end() ? nullptr : it->second.get();
      // A split applied here moved the key: the routes catch up with it first.
      if (sm == nullptr || sm->Owns(key) || attempt == 2) return Route{d->id, sm};
    }
    RefreshRoutes();
  }
}

std::vector<RangeDescriptor> RangesMode::Directory() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  return map_.All();
}

RocksStateMachine* RangesMode::StateMachine(RangeId id) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  auto it = sms_.find(id);
  return it == sms_.end() ? nullptr : it->second.get();
}

std::string RangesMode::HttpAddrOf(raft::NodeId p) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  auto it = processes_.find(p);
  return it == processes_.end() ? "" : it->second.http_addr;
}

std::string RangesMode::NameOf(raft::NodeId p) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  auto it = processes_.find(p);
  return it == processes_.end() ? "" : it->second.name;
}

void RangesMode::Reconcile() {
  if (stopped_) return;
  const std::uint64_t applied = meta_.applied();
  auto processes = meta_.Processes();
  if (applied != seen_applied_) {
    SyncPeers(processes);
    HostRanges(meta_.Ranges());
    std::unique_lock<std::shared_mutex> l(mu_);
    processes_ = processes;
    // Only once every range of the directory is hosted: a failed CreateGroup is retried.
    if (map_.size() == sms_.size()) seen_applied_ = applied;
  }
  // From the meta range: the routes also hold the splits applied here (a restored
  // range's), which a directory not yet published does not.
  const bool have_directory = !meta_.Ranges().empty();
  HostSplits();
  size_seen_ = ApproximateSizeBytes();
  Bootstrap(processes, have_directory);
  ReconcileMembers(processes);
  ReconcileLeaving(processes);
  BalanceLeaders(processes);
  const std::vector<RangeDescriptor> directory = meta_.Ranges();
  ExecuteSplits(directory);
  if (host_->GroupLeader(kMetaRange) == self()) {
    PublishSplits(directory);
    OrderSplits(directory);
  }
}

void RangesMode::BalanceLeaders(const std::map<raft::NodeId, ProcessRecord>& processes) {
  // Every node hosts every range in this version, so each sees every range's leader.
  std::vector<raft::GroupStatusInfo> data;
  for (const raft::GroupStatusInfo& st : host_->GroupStatuses())
    if (st.group != kMetaRange) data.push_back(st);
  if (data.empty() || transferring_) return;
  auto member = [&processes](raft::NodeId p) {
    auto it = processes.find(p);
    return it != processes.end() && it->second.state == ProcessState::kMember;
  };
  // Data ranges led, by every voter that stays (a leaving one hands its ranges over in
  // ReconcileLeaving and takes none).
  std::map<raft::NodeId, std::size_t> led;
  for (const auto& st : data) {
    if (st.leader == raft::kNoNode) return;  // an election is running: wait for it
    for (raft::NodeId v : st.voters)
      if (member(v)) led[v] += 0;
  }
  if (!member(self()) || led.count(self()) == 0) return;
  for (const auto& st : data)
    if (led.count(st.leader)) ++led[st.leader];
  const std::size_t fair = (data.size() + led.size() - 1) / led.size();  // ceil
  if (led[self()] <= fair) return;
  auto fewest = std::min_element(led.begin(), led.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
  if (fewest->first == self() || fewest->second + 1 >= led[self()]) return;
  for (const auto& st : data) {
    if (st.leader != self() || !Has(st.voters, fewest->first)) continue;
    transferring_ = true;
    const raft::NodeId to = fewest->first;
    host_->TransferLeadership(st.group, to, kChangeTimeout,
                              [this, g = st.group, to](raft::Status s) {
                                Log(s.ok() ? raft::LogLevel::kInfo : raft::LogLevel::kDebug,
                                    "range leadership handed over",
                                    {{"range", std::to_string(g)},
                                     {"to", std::to_string(to)},
                                     {"outcome", s.ToString()}});
                                transferring_ = false;
                              });
    return;
  }
}

void RangesMode::SyncPeers(const std::map<raft::NodeId, ProcessRecord>& processes) {
  const auto peers = host_->Peers();
  for (const auto& [id, p] : processes) {
    if (id == self()) continue;
    auto it = peers.find(id);
    if (it != peers.end() && it->second == p.raft_addr) continue;
    (void)SetPeer(id, p.raft_addr);
  }
  // Gone from the table since the last pass (not merely unknown yet: a joiner's table
  // starts empty while it already dials the peers its join answer named).
  std::vector<raft::NodeId> gone;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (const auto& [id, p] : processes_)
      if (id != self() && processes.count(id) == 0 && peers.count(id) != 0) gone.push_back(id);
  }
  for (raft::NodeId id : gone) {
    raft::Status s = host_->RemovePeer(id);
    if (s.ok()) s = SavePeers();
    Log(s.ok() ? raft::LogLevel::kInfo : raft::LogLevel::kWarn, "peer forgotten (left the cluster)",
        {{"peer", std::to_string(id)}, {"outcome", s.ToString()}});
  }
}

raft::Status RangesMode::SavePeers() {
  std::string lines;
  for (const auto& [id, addr] : host_->Peers())
    lines.append(std::to_string(id)).append(" ").append(addr).append("\n");
  return WriteSmallFile(opts_.data, "peers", lines);
}

raft::Status RangesMode::SetPeer(raft::NodeId p, const std::string& raft_addr) {
  raft::Status s = host_->SetPeer(p, raft_addr);
  if (s.ok()) s = SavePeers();
  if (!s.ok())
    Log(raft::LogLevel::kWarn, "cannot set a peer",
        {{"peer", std::to_string(p)}, {"error", s.ToString()}});
  return s;
}

void RangesMode::HostRanges(const std::vector<RangeDescriptor>& ds) {
  {
    std::unique_lock<std::shared_mutex> l(mu_);
    if (map_.Update(ds)) ++routes_version_;
  }
  for (const RangeDescriptor& d : ds) HostRange(d);
}

void RangesMode::HostRange(const RangeDescriptor& d) {
  if (StateMachine(d.id) != nullptr || stopped_) return;
  std::unique_ptr<RocksStateMachine> sm = OpenRange(d.id);
  if (sm == nullptr) return;
  const std::vector<raft::GroupId> logged = host_->LoggedGroups();
  const bool in_log = std::find(logged.begin(), logged.end(), d.id) != logged.end();
  const std::optional<RangeDescriptor> span = sm->Range();
  const std::vector<raft::NodeId> split_voters = sm->SplitVoters();
  const char* how = "join";
  raft::Status s;
  if (in_log) {
    how = "resume";
    s = host_->CreateGroup(d.id, {}, sm.get());
  } else if (span && span->id == d.id && sm->OriginIndex() > 0 &&
             sm->AppliedIndex() == sm->OriginIndex() && Has(split_voters, self())) {
    // The state a split left here, not started yet: every replica the split named
    // starts the group from the same state at the split's index.
    how = "split";
    s = host_->CreateGroupFromState(d.id, split_voters, sm.get(), sm->OriginIndex());
  } else if (opts_.shards >= 2 && d.generation == 1 &&
             d.id < kFirstDataRange + static_cast<RangeId>(opts_.shards) &&
             Has(d.replicas, self())) {
    // A static range of the bootstrap, on the node that bootstrapped: its replicas are
    // the bootstrap's voters.
    how = "bootstrap";
    s = host_->CreateGroup(d.id, d.replicas, sm.get());
  } else {
    s = host_->CreateGroup(d.id, {}, sm.get());  // joins: its leader adds it
  }
  if (!s.ok()) {
    Log(raft::LogLevel::kError, "cannot host a range",
        {{"range", std::to_string(d.id)}, {"error", s.ToString()}});
    return;
  }
  std::unique_lock<std::shared_mutex> l(mu_);
  sms_[d.id] = std::move(sm);
  Log(raft::LogLevel::kInfo, "range hosted",
      {{"range", std::to_string(d.id)}, {"start", d.start}, {"end", d.end}, {"how", how}});
}

std::unique_ptr<RocksStateMachine> RangesMode::OpenRange(RangeId id) {
  const std::string dir = opts_.data + "/ranges/" + std::to_string(id);
  if (raft::Status s = fs::MakeDirs(dir); !s.ok()) {
    Log(raft::LogLevel::kError, "cannot create a range's directory", {{"error", s.ToString()}});
    return nullptr;
  }
  auto opened = RocksStateMachine::Open(dir, opts_.rocks);
  if (!opened.ok()) {
    Log(raft::LogLevel::kError, "cannot open a range's state machine",
        {{"range", std::to_string(id)}, {"error", opened.status().ToString()}});
    return nullptr;
  }
  std::unique_ptr<RocksStateMachine> sm = std::move(opened).value();
  if (opts_.on_applied) sm->SetAppliedListener(opts_.on_applied);
  sm->SetSplitDir(
      [data = opts_.data](std::uint64_t g) { return data + "/ranges/" + std::to_string(g); });
  return sm;
}

raft::Status RangesMode::RestoreRanges() {
  const std::string dir = opts_.data + "/restore";
  (void)fs::RemoveAll(dir);
  if (raft::Status s = fs::MakeDirs(dir); !s.ok()) return s;
  // Each part restored as soon as it is read and checked, its copy removed then: the
  // restore needs room for the ranges' DBs and one part.
  auto parts = ExtractRangesBackup(opts_.restore_from, dir, [&](const RangesBackupPart& p) {
    std::unique_ptr<RocksStateMachine> sm = OpenRange(p.range.id);
    if (sm == nullptr)
      return raft::Status(raft::ErrorCode::kIOError,
                          "cannot open range " + std::to_string(p.range.id) + " (see the log)");
    auto meta = raft::RestoreBackup(p.file, sm.get());
    if (!meta.ok()) return meta.status();
    if (!sm->HoldsSpan(p.range))
      return raft::Status(raft::ErrorCode::kCorruption,
                          "range " + std::to_string(p.range.id) +
                              ": the state restored from the backup owns another span than its "
                              "descriptor says");
    if (raft::Status s = host_->CreateGroupFromState(p.range.id, {self()}, sm.get(), meta->index);
        !s.ok())
      return s;
    (void)fs::RemoveAll(p.file);
    Log(raft::LogLevel::kInfo, "range restored",
        {{"range", std::to_string(p.range.id)},
         {"start", p.range.start},
         {"end", p.range.end},
         {"index", std::to_string(meta->index)}});
    RangeDescriptor d = p.range;
    d.replicas = {self()};
    bootstrap_ranges_.push_back(std::move(d));
    std::unique_lock<std::shared_mutex> l(mu_);
    sms_[p.range.id] = std::move(sm);
    return raft::Status::Ok();
  });
  (void)fs::RemoveAll(dir);
  return parts.status();
}

void RangesMode::RefreshRoutes() {
  std::vector<RangeDescriptor> ds;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (const auto& [id, sm] : sms_)
      if (auto rec = sm->LastSplit()) {
        ds.push_back(rec->left);
        ds.push_back(rec->right);
      }
  }
  if (ds.empty()) return;
  std::unique_lock<std::shared_mutex> l(mu_);
  // RangeMap keeps the newest generation of each range, whatever the order.
  const std::vector<RangeDescriptor> before = map_.All();
  map_.Update(ds);
  if (map_.All() != before) ++routes_version_;
}

void RangesMode::HostSplits() {
  std::vector<std::pair<RangeId, SplitRecord>> splits;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (const auto& [id, sm] : sms_)
      if (auto rec = sm->LastSplit()) splits.emplace_back(id, *rec);
  }
  if (splits.empty()) return;
  RefreshRoutes();
  for (const auto& [id, rec] : splits) {
    HostRange(rec.right);
    if (compacted_.count(rec.right.id) != 0) continue;
    RocksStateMachine* right = StateMachine(rec.right.id);
    if (right == nullptr) continue;
    Settle(id, StateMachine(id));
    Settle(rec.right.id, right);
    Log(raft::LogLevel::kInfo, "range split",
        {{"range", std::to_string(id)},
         {"at", rec.right.start},
         {"new_range", std::to_string(rec.right.id)},
         {"index", std::to_string(rec.index)}});
  }
}

void RangesMode::ProposeMeta(const MetaCommand& c, const char* what) {
  if (proposing_.exchange(true)) return;
  host_->Propose(kMetaRange, EncodeMetaCommand(c), kChangeTimeout,
                 [this, what](raft::Result<std::string> r) {
                   if (!r.ok() || !r->empty())
                     Log(raft::LogLevel::kInfo, "meta range proposal not applied",
                         {{"what", what}, {"outcome", r.ok() ? *r : r.status().ToString()}});
                   proposing_ = false;
                 });
}

void RangesMode::OrderSplits(const std::vector<RangeDescriptor>& directory) {
  const auto orders = meta_.SplitOrders();
  const auto now = std::chrono::steady_clock::now();
  // Orders not carried out in time (their range refused the split, or its leader is
  // gone): cancelled, so another may come. A split in flight that lands later is still
  // published: the order only allocated its id.
  for (auto it = orders_seen_.begin(); it != orders_seen_.end();)
    it = orders.count(it->first) ? std::next(it) : orders_seen_.erase(it);
  for (const auto& [range, o] : orders) {
    auto [it, fresh] = orders_seen_.try_emplace(range, o.generation, now);
    if (fresh || it->second.first != o.generation) {
      it->second = {o.generation, now};
      continue;
    }
    if (now - it->second.second < kSplitOrderTimeout) continue;
    MetaCommand c;
    c.op = MetaCommand::Op::kCancelSplit;
    c.order = o;
    ProposeMeta(c, "cancel-split");
    return;
  }
  if (opts_.range_max_bytes == 0 && opts_.range_max_writes == 0) return;
  for (const RangeDescriptor& d : directory) {
    if (orders.count(d.id)) continue;
    RocksStateMachine* sm = StateMachine(d.id);
    if (sm == nullptr) continue;
    // This replica holds the range as the directory describes it (not behind it, not
    // past it with a split the directory has yet to show).
    if (!sm->HoldsSpan(d)) continue;
    std::optional<std::string> key;
    bool by_load = false;
    if (opts_.range_max_bytes != 0 && sm->SpanSizeBytes() > opts_.range_max_bytes) {
      auto middle = sm->MiddleKey();
      if (middle.ok()) key = *middle;
    }
    if (!key && opts_.range_max_writes != 0) {
      key = sm->LoadSplitKey(opts_.range_max_writes);
      by_load = true;
    }
    if (!key || !d.Contains(*key) || *key == d.start || key->size() > kMaxRangeKeyBytes) continue;
    if (proposing_.load()) return;  // the next pass
    MetaCommand c;
    c.op = MetaCommand::Op::kOrderSplit;
    c.order.range = d.id;
    c.order.generation = d.generation;
    c.order.key = *key;
    Log(raft::LogLevel::kInfo, "range split ordered",
        {{"range", std::to_string(d.id)}, {"at", *key}, {"by", by_load ? "load" : "size"}});
    ProposeMeta(c, "order-split");
    return;
  }
}

void RangesMode::Settle(RangeId id, RocksStateMachine* sm) {
  if (sm == nullptr || compacted_.count(id) != 0) return;
  if (!sm->LastSplit() && sm->OriginIndex() == 0) return;  // never split: nothing shared
  if (raft::Status c = sm->CompactOutsideSpan(); !c.ok()) {
    Log(raft::LogLevel::kWarn, "cannot compact a split range", {{"error", c.ToString()}});
    return;
  }
  compacted_.insert(id);
}

void RangesMode::PublishSplits(const std::vector<RangeDescriptor>& directory) {
  std::vector<SplitRecord> splits;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (const auto& [id, sm] : sms_)
      if (auto rec = sm->LastSplit()) splits.push_back(*rec);
  }
  for (const SplitRecord& rec : splits) {
    auto it = std::find_if(directory.begin(), directory.end(),
                           [&](const RangeDescriptor& d) { return d.id == rec.left.id; });
    if (it != directory.end() && it->generation >= rec.left.generation) continue;
    MetaCommand c;
    c.op = MetaCommand::Op::kPutDescriptors;
    c.descriptors = {rec.left, rec.right};
    ProposeMeta(c, "publish a split");
    return;
  }
}

void RangesMode::ExecuteSplits(const std::vector<RangeDescriptor>& directory) {
  const auto orders = meta_.SplitOrders();
  const auto now = std::chrono::steady_clock::now();
  for (auto it = split_proposed_.begin(); it != split_proposed_.end();)
    it = orders.count(it->first) ? std::next(it) : split_proposed_.erase(it);
  for (const auto& [range, o] : orders) {
    if (host_->GroupLeader(range) != self()) continue;
    auto d = std::find_if(directory.begin(), directory.end(),
                          [&](const RangeDescriptor& x) { return x.id == range; });
    if (d == directory.end() || d->generation != o.generation) continue;
    RocksStateMachine* sm = StateMachine(range);
    if (sm == nullptr) continue;
    if (auto span = sm->Range(); span && span->generation != o.generation) continue;  // done
    auto [it, fresh] = split_proposed_.try_emplace(range, o.generation, now);
    if (!fresh && it->second.first == o.generation && now - it->second.second < kSplitRetry)
      continue;
    it->second = {o.generation, now};
    // The new range's voters: this range's, as its leader sees them now. A change of
    // membership the split overtakes is mended by ReconcileMembers afterwards, as for
    // any range (a voter removed meanwhile never hosts it and is removed from it, one
    // added joins it empty); every replica reads the same voters from the command.
    auto st = host_->GroupStatus(range);
    if (!st.ok() || st->voters.empty()) continue;
    Command c;
    c.op = Op::kSplit;
    c.key = o.key;
    c.value = EncodeDescriptor(*d);
    c.new_range = o.new_range;
    c.voters.assign(st->voters.begin(), st->voters.end());
    host_->Propose(range, EncodeCommand(c), kChangeTimeout,
                   [this, range, o](raft::Result<std::string> r) {
                     CommandResult result;
                     const bool decoded = r.ok() && DecodeResult(*r, &result);
                     Log(decoded && result.ok ? raft::LogLevel::kInfo : raft::LogLevel::kWarn,
                         "range split proposed",
                         {{"range", std::to_string(range)},
                          {"new_range", std::to_string(o.new_range)},
                          {"outcome", !r.ok()     ? r.status().ToString()
                                      : !decoded  ? "malformed result"
                                      : result.ok ? "applied"
                                                  : result.error}});
                   });
  }
}

void RangesMode::OrderSplit(const std::string& key, std::chrono::milliseconds timeout,
                            raft::Host::Callback done) {
  std::optional<RangeDescriptor> d;
  for (const RangeDescriptor& x : meta_.Ranges())
    if (x.Contains(key)) d = x;
  if (!d) {
    done(raft::Status(raft::ErrorCode::kUnavailable, "the range directory is not known yet"));
    return;
  }
  MetaCommand c;
  c.op = MetaCommand::Op::kOrderSplit;
  c.order.range = d->id;
  c.order.generation = d->generation;
  c.order.key = key;
  host_->Propose(kMetaRange, EncodeMetaCommand(c), timeout, std::move(done));
}

void RangesMode::Bootstrap(const std::map<raft::NodeId, ProcessRecord>& processes,
                           bool have_directory) {
  auto st = host_->GroupStatus(kMetaRange);
  if (!st.ok() || st->role != raft::Role::kLeader || proposing_) return;
  MetaCommand c;
  auto it = processes.find(self());
  if (it == processes.end() || it->second != opts_.self) {
    c.op = MetaCommand::Op::kAddProcess;  // this process, or its new addresses
    c.process = opts_.self;
  } else if (!have_directory && !bootstrap_ranges_.empty()) {
    c.op = MetaCommand::Op::kPutDescriptors;
    c.descriptors = bootstrap_ranges_;
  } else {
    // A restore is done once its directory is in the meta range's log.
    const std::string marker = opts_.data + "/" + std::string(kRestoringMarker);
    if (have_directory && !bootstrap_ranges_.empty() && fs::Exists(marker)) {
      raft::Status s = fs::RemoveAll(marker);
      if (s.ok()) s = fs::FsyncPath(opts_.data);
      if (!s.ok())
        Log(raft::LogLevel::kWarn, "cannot remove the restore's marker", {{"error", s.ToString()}});
      else
        Log(raft::LogLevel::kInfo, "restore done: the directory is in the meta range", {});
    }
    return;
  }
  proposing_ = true;
  host_->Propose(kMetaRange, EncodeMetaCommand(c), kChangeTimeout,
                 [this](raft::Result<std::string> r) {
                   if (!r.ok() || !r->empty())
                     Log(raft::LogLevel::kWarn, "bootstrap step of the meta range not applied",
                         {{"error", r.ok() ? *r : r.status().ToString()}});
                   proposing_ = false;
                 });
}

bool RangesMode::StartChange(RangeId g, const char* what, raft::NodeId p,
                             const std::function<void(raft::Host::Callback)>& start) {
  {
    std::lock_guard<std::mutex> l(changing_mu_);
    if (!changing_.insert(g).second) return false;  // one change per group at a time
  }
  start([this, g, what, p](raft::Result<std::string> r) {
    Log(r.ok() ? raft::LogLevel::kInfo : raft::LogLevel::kDebug, what,
        {{"range", std::to_string(g)},
         {"process", std::to_string(p)},
         {"outcome", r.ok() ? "ok" : r.status().ToString()}});
    std::lock_guard<std::mutex> l(changing_mu_);
    changing_.erase(g);
  });
  return true;
}

std::vector<RangeId> RangesMode::HostedGroups() const {
  std::vector<RangeId> groups{kMetaRange};
  std::shared_lock<std::shared_mutex> l(mu_);
  for (const auto& [id, sm] : sms_) groups.push_back(id);
  return groups;
}

void RangesMode::ReconcileMembers(const std::map<raft::NodeId, ProcessRecord>& processes) {
  for (RangeId g : HostedGroups()) {
    auto st = host_->GroupStatus(g);
    if (!st.ok() || st->role != raft::Role::kLeader) continue;
    raft::NodeId add = raft::kNoNode, promote = raft::kNoNode;
    for (const auto& [id, p] : processes) {
      if (p.state != ProcessState::kMember || id == self()) continue;
      if (Has(st->learners, id)) {
        // Caught up: its log holds what the group has committed.
        for (const auto& [peer, match] : st->match)
          if (peer == id && match + 1 >= st->commit && promote == raft::kNoNode) promote = id;
      } else if (!Has(st->voters, id) && add == raft::kNoNode) {
        add = id;
      }
    }
    if (promote != raft::kNoNode) {
      StartChange(g, "learner promoted", promote, [this, g, promote](raft::Host::Callback cb) {
        host_->PromoteLearner(g, promote, kChangeTimeout, std::move(cb));
      });
    } else if (add != raft::kNoNode) {
      StartChange(g, "learner added", add, [this, g, add](raft::Host::Callback cb) {
        host_->AddLearner(g, add, kChangeTimeout, std::move(cb));
      });
    }
  }
}

void RangesMode::ReconcileLeaving(const std::map<raft::NodeId, ProcessRecord>& processes) {
  std::vector<raft::NodeId> leaving;
  for (const auto& [id, p] : processes)
    if (p.state == ProcessState::kLeaving) leaving.push_back(id);
  if (leaving.empty()) return;
  std::set<raft::NodeId> still_member;  // of some group, as this node sees the groups
  bool meta_leader = false;
  for (RangeId g : HostedGroups()) {
    auto st = host_->GroupStatus(g);
    if (!st.ok()) continue;
    for (raft::NodeId p : leaving)
      if (Has(st->voters, p) || Has(st->learners, p)) still_member.insert(p);
    if (st->role != raft::Role::kLeader) continue;
    if (g == kMetaRange) meta_leader = true;
    for (raft::NodeId p : leaving) {
      if (!Has(st->voters, p) && !Has(st->learners, p)) continue;
      if (p == self()) {
        // A leader cannot remove itself here: it hands the group to a member that stays.
        raft::NodeId to = raft::kNoNode;
        for (raft::NodeId v : st->voters)
          if (v != self() && processes.count(v) && processes.at(v).state == ProcessState::kMember)
            to = v;
        if (to == raft::kNoNode) continue;
        StartChange(
            g, "leadership handed over (leaving)", to, [this, g, to](raft::Host::Callback cb) {
              host_->TransferLeadership(g, to, kChangeTimeout, [cb](raft::Status s) { cb(s); });
            });
      } else {
        StartChange(g, "leaving process removed", p, [this, g, p](raft::Host::Callback cb) {
          host_->RemoveReplica(g, p, kChangeTimeout, std::move(cb));
        });
      }
      break;  // one change per group and pass
    }
  }
  if (!meta_leader || proposing_) return;
  for (raft::NodeId p : leaving) {
    if (still_member.count(p)) continue;
    MetaCommand c;
    c.op = MetaCommand::Op::kRemoveProcess;
    c.id = p;
    proposing_ = true;
    host_->Propose(kMetaRange, EncodeMetaCommand(c), kChangeTimeout,
                   [this, p](raft::Result<std::string> r) {
                     Log(raft::LogLevel::kInfo, "process removed from the cluster",
                         {{"process", std::to_string(p)},
                          {"outcome", !r.ok()      ? r.status().ToString()
                                      : r->empty() ? "ok"
                                                   : *r}});
                     proposing_ = false;
                   });
    return;
  }
}

void RangesMode::AddProcess(const ProcessRecord& p, std::chrono::milliseconds timeout,
                            raft::Host::Callback done) {
  MetaCommand c;
  c.op = MetaCommand::Op::kAddProcess;
  c.process = p;
  host_->Propose(kMetaRange, EncodeMetaCommand(c), timeout, std::move(done));
}

void RangesMode::Leave(raft::NodeId p, std::chrono::milliseconds timeout,
                       raft::Host::Callback done) {
  MetaCommand c;
  c.op = MetaCommand::Op::kSetProcessState;
  c.id = p;
  c.state = ProcessState::kLeaving;
  host_->Propose(kMetaRange, EncodeMetaCommand(c), timeout, std::move(done));
}

std::uint64_t RangesMode::ApproximateSizeBytes() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  std::uint64_t n = 0;
  for (const auto& [id, sm] : sms_) n += sm->ApproximateSizeBytes();
  return n;
}

std::string RangesMode::Failure() const {
  if (std::string f = host_->Failure(); !f.empty()) return f;
  std::shared_lock<std::shared_mutex> l(mu_);
  for (const auto& [id, sm] : sms_)
    if (std::string f = sm->Failure(); !f.empty()) return "range " + std::to_string(id) + ": " + f;
  return "";
}

}  // namespace kv
