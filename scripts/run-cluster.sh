#!/usr/bin/env bash
# The README's run command: builds kvserver and runs a 3-node local cluster in the
# foreground. Ctrl-C sends SIGTERM to all three nodes and waits for them to exit.
#
#   node0  HTTP 127.0.0.1:3000  Raft 127.0.0.1:4000  bootstraps the cluster
#   node1  HTTP 127.0.0.1:3001  Raft 127.0.0.1:4001  joins via 127.0.0.1:3000
#   node2  HTTP 127.0.0.1:3002  Raft 127.0.0.1:4002  joins via 127.0.0.1:3000
#
#   scripts/run-cluster.sh           start (keeps the data of an earlier run)
#   scripts/run-cluster.sh --clean   wipe the data directories first
#   scripts/run-cluster.sh --tls     TLS on both ports (and --clean --tls)
#   scripts/run-cluster.sh --auth    authentication (-auth-file; combines with --tls)
#
# --tls: certificates from scripts/make-certs.sh in <data>/certs (made on first use;
# RAFT_CERTS_DIR overrides). Every node serves HTTPS with client certificates required
# (-cert-file/-key-file/-trusted-ca-file, -client-cert-auth), speaks TLS to the other
# nodes on its Raft port (-peer-cert-file/-peer-key-file/-peer-trusted-ca-file, the same
# node certificate), and joins over https:// (tls_flags below lists a node's flags).
# kill -HUP a node to reload both ports' certificates.
#
# --auth: secrets in <data>/secrets (made on first use, mode 600): tokens admin.token,
# writer.token and reader.token listed in the auth file with their roles (plus, with
# --tls, the certificates' names: cn:admin, cn:writer, cn:reader, cn:node0..2), the Raft
# peer secret; every node runs with -auth-file, -peer-secret-file and -join-token-file
# (the admin token). Use a token with kvctl -token-file or KVCTL_TOKEN (auth_flags below).
#
# Data lives in <repo>/data/<id> (RAFT_DATA_DIR overrides <repo>/data). Output of each
# node is prefixed with its id. KVSERVER=path runs that binary instead of building one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${RAFT_BUILD_DIR:-$ROOT/build}"
DATA_DIR="${RAFT_DATA_DIR:-$ROOT/data}"
START_TIMEOUT_S=30  # per node: until its HTTP port accepts connections
STOP_TIMEOUT_S=20   # after SIGTERM, before SIGKILL

clean=0
tls=0
auth=0
for arg in "$@"; do
  case "$arg" in
    --clean) clean=1 ;;
    --tls) tls=1 ;;
    --auth) auth=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run-cluster: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
CERTS_DIR="${RAFT_CERTS_DIR:-$DATA_DIR/certs}"
SECRETS_DIR="$DATA_DIR/secrets"

# tls_flags NODE: the kvserver flags of NODE under --tls, one per line (none without it).
tls_flags() {
  [ "$tls" -eq 1 ] || return 0
  local node=$1
  printf '%s\n' -cert-file "$CERTS_DIR/$node.crt" -key-file "$CERTS_DIR/$node.key" \
    -trusted-ca-file "$CERTS_DIR/ca.crt" -client-cert-auth \
    -peer-cert-file "$CERTS_DIR/$node.crt" -peer-key-file "$CERTS_DIR/$node.key" \
    -peer-trusted-ca-file "$CERTS_DIR/ca.crt"
}

# auth_flags: the kvserver flags under --auth, one per line (none without it).
auth_flags() {
  [ "$auth" -eq 1 ] || return 0
  printf '%s\n' -auth-file "$SECRETS_DIR/auth" -peer-secret-file "$SECRETS_DIR/peer.secret" \
    -join-token-file "$SECRETS_DIR/admin.token"
}

# make_secrets: the tokens, the auth file and the peer secret, once.
make_secrets() {
  [ -f "$SECRETS_DIR/auth" ] && return 0
  mkdir -p "$SECRETS_DIR"
  chmod 700 "$SECRETS_DIR"
  (
    umask 077
    for who in admin writer reader; do openssl rand -hex 32 >"$SECRETS_DIR/$who.token"; done
    openssl rand -hex 32 >"$SECRETS_DIR/peer.secret"
    {
      echo "# made by scripts/run-cluster.sh --auth; format: docs/operations.md, Authentication"
      echo "$(cat "$SECRETS_DIR/admin.token") admin"
      echo "$(cat "$SECRETS_DIR/writer.token") readwrite"
      echo "$(cat "$SECRETS_DIR/reader.token") read"
      if [ "$tls" -eq 1 ]; then
        printf 'cn:%s admin\n' admin node0 node1 node2
        echo "cn:writer readwrite"
        echo "cn:reader read"
      fi
    } >"$SECRETS_DIR/auth"
  )
  echo "run-cluster: tokens and auth file in $SECRETS_DIR"
}

# ---- the binary
if [ -n "${KVSERVER:-}" ]; then
  BIN=$KVSERVER
else
  if [ ! -f "$ROOT/kvserver/CMakeLists.txt" ]; then
    echo "run-cluster: kvserver is not written yet (no kvserver/ in $ROOT)." >&2
    echo "run-cluster: there is no server to start; libraft alone can be tested with scripts/test.sh." >&2
    exit 1
  fi
  "$ROOT/scripts/install-deps.sh"
  gen=()
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null; then gen=(-G Ninja); fi
  cmake -S "$ROOT" -B "$BUILD_DIR" "${gen[@]}" -DRAFT_BUILD_KVSERVER=ON >/dev/null
  cmake --build "$BUILD_DIR" --target kvserver
  BIN="$BUILD_DIR/kvserver/kvserver"
fi
if [ ! -x "$BIN" ]; then
  echo "run-cluster: no kvserver binary at $BIN" >&2
  exit 1
fi

# ---- ports: refuse to start over something already listening
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 3000 3001 3002 4000 4001 4002; do
  if port_open "$port"; then
    echo "run-cluster: 127.0.0.1:$port is already in use (another cluster running?)" >&2
    exit 1
  fi
done

if [ "$clean" -eq 1 ]; then rm -rf "${DATA_DIR:?}/node0" "$DATA_DIR/node1" "$DATA_DIR/node2"; fi
if [ "$tls" -eq 1 ] && [ ! -f "$CERTS_DIR/node2.crt" ]; then
  "$ROOT/scripts/make-certs.sh" -d "$CERTS_DIR" -n "node0 node1 node2" -c "admin writer reader"
  echo "run-cluster: certificates in $CERTS_DIR (scripts/make-certs.sh)"
fi

if [ "$auth" -eq 1 ]; then make_secrets; fi

# ---- start
ids=()
pids=()

stop_all() {
  trap '' INT TERM
  echo "run-cluster: stopping (SIGTERM to ${pids[*]:-nothing})"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  local deadline=$((SECONDS + STOP_TIMEOUT_S))
  for i in "${!pids[@]}"; do
    while kill -0 "${pids[$i]}" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "run-cluster: ${ids[$i]} did not stop within ${STOP_TIMEOUT_S}s; SIGKILL" >&2
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
    wait "${pids[$i]}" 2>/dev/null || true
  done
  echo "run-cluster: all nodes stopped; data kept in $DATA_DIR"
}

# shellcheck disable=SC2317  # invoked by the trap
on_signal() {
  stop_all
  exit 0
}
trap on_signal INT TERM

# start_node <id> <http port> <raft port> [kvserver args...]
# Each node runs in its own session so that Ctrl-C reaches only this script, which then
# stops the nodes with SIGTERM. Its output goes through sed, which ignores SIGINT so that
# the nodes' last words during shutdown are not lost.
start_node() {
  local id=$1 http=$2 raft=$3
  shift 3
  (umask 077 && mkdir -p "$DATA_DIR/$id")  # 0700: the data is for the owner only
  local tls_args=() auth_args=()
  mapfile -t tls_args < <(tls_flags "$id")
  mapfile -t auth_args < <(auth_flags)
  setsid "$BIN" -id "$id" -laddr "127.0.0.1:$http" -raddr "127.0.0.1:$raft" \
    -data "$DATA_DIR/$id" "${tls_args[@]}" "${auth_args[@]}" "$@" </dev/null > >(trap '' INT; exec sed -u "s/^/[$id] /") 2>&1 &
  ids+=("$id")
  pids+=($!)
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until port_open "$http"; do
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "run-cluster: $id exited during startup" >&2
      stop_all
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "run-cluster: $id did not listen on 127.0.0.1:$http within ${START_TIMEOUT_S}s" >&2
      stop_all
      exit 1
    fi
    sleep 0.2
  done
}

scheme=http
if [ "$tls" -eq 1 ]; then scheme=https; fi
start_node node0 3000 4000
start_node node1 3001 4001 -join "$scheme://127.0.0.1:3000"
start_node node2 3002 4002 -join "$scheme://127.0.0.1:3000"

if [ "$auth" -eq 1 ]; then
  cat <<EOF

run-cluster: authentication on. Every request but /health and /metrics needs a token:
  curl -H "Authorization: Bearer \$(cat $SECRETS_DIR/writer.token)" ...
  kvctl -token-file $SECRETS_DIR/admin.token status
  KVCTL_TOKEN=\$(cat $SECRETS_DIR/reader.token) kvctl get hello
EOF
fi
if [ "$tls" -eq 1 ]; then
  cat <<EOF

run-cluster: 3 nodes up over HTTPS, TLS between them (node0 127.0.0.1:3000, node1 :3001, node2 :3002). Try:
  C="--cacert $CERTS_DIR/ca.crt --cert $CERTS_DIR/writer.crt --key $CERTS_DIR/writer.key"
  curl \$C -XPUT https://127.0.0.1:3000/kv/hello -d world
  curl \$C https://127.0.0.1:3001/kv/hello
  kvctl -addr https://127.0.0.1:3000 -cacert $CERTS_DIR/ca.crt \\
    -cert $CERTS_DIR/writer.crt -key $CERTS_DIR/writer.key status
Ctrl-C stops all three.

EOF
else
  cat <<'EOF'

run-cluster: 3 nodes up (node0 127.0.0.1:3000, node1 :3001, node2 :3002). Try:
  curl -XPUT 127.0.0.1:3000/kv/hello -d world     # write a key
  curl 127.0.0.1:3001/kv/hello                    # read it back through another node
  curl 127.0.0.1:3000/status                      # this node's Raft status
Ctrl-C stops all three.

EOF
fi

# ---- run until Ctrl-C, or until a node dies on its own
rc=0
wait -n "${pids[@]}" || rc=$?
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    echo "run-cluster: ${ids[$i]} exited on its own (status $rc); stopping the others" >&2
  fi
done
stop_all
exit 1
