// Terse constructors for hand-written histories in the raft_lin tests. Header-only.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "kv_history.h"

namespace raft::lin::test {

inline const std::optional<std::string> kAbsent = std::nullopt;

inline Operation Done(ClientId c, Tick invoke, Tick complete, Input in, Output out) {
  return Operation{c, invoke, complete, std::move(in), std::move(out)};
}

inline Operation Put(ClientId c, Tick invoke, Tick complete, std::string key, std::string v) {
  return Done(c, invoke, complete, Input::Put(std::move(key), std::move(v)), Output::Ack());
}

inline Operation Get(ClientId c, Tick invoke, Tick complete, std::string key,
                     std::optional<std::string> read) {
  return Done(c, invoke, complete, Input::Get(std::move(key)), Output::Value(std::move(read)));
}

inline Operation Cas(ClientId c, Tick invoke, Tick complete, std::string key,
                     std::optional<std::string> expected, std::string v, bool swapped) {
  return Done(c, invoke, complete, Input::Cas(std::move(key), std::move(expected), std::move(v)),
              Output::Swapped(swapped));
}

inline Operation Del(ClientId c, Tick invoke, Tick complete, std::string key) {
  return Done(c, invoke, complete, Input::Delete(std::move(key)), Output::Ack());
}

// An operation whose outcome the client never learned.
inline Operation Unknown(ClientId c, Tick invoke, Input in) {
  return Operation{c, invoke, std::nullopt, std::move(in), Output{}};
}

}  // namespace raft::lin::test
