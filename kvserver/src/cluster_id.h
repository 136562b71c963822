// The cluster id (issue 15, "Recovery and identity"): generated when a node bootstraps a
// cluster, learned from the cluster when a node joins, stored in <data>/cluster-id and
// checked in every Raft handshake, so that nodes of two clusters never exchange a message
// (raft::NodeOptions::cluster_id). Shown in /status. Stateless; any thread.
#pragma once

#include <string>
#include <string_view>

#include "raft/status.h"

namespace kv {

// 1 to 64 characters of A-Z a-z 0-9 . _ - (what -cluster-id accepts).
bool ValidClusterId(std::string_view id);

// The Raft id of a joiner until it has learned its cluster's: not a valid id, so no
// cluster's handshake matches it and the node talks to nobody.
inline constexpr const char* kUnknownClusterId = "(not known yet: joining)";
// The id of every cluster from before ids were generated: what a data directory without
// a cluster-id file gets when its node is already a member.
inline constexpr const char* kLegacyClusterId = "kvserver";

// A new id: 32 lowercase hex digits from OpenSSL's RAND_bytes (128 random bits).
raft::Result<std::string> NewClusterId();

// <data_dir>/cluster-id: "" when the file does not exist; kCorruption naming the file
// when it does not hold a valid id (one line).
raft::Result<std::string> ReadClusterId(const std::string& data_dir);

// Writes <data_dir>/cluster-id durably (a temporary file, fsync, rename, fsync of the
// directory).
raft::Status WriteClusterId(const std::string& data_dir, const std::string& id);

}  // namespace kv
