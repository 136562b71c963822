#!/usr/bin/env bash
# kvserver vs etcd on this machine, measured by the same client (bench/kvbench), and etcd
# also through its native gRPC API (bench/etcd-grpc).
#
#   scripts/bench-compare.sh                 the full run (about 20 minutes plus the build)
#   scripts/bench-compare.sh --duration 3    shorter runs (say so when quoting the numbers)
#
# Steps: build Release (build-release/: kvserver, kvbench, write_probe, fsync_probe,
# rtt_probe, connflood; bench/etcd-grpc/build.sh builds etcd-grpc, installing golang-go and
# golang-etcd-server-dev if missing); install Debian's etcd-server if /usr/bin/etcd and
# gnuplot-nox if gnuplot is missing; measure the floors (fdatasync of a 4 KiB append on the
# data disk, loopback TCP round trip); for kvserver and then etcd: start a 3-node cluster
# on loopback (data on the local disk, default settings; etcd with heartbeat 100 ms /
# election 1000 ms), preload the keys, run writes and linearizable reads at 1, 16 and 64
# connections against the leader (100-byte values; etcd once through its JSON gateway with
# kvbench and once through gRPC with etcd-grpc; every cell also records the CPU time of the
# three server processes), a 60 s stability run of writes at 64 connections (kvserver),
# then the failover trials (kill -9 the leader, time until a write succeeds on a survivor);
# stop the cluster; for kvserver, then the front-door runs on a new cluster (writes at 64
# connections with and without 10,000 idle + 1,000 slowloris connections open on the
# leader (bench/connflood), /health latency during that flood, the leader's RSS growth;
# then 8 concurrent listings of 100 x 1 MiB values and the leader's RSS growth), then the
# snapshot memory run (scripts/bench-snapshot-memory.sh: RSS growth while a 1 GiB snapshot
# streams). Prints a table with both systems, their ratios, CPU per request, the floors
# and the targets of issues 7 and 12, draws the matrix (gnuplot) into
# results/bench-matrix.svg, and appends the table to docs/performance.md with the date and
# machine (a run of both systems also replaces docs/bench-matrix.svg).
#
# Options:
#   --duration S        measured seconds per matrix cell (default 10)
#   --warmup S          unmeasured seconds before each cell (default 2)
#   --trials N          failover trials per configuration (default 10; 0 skips failover)
#   --stability S       kvserver only: seconds of writes at 64 connections after the matrix,
#                       checking that the leader and its term stay put (default 60; 0 skips)
#   --snapshot-gb G     kvserver only: scripts/bench-snapshot-memory.sh with G GiB of state,
#                       the leader's RSS growth while the snapshot streams to a new member
#                       (default 1; 0 skips)
#   --flood-idle N      kvserver only: idle keep-alive connections held open on the leader
#                       during the flood run (default 10000)
#   --flood-slow M      kvserver only: slowloris connections during the flood run (default
#                       1000; --flood-idle 0 --flood-slow 0 skips the flood run)
#   --list-values N     kvserver only: 1 MiB values written for the listing memory run
#                       (default 100; 0 skips it)
#   --list-seconds S    how long the 8 concurrent listings repeat (default 5)
#   --no-grpc           measure etcd through its JSON gateway only (no Go toolchain needed)
#   --keys N            key space, preloaded (default 10000)
#   --conns LIST        connection counts (default 1,16,64)
#   --only SYSTEM       kvserver or etcd (the other's columns stay empty)
#   --port-base P       kvserver HTTP P..P+2, Raft P+100.., etcd client P+200.., peer P+300..
#                       (default 23000)
#   --build-dir DIR     Release build tree (default <repo>/build-release)
#   --data-dir DIR      where the clusters keep their data (default a new directory under
#                       the build tree; must be on the disk being measured, not tmpfs)
#   --skip-build        use the binaries already in the build tree
#   --skip-matrix       only the floors and the failover trials
#   --no-append         do not append the run to docs/performance.md
#   --keep              keep the data directories and logs
# Environment:
#   KVSERVER=PATH       run that kvserver binary instead of the one built here
#   RAFT_BUILD_LOCK=F   wrap builds and each measured run in `flock F` (the front-door runs
#                       hold it throughout), so that a build of someone else sharing the
#                       machine never overlaps a measurement
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION=10
WARMUP=2
TRIALS=10
STABILITY=60
SNAPSHOT_GB=1
KEYS=10000
FLOOD_IDLE=10000
FLOOD_SLOW=1000
LIST_VALUES=100
LIST_SECONDS=5
GRPC=1
CONNS="1,16,64"
ONLY=""
PORT_BASE=23000
BUILD_DIR="$ROOT/build-release"
DATA_PARENT=""
SKIP_BUILD=0
SKIP_MATRIX=0
APPEND=1
KEEP=0
VALUE_BYTES=100
START_TIMEOUT_S=60    # a cluster until every member is healthy
STOP_TIMEOUT_S=15     # SIGTERM until SIGKILL
FAILOVER_TIMEOUT_S=30 # one trial's write probe
CATCHUP_TIMEOUT_S=30  # a restarted member until it has caught up
FLOOD_RATE=2000       # connflood: new connections per second while ramping up
FLOOD_SETTLE_S=20     # after the ramp, how long the flood may take to be fully open
LIST_CLIENTS=8        # concurrent listings

die() { echo "bench-compare: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=${2:?}; shift 2 ;;
    --warmup) WARMUP=${2:?}; shift 2 ;;
    --trials) TRIALS=${2:?}; shift 2 ;;
    --stability) STABILITY=${2:?}; shift 2 ;;
    --snapshot-gb) SNAPSHOT_GB=${2:?}; shift 2 ;;
    --keys) KEYS=${2:?}; shift 2 ;;
    --flood-idle) FLOOD_IDLE=${2:?}; shift 2 ;;
    --flood-slow) FLOOD_SLOW=${2:?}; shift 2 ;;
    --list-values) LIST_VALUES=${2:?}; shift 2 ;;
    --list-seconds) LIST_SECONDS=${2:?}; shift 2 ;;
    --no-grpc) GRPC=0; shift ;;
    --conns) CONNS=${2:?}; shift 2 ;;
    --only) ONLY=${2:?}; shift 2 ;;
    --port-base) PORT_BASE=${2:?}; shift 2 ;;
    --build-dir) BUILD_DIR=${2:?}; shift 2 ;;
    --data-dir) DATA_PARENT=${2:?}; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --skip-matrix) SKIP_MATRIX=1; shift ;;
    --no-append) APPEND=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench-compare: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$ONLY" in "" | kvserver | etcd) ;; *) die "--only must be kvserver or etcd" ;; esac
IFS=',' read -r -a CONN_LIST <<<"$CONNS"

LOCK="${RAFT_BUILD_LOCK:-}"
LOCK_FD=""  # set while lock_hold holds the lock across several commands
locked() { if [ -n "$LOCK" ] && [ -z "$LOCK_FD" ]; then flock "$LOCK" "$@"; else "$@"; fi; }
lock_hold() { [ -n "$LOCK" ] || return 0; exec {LOCK_FD}>>"$LOCK"; flock "$LOCK_FD"; }
lock_release() { [ -n "$LOCK_FD" ] || return 0; flock -u "$LOCK_FD"; exec {LOCK_FD}>&-; LOCK_FD=""; }
log() { echo "bench-compare: $*" >&2; }
# apt_install PACKAGE...: Debian packages, only those not installed yet.
apt_install() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  log "installing ${missing[*]} (Debian)"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >&2; }
}

# ------------------------------------------------------------------ build
# The tree being measured, read before the build (the tree may move during a long run).
KV_VERSION="$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
[ -z "${KVSERVER:-}" ] || KV_VERSION="$KVSERVER (KVSERVER=)"
if [ "$SKIP_BUILD" -eq 0 ]; then
  "$ROOT/scripts/install-deps.sh" >&2
  log "building Release in $BUILD_DIR"
  locked cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DRAFT_BUILD_TESTS=OFF -DRAFT_BUILD_EXAMPLES=OFF -DRAFT_BUILD_KVSERVER=ON >/dev/null
  locked cmake --build "$BUILD_DIR" --target kvserver >&2
  # bench/ builds inside the project once the top-level CMakeLists.txt adds it; until then
  # (and in any case it works) as its own project.
  if grep -q 'add_subdirectory(bench)' "$ROOT/CMakeLists.txt"; then
    locked cmake --build "$BUILD_DIR" --target kvbench write_probe fsync_probe rtt_probe connflood >&2
  else
    locked cmake -S "$ROOT/bench" -B "$BUILD_DIR/bench-standalone" -G Ninja \
      -DCMAKE_BUILD_TYPE=Release >/dev/null
    locked cmake --build "$BUILD_DIR/bench-standalone" >&2
  fi
fi
find_bin() {
  local name=$1 dir
  for dir in "$BUILD_DIR/bench" "$BUILD_DIR/bench-standalone" "$BUILD_DIR/kvserver"; do
    if [ -x "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
  done
  die "no $name in $BUILD_DIR (run without --skip-build)"
}
KVSERVER=${KVSERVER:-$(find_bin kvserver)}
KVBENCH=$(find_bin kvbench)
WRITE_PROBE=$(find_bin write_probe)
FSYNC_PROBE=$(find_bin fsync_probe)
RTT_PROBE=$(find_bin rtt_probe)
CONNFLOOD=""
if [ "$ONLY" != etcd ] && [ $((FLOOD_IDLE + FLOOD_SLOW)) -gt 0 ]; then CONNFLOOD=$(find_bin connflood); fi

if [ "$ONLY" != kvserver ] && [ ! -x /usr/bin/etcd ]; then
  # Debian's package may start a system etcd on 2379/2380; it does not use our ports.
  apt_install etcd-server
fi
ETCD=/usr/bin/etcd
# etcd-grpc: Go, from Debian's packages (bench/etcd-grpc/build.sh installs golang-go and
# golang-etcd-server-dev when missing); not part of the CMake build, so also built when
# --skip-build finds no binary.
ETCD_GRPC=""
if [ "$ONLY" != kvserver ] && [ "$GRPC" -eq 1 ]; then
  ETCD_GRPC="$BUILD_DIR/bench/etcd-grpc"
  if [ "$SKIP_BUILD" -eq 0 ] || [ ! -x "$ETCD_GRPC" ]; then
    log "building $ETCD_GRPC (bench/etcd-grpc/build.sh)"
    mkdir -p "$BUILD_DIR/bench"
    locked "$ROOT/bench/etcd-grpc/build.sh" "$ETCD_GRPC" >&2 || die "bench/etcd-grpc/build.sh failed"
  fi
fi
command -v gnuplot >/dev/null || apt_install gnuplot-nox
# The flood needs file descriptors on both sides: servers started from here inherit this
# limit (the new kvserver raises its own as well), connflood raises its own.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ -n "$CONNFLOOD" ] && [ "$(ulimit -n)" != unlimited ] &&
  [ "$(ulimit -n)" -lt $((FLOOD_IDLE + FLOOD_SLOW + 1000)) ]; then
  log "warning: ulimit -n is $(ulimit -n) (hard limit): too low for $((FLOOD_IDLE + FLOOD_SLOW)) flood connections"
fi

# ------------------------------------------------------------------ data, results, cleanup
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
[ -n "$DATA_PARENT" ] || DATA_PARENT="$BUILD_DIR/bench-data"
mkdir -p "$DATA_PARENT"
DATA=$(mktemp -d "$DATA_PARENT/run-$STAMP-XXXX")
RESULTS="$DATA/results"
LOGS="$DATA/logs"
mkdir -p "$RESULTS" "$LOGS"
if [ "$(stat -f -c %T "$DATA")" = tmpfs ]; then
  log "warning: $DATA is on tmpfs: fsync costs nothing there; use --data-dir on a real disk"
fi

declare -A PIDS=()  # "kv0" / "etcd1" -> pid of a running server
BG_PIDS=()          # background helpers (connflood, RSS sampler, listing clients)
stop_pid() {        # stop_pid <key> <signal>
  local key=$1 sig=$2 pid=${PIDS[$1]:-}
  [ -n "$pid" ] || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT_S))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$key]"
}
cleanup() {
  local rc=$? pid
  trap '' INT TERM
  for pid in "${BG_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for key in "${!PIDS[@]}"; do kill -KILL "${PIDS[$key]}" 2>/dev/null || true; done
  for key in "${!PIDS[@]}"; do wait "${PIDS[$key]}" 2>/dev/null || true; done
  if [ "$KEEP" -eq 0 ]; then
    rm -rf "$DATA/kv" "$DATA/etcd"
  fi
  log "results and logs: $DATA"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for off in 0 1 2 100 101 102 200 201 202 300 301 302; do
  if port_open $((PORT_BASE + off)); then
    die "127.0.0.1:$((PORT_BASE + off)) is in use; pick another --port-base"
  fi
done

# http <curl args...>: one bounded request, body on stdout ("" on failure).
http() { curl -s --max-time 2 "$@" 2>/dev/null || true; }
num() { awk -v x="$1" 'BEGIN { exit !(x ~ /^[0-9.]+$/) }'; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", ($1) }"; }
median() { tr ' ' '\n' | awk '/^[0-9.]+$/' | sort -n | awk '{ a[NR] = $1 } END {
  if (NR == 0) { print "n/a"; exit } if (NR % 2) print a[(NR + 1) / 2];
  else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ------------------------------------------------------------------ kvserver cluster
KV_ARGS=()  # extra flags for every node (failover at explicit settings)
kv_http() { echo "127.0.0.1:$((PORT_BASE + $1))"; }
kv_start() {  # kv_start <i>
  local i=$1 join=()
  [ "$i" -eq 0 ] || join=(-join "$(kv_http 0)")
  mkdir -p "$DATA/kv/node$i"
  setsid "$KVSERVER" -id "node$i" -laddr "$(kv_http "$i")" -raddr "127.0.0.1:$((PORT_BASE + 100 + i))" \
    -data "$DATA/kv/node$i" -log-level info "${join[@]}" "${KV_ARGS[@]}" \
    </dev/null >>"$LOGS/kv-node$i.log" 2>&1 &
  PIDS[kv$i]=$!
}
kv_healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$(kv_http "$1")/health")" = 200 ]; }
kv_leader_addr() {  # the leader's HTTP address as some live node sees it, or ""
  local i s
  for i in 0 1 2; do
    [ -n "${PIDS[kv$i]:-}" ] || continue
    s=$(http "http://$(kv_http "$i")/status")
    s=$(sed -n 's/.*"leader": *{[^}]*"http_addr": *"\([^"]*\)".*/\1/p' <<<"$s")
    if [ -n "$s" ]; then echo "$s"; return 0; fi
  done
}
kv_leader_index() {
  local addr i
  addr=$(kv_leader_addr)
  for i in 0 1 2; do [ "$addr" = "$(kv_http "$i")" ] && { echo "$i"; return 0; }; done
  return 1
}
kv_status_field() {  # kv_status_field <i> <name>: a number from node i's /status
  http "http://$(kv_http "$1")/status" | sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p"
}
kv_wait_cluster() {  # all three healthy, the leader counts three voters
  local deadline=$((SECONDS + START_TIMEOUT_S)) i ok leader
  while :; do
    ok=1
    for i in 0 1 2; do kv_healthy "$i" || ok=0; done
    if [ "$ok" -eq 1 ]; then
      leader=$(kv_leader_addr)
      if [ -n "$leader" ] && [ "$(http "http://$leader/status" | grep -o '"voter": *true' | wc -l)" -eq 3 ]; then
        return 0
      fi
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "kvserver cluster not ready within ${START_TIMEOUT_S}s (logs: $LOGS)"
    sleep 0.2
  done
}
kv_up() {
  rm -rf "$DATA/kv"
  local i deadline
  for i in 0 1 2; do
    kv_start "$i"
    deadline=$((SECONDS + START_TIMEOUT_S))
    until kv_healthy "$i"; do
      kill -0 "${PIDS[kv$i]}" 2>/dev/null || die "kvserver node$i exited at startup (log: $LOGS/kv-node$i.log)"
      [ "$SECONDS" -lt "$deadline" ] || die "kvserver node$i not healthy within ${START_TIMEOUT_S}s"
      sleep 0.2
    done
  done
  kv_wait_cluster
}
kv_down() { local i; for i in 0 1 2; do stop_pid "kv$i" TERM; done; }
kv_term() { local l; l=$(kv_leader_index) && kv_status_field "$l" term; }

# ------------------------------------------------------------------ etcd cluster
etcd_client() { echo "127.0.0.1:$((PORT_BASE + 200 + $1))"; }
etcd_peer() { echo "127.0.0.1:$((PORT_BASE + 300 + $1))"; }
etcd_start() {
  local i=$1
  local cluster
  cluster="e0=http://$(etcd_peer 0),e1=http://$(etcd_peer 1),e2=http://$(etcd_peer 2)"
  mkdir -p "$DATA/etcd"
  setsid "$ETCD" --name "e$i" --data-dir "$DATA/etcd/e$i" \
    --listen-client-urls "http://$(etcd_client "$i")" --advertise-client-urls "http://$(etcd_client "$i")" \
    --listen-peer-urls "http://$(etcd_peer "$i")" --initial-advertise-peer-urls "http://$(etcd_peer "$i")" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$STAMP" \
    --heartbeat-interval 100 --election-timeout 1000 --logger zap --log-level warn \
    </dev/null >>"$LOGS/etcd-e$i.log" 2>&1 &
  PIDS[etcd$i]=$!
}
etcd_healthy() { http "http://$(etcd_client "$1")/health" | grep -q '"health": *"true"'; }
etcd_leader_index() {  # the member whose id is the leader id it reports
  local i s
  for i in 0 1 2; do
    [ -n "${PIDS[etcd$i]:-}" ] || continue
    s=$(http -X POST -d '{}' "http://$(etcd_client "$i")/v3/maintenance/status")
    local me leader
    me=$(sed -n 's/.*"member_id": *"\([0-9]*\)".*/\1/p' <<<"$s")
    leader=$(sed -n 's/.*"leader": *"\([0-9]*\)".*/\1/p' <<<"$s")
    if [ -n "$me" ] && [ "$me" = "$leader" ]; then echo "$i"; return 0; fi
  done
  return 1
}
etcd_term() {
  local l
  l=$(etcd_leader_index) || return 0
  http -X POST -d '{}' "http://$(etcd_client "$l")/v3/maintenance/status" |
    sed -n 's/.*"raftTerm": *"\([0-9]*\)".*/\1/p'
}
etcd_up() {
  rm -rf "$DATA/etcd"
  local i ok deadline=$((SECONDS + START_TIMEOUT_S))
  for i in 0 1 2; do etcd_start "$i"; done
  while :; do
    ok=1
    for i in 0 1 2; do
      kill -0 "${PIDS[etcd$i]}" 2>/dev/null || die "etcd e$i exited at startup (log: $LOGS/etcd-e$i.log)"
      etcd_healthy "$i" || ok=0
    done
    if [ "$ok" -eq 1 ] && etcd_leader_index >/dev/null; then return 0; fi
    [ "$SECONDS" -lt "$deadline" ] || die "etcd cluster not ready within ${START_TIMEOUT_S}s (logs: $LOGS)"
    sleep 0.2
  done
}
etcd_down() { local i; for i in 0 1 2; do stop_pid "etcd$i" TERM; done; }

# ------------------------------------------------------------------ measurements
# R[system.kind.conns.field] = value (system kvserver, etcd = through the JSON gateway,
# grpc = etcd through gRPC; field ops, p50, p99, err, cpu = server CPU us per request);
# R[system.failover.config] = ms list; R[flood.*], R[list.*]: the front-door runs.
declare -A R=()

# jnum <file> <key>: the first number after "key": in a one-line JSON file ("" if none).
jnum() { sed -n "s/.*\"$2\":\(-\{0,1\}[0-9.]*\).*/\1/p" "$1" 2>/dev/null | head -1; }
# cpu_per_op <cpu seconds> <ops>: microseconds, or "" when either is missing.
cpu_per_op() {
  if num "${1:-}" && num "${2:-}" && [ "$(calc "$2 > 0" 0)" = 1 ]; then calc "$1 * 1000000 / $2" 1; fi
}
server_pids() {  # server_pids <kvserver|etcd>: "pid,pid,pid" of the three members
  local p=kv i out=""
  [ "$1" = etcd ] && p=etcd
  for i in 0 1 2; do out+="${out:+,}${PIDS[$p$i]:-}"; done
  echo "$out"
}

# kvbench_cell <system> <addr> <kind> <conns> <out>: one kvbench cell into R[system.kind.conns.*].
kvbench_cell() {
  local sys=$1 addr=$2 kind=$3 c=$4 out=$5 ratio=0
  [ "$kind" = read ] && ratio=1
  log "$sys: ${kind}s, $c connections, ${DURATION}s"
  locked "$KVBENCH" --target "$sys" --addr "$addr" --connections "$c" --keys "$KEYS" \
    --value-size "$VALUE_BYTES" --read-ratio "$ratio" --warmup "$WARMUP" \
    --duration "$DURATION" --cpu-pids "$(server_pids "$sys")" --json >"$out" ||
    log "$sys: $kind/$c had no successful operation"
  R[$sys.$kind.$c.ops]=$(jnum "$out" ops_per_s)
  R[$sys.$kind.$c.p50]=$(sed -n 's/.*"latency_ms":{[^}]*"p50":\([0-9.]*\).*/\1/p' "$out")
  R[$sys.$kind.$c.p99]=$(sed -n 's/.*"latency_ms":{[^}]*"p99":\([0-9.]*\).*/\1/p' "$out")
  R[$sys.$kind.$c.err]=$(sed -n 's/.*"errors":{"total":\([0-9]*\).*/\1/p' "$out")
  R[$sys.$kind.$c.cpu]=$(cpu_per_op "$(jnum "$out" server_cpu_s)" "$(jnum "$out" ops)")
}

# grpc_cell <leader client addr> <kind> <conns> <out>: the same cell through etcd's gRPC API
# (etcd-grpc: <conns> closed-loop clients sharing one gRPC connection, the same keys and
# value size) into R[grpc.kind.conns.*].
grpc_cell() {
  local addr=$1 kind=$2 c=$3 out=$4 op=put
  [ "$kind" = read ] && op="get"
  log "etcd gRPC: ${kind}s, $c clients, ${DURATION}s"
  locked "$ETCD_GRPC" -endpoints "$addr" -op "$op" -clients "$c" -conns 1 -keys "$KEYS" \
    -value-size "$VALUE_BYTES" -warmup "${WARMUP}s" -duration "${DURATION}s" \
    -cpu-pids "$(server_pids etcd)" >"$out" 2>>"$LOGS/etcd-grpc.log" ||
    log "etcd gRPC: $kind/$c failed (log: $LOGS/etcd-grpc.log)"
  local ops
  ops=$(jnum "$out" ops_per_s)
  num "$ops" && R[grpc.$kind.$c.ops]=$(calc "$ops" 1)
  R[grpc.$kind.$c.p50]=$(jnum "$out" p50_ms)
  R[grpc.$kind.$c.p99]=$(jnum "$out" p99_ms)
  R[grpc.$kind.$c.err]=$(jnum "$out" errors)
  R[grpc.$kind.$c.cpu]=$(cpu_per_op "$(jnum "$out" server_cpu_s)" "$(jnum "$out" ops)")
}

run_matrix() {  # run_matrix <system> <leader addr>
  local sys=$1 addr=$2 c kind
  [ "$SKIP_MATRIX" -eq 0 ] || return 0
  log "$sys: preloading $KEYS keys at $addr"
  locked "$KVBENCH" --target "$sys" --addr "$addr" --connections 64 --keys "$KEYS" \
    --value-size "$VALUE_BYTES" --preload --warmup 0 --duration 0.2 --json >"$RESULTS/$sys-preload.json" ||
    die "$sys: preload failed ($RESULTS/$sys-preload.json)"
  for kind in write read; do
    for c in "${CONN_LIST[@]}"; do
      kvbench_cell "$sys" "$addr" "$kind" "$c" "$RESULTS/$sys-$kind-$c.json"
      # etcd: each gateway cell is followed at once by its gRPC twin (same minutes of disk).
      if [ "$sys" = etcd ] && [ -n "$ETCD_GRPC" ]; then
        grpc_cell "$addr" "$kind" "$c" "$RESULTS/etcd-grpc-$kind-$c.json"
      fi
    done
  done
}

# failover <system> <config label>: TRIALS times kill -9 the leader, time the first
# successful write on a survivor, restart the killed member, wait until it has caught up.
failover() {
  local sys=$1 label=$2 trial l t0 ms addrs i out list=""
  for ((trial = 1; trial <= TRIALS; trial++)); do
    if [ "$sys" = kvserver ]; then l=$(kv_leader_index) || die "kvserver: no leader before trial $trial"
    else l=$(etcd_leader_index) || die "etcd: no leader before trial $trial"; fi
    addrs=""
    for i in 0 1 2; do
      [ "$i" -eq "$l" ] && continue
      if [ "$sys" = kvserver ]; then addrs+="${addrs:+,}$(kv_http "$i")"; else addrs+="${addrs:+,}$(etcd_client "$i")"; fi
    done
    local key
    [ "$sys" = kvserver ] && key="kv$l" || key="etcd$l"
    t0=$(date +%s%N)
    kill -KILL "${PIDS[$key]}"
    wait "${PIDS[$key]}" 2>/dev/null || true
    unset "PIDS[$key]"
    # A new attempt per survivor every 20 ms; an attempt unanswered after 2 s is dropped
    # (a proposal made while there is no leader may wait for its own timeout instead of
    # completing when the new leader is elected).
    out=$(locked "$WRITE_PROBE" --target "$sys" --addr "$addrs" --since-ns "$t0" \
      --interval-ms 20 --attempt-timeout 2 --in-flight-max 200 \
      --timeout "$FAILOVER_TIMEOUT_S") || out=""
    ms=$(sed -n 's/^elapsed_ms \([0-9.]*\).*/\1/p' <<<"$out")
    log "$sys failover ($label) trial $trial/$TRIALS: leader ${key} killed, write ok after ${ms:-TIMEOUT} ms"
    list+="${list:+ }${ms:-timeout}"
    # Bring the member back and wait until it has caught up, so every trial starts from a
    # healthy three-member cluster.
    if [ "$sys" = kvserver ]; then
      kv_start "$l"
      local deadline=$((SECONDS + CATCHUP_TIMEOUT_S)) nl commit applied
      while :; do
        if kv_healthy "$l" && nl=$(kv_leader_index); then
          commit=$(kv_status_field "$nl" commit_index)
          applied=$(kv_status_field "$l" applied_index)
          if [ -n "$commit" ] && [ -n "$applied" ] && [ "$applied" -ge "$commit" ]; then break; fi
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "kvserver node$l did not catch up within ${CATCHUP_TIMEOUT_S}s"
        sleep 0.2
      done
    else
      etcd_start "$l"
      local deadline=$((SECONDS + CATCHUP_TIMEOUT_S))
      until etcd_healthy "$l" && etcd_leader_index >/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || die "etcd e$l did not come back within ${CATCHUP_TIMEOUT_S}s"
        sleep 0.2
      done
    fi
    sleep 1  # let heartbeats settle before the next kill
  done
  R[$sys.failover.$label]=$list
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# ------------------------------------------------------------------ run
log "data and results in $DATA"
# measure_floors <label>: fdatasync of 4 KiB appends in the data directory and the
# loopback round trip. Measured before each system's matrix: the disk of a shared machine
# varies over minutes, so each system is shown next to the floor it ran against.
FLOOR_ROWS=""
measure_floors() {
  local out p50 p99 rtt50 rtt99
  log "floors ($1): fdatasync of 4 KiB appends in $DATA; loopback round trip"
  out=$(locked "$FSYNC_PROBE" --dir "$DATA" --count 500)
  p50=$(sed -n 's/.*p50_ms \([0-9.]*\).*/\1/p' <<<"$out")
  p99=$(sed -n 's/.*p99_ms \([0-9.]*\).*/\1/p' <<<"$out")
  out=$(locked "$RTT_PROBE" --count 20000)
  rtt50=$(sed -n 's/.*p50_ms \([0-9.]*\).*/\1/p' <<<"$out")
  rtt99=$(sed -n 's/.*p99_ms \([0-9.]*\).*/\1/p' <<<"$out")
  FLOOR_ROWS+="| $1 | $p50 / $p99 | $rtt50 / $rtt99 | $(calc "2 * ($p50 + $rtt50)" 3) |"$'\n'
  FSYNC_P50=$p50 RTT_P50=$rtt50
}

# kvserver's own defaults, from --help: "-tick-ms ... (default 100)".
kv_default() { "$KVSERVER" --help 2>&1 | awk -v f="-$1" '$1 == f { getline; if (match($0, /\(default [0-9]+\)/)) print substr($0, RSTART + 9, RLENGTH - 10); exit }'; }
KV_TICK_MS=$(kv_default tick-ms)
KV_ELECTION_TICKS=$(kv_default election-ticks)
KV_HEARTBEAT_TICKS=$(kv_default heartbeat-ticks)
KV_DEFAULTS="tick ${KV_TICK_MS:-?} ms, heartbeat ${KV_HEARTBEAT_TICKS:-?} ticks, election ${KV_ELECTION_TICKS:-?} ticks"
KV_DEFAULTS_EQUAL=0
if [ "${KV_TICK_MS:-0}" = 100 ] && [ "${KV_ELECTION_TICKS:-0}" = 10 ] && [ "${KV_HEARTBEAT_TICKS:-0}" = 1 ]; then
  KV_DEFAULTS_EQUAL=1
fi

# stability_run <leader addr>: writes at 64 connections for $STABILITY s; the term and
# the leader must not change (heartbeats must not queue behind disk writes or applies).
stability_run() {
  local addr=$1 out="$RESULTS/kvserver-stability-64.json" t0 l0
  [ "$STABILITY" -gt 0 ] || return 0
  t0=$(kv_term) l0=$(kv_leader_index)
  log "kvserver: stability, writes at 64 connections for ${STABILITY}s"
  locked "$KVBENCH" --target kvserver --addr "$addr" --connections 64 --keys "$KEYS" \
    --value-size "$VALUE_BYTES" --read-ratio 0 --warmup 0 --duration "$STABILITY" --json >"$out" ||
    log "kvserver: the stability run had no successful operation"
  R[stability.ops]=$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' "$out")
  R[stability.err]=$(sed -n 's/.*"errors":{"total":\([0-9]*\).*/\1/p' "$out")
  R[stability.p99]=$(sed -n 's/.*"latency_ms":{[^}]*"p99":\([0-9.]*\).*/\1/p' "$out")
  R[stability.max]=$(sed -n 's/.*"latency_ms":{[^}]*"max":\([0-9.]*\).*/\1/p' "$out")
  R[stability.terms]="$t0 -> $(kv_term)"
  R[stability.leaders]="kv$l0 -> kv$(kv_leader_index)"
  if [ "$t0" = "$(kv_term)" ] && [ "$l0" = "$(kv_leader_index)" ]; then
    R[stability.verdict]=PASS
  else
    R[stability.verdict]=FAIL
  fi
}

# ------------------------------------------------------------------ front door (issue 12)
RSS_SAMPLER=""
rss_sampler_start() {  # rss_sampler_start <pid> <file>: VmRSS KiB every 100 ms into file
  local pid=$1 file=$2
  : >"$file"
  (while kill -0 "$pid" 2>/dev/null; do
    rss_kb "$pid" >>"$file"
    sleep 0.1
  done) &
  RSS_SAMPLER=$!
  BG_PIDS+=("$RSS_SAMPLER")
}
rss_sampler_stop() {  # rss_sampler_stop <file>: prints the peak KiB sampled
  if [ -n "$RSS_SAMPLER" ]; then
    kill "$RSS_SAMPLER" 2>/dev/null || true
    wait "$RSS_SAMPLER" 2>/dev/null || true
  fi
  RSS_SAMPLER=""
  sort -n "$1" | tail -1
}
# flood_field <status line> <name>: a number from a connflood status line.
flood_field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"; }
flood_open() {  # flood_open <status line>: "idle answered/target, slowloris open/target"
  echo "idle $(flood_field "$1" idle_answered)/$FLOOD_IDLE answered, slowloris $(flood_field "$1" slow_open)/$FLOOD_SLOW open"
}

# flood_run <leader index>: writes at 64 connections without, then with FLOOD_IDLE idle
# and FLOOD_SLOW slowloris connections open on the leader; /health latency (one closed-loop
# connection, no other load) while the flood stays open; the leader's RSS growth from
# just before the flood to its peak during it.
flood_run() {
  local l=$1 addr pid line="" deadline total answered slow flog="$RESULTS/connflood.log"
  local base="$RESULTS/flood-base-64.json" load="$RESULTS/flood-load-64.json" health="$RESULTS/flood-health.json"
  addr=$(kv_http "$l")
  pid=${PIDS[kv$l]}
  total=$((FLOOD_IDLE + FLOOD_SLOW))
  log "kvserver: flood run: writes at 64 connections without the flood, ${DURATION}s"
  "$KVBENCH" --target kvserver --addr "$addr" --connections 64 --keys "$KEYS" --value-size "$VALUE_BYTES" \
    --warmup "$WARMUP" --duration "$DURATION" --json >"$base" || log "kvserver: flood baseline had no successful write"
  R[flood.base.ops]=$(jnum "$base" ops_per_s)
  R[flood.base.p99]=$(sed -n 's/.*"latency_ms":{[^}]*"p99":\([0-9.]*\).*/\1/p' "$base")
  R[flood.rss0]=$(rss_kb "$pid")
  rss_sampler_start "$pid" "$RESULTS/flood-rss.txt"
  log "kvserver: opening $FLOOD_IDLE idle + $FLOOD_SLOW slowloris connections on the leader $addr"
  "$CONNFLOOD" --addr "$addr" --idle "$FLOOD_IDLE" --slow "$FLOOD_SLOW" --rate "$FLOOD_RATE" >"$flog" 2>&1 &
  local flood_pid=$!
  BG_PIDS+=("$flood_pid")
  # Open: every idle connection answered and (slowloris connections are closed at the
  # server's header deadline and reopened) at least 95% of the slowloris ones open.
  deadline=$((SECONDS + total / FLOOD_RATE + FLOOD_SETTLE_S))
  while :; do
    sleep 1
    line=$(grep '^connflood t=' "$flog" | tail -1 || true)
    answered=$(flood_field "$line" idle_answered) slow=$(flood_field "$line" slow_open)
    if [ "${answered:-0}" -ge "$FLOOD_IDLE" ] && [ $((100 * ${slow:-0})) -ge $((95 * FLOOD_SLOW)) ]; then
      R[flood.opened]=1
      break
    fi
    kill -0 "$flood_pid" 2>/dev/null || { log "kvserver: connflood exited ($flog)"; break; }
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "kvserver: the flood is not fully open after $((total / FLOOD_RATE + FLOOD_SETTLE_S)) s: ${line:-no status}"
      break
    fi
  done
  R[flood.open.before]=$(flood_open "$line")
  log "kvserver: flood open ($(flood_open "$line")); writes at 64 connections, ${DURATION}s"
  "$KVBENCH" --target kvserver --addr "$addr" --connections 64 --keys "$KEYS" --value-size "$VALUE_BYTES" \
    --warmup "$WARMUP" --duration "$DURATION" --json >"$load" || log "kvserver: no successful write during the flood"
  R[flood.load.ops]=$(jnum "$load" ops_per_s)
  R[flood.load.p99]=$(sed -n 's/.*"latency_ms":{[^}]*"p99":\([0-9.]*\).*/\1/p' "$load")
  R[flood.load.err]=$(sed -n 's/.*"errors":{"total":\([0-9]*\).*/\1/p' "$load")
  log "kvserver: /health on the leader during the flood, one connection, ${DURATION}s"
  "$KVBENCH" --target kvserver --addr "$addr" --connections 1 --path /health --warmup 0.5 \
    --duration "$DURATION" --timeout 5 --json >"$health" || log "kvserver: /health never answered during the flood"
  R[flood.health.p50]=$(sed -n 's/.*"latency_ms":{[^}]*"p50":\([0-9.]*\).*/\1/p' "$health")
  R[flood.health.p99]=$(sed -n 's/.*"latency_ms":{[^}]*"p99":\([0-9.]*\).*/\1/p' "$health")
  R[flood.health.max]=$(sed -n 's/.*"latency_ms":{[^}]*"max":\([0-9.]*\).*/\1/p' "$health")
  R[flood.health.ops]=$(jnum "$health" ops)
  R[flood.health.err]=$(sed -n 's/.*"errors":{"total":\([0-9]*\).*/\1/p' "$health")
  line=$(grep '^connflood t=' "$flog" | tail -1 || true)
  R[flood.open.after]=$(flood_open "$line")
  kill -TERM "$flood_pid" 2>/dev/null || true
  wait "$flood_pid" 2>/dev/null || true
  local final
  final=$(grep '^{' "$flog" | tail -1 || true)
  echo "$final" >"$RESULTS/connflood.json"
  R[flood.closed_idle]=$(jnum "$RESULTS/connflood.json" closed_idle)
  R[flood.closed_slow]=$(jnum "$RESULTS/connflood.json" closed_slow)
  R[flood.reconnects]=$(jnum "$RESULTS/connflood.json" reconnects)
  R[flood.connect_errors]=$(jnum "$RESULTS/connflood.json" connect_errors)
  R[flood.seconds]=$(jnum "$RESULTS/connflood.json" seconds)
  R[flood.rss.peak]=$(rss_sampler_stop "$RESULTS/flood-rss.txt")
  if num "${R[flood.rss0]:-}" && num "${R[flood.rss.peak]:-}"; then
    R[flood.rss.growth]=$((${R[flood.rss.peak]} - ${R[flood.rss0]}))
  fi
}

# list_client <addr> <until, epoch s>: full listings of list/ (limit=1000, following
# `next` until null) until the time is up; prints "listings pages bytes errors".
list_client() {
  local addr=$1 until=$2 listings=0 pages=0 bytes=0 errors=0 after out code size next n
  while [ "$(date +%s)" -lt "$until" ]; do
    after=""
    n=0
    while :; do
      out=$(curl -s --max-time 60 -w '\n%{http_code} %{size_download}\n' \
        "http://$addr/kv?prefix=list/&limit=1000${after:+&start_after=$after}" |
        grep -ao '"next": *\(null\|"[^"]*"\)\|^[0-9][0-9][0-9] [0-9]*$' || true)
      code=$(tail -1 <<<"$out" | awk '{ print $1 }')
      size=$(tail -1 <<<"$out" | awk '{ print $2 }')
      next=$(sed -n 's/^"next": *//p' <<<"$out" | tail -1)
      n=$((n + 1))
      if [ "$code" != 200 ] || [ -z "$next" ] || [ "$n" -gt $((LIST_VALUES + 10)) ]; then
        errors=$((errors + 1))
        break
      fi
      pages=$((pages + 1))
      bytes=$((bytes + size))
      if [ "$next" = null ]; then
        listings=$((listings + 1))
        break
      fi
      after=${next//\"/}
    done
  done
  echo "$listings $pages $bytes $errors"
}

# list_run <leader index>: LIST_VALUES values of 1 MiB under list/, then LIST_CLIENTS
# concurrent listings repeated for LIST_SECONDS; the leader's RSS growth from just before
# the listings to their peak.
list_run() {
  local l=$1 addr pid i code failed=0 value="$DATA/value-1mib" until
  addr=$(kv_http "$l")
  pid=${PIDS[kv$l]}
  head -c 1048576 /dev/zero | tr '\0' x >"$value"
  log "kvserver: listing run: writing $LIST_VALUES values of 1 MiB under list/"
  for ((i = 0; i < LIST_VALUES; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X PUT \
      -H 'Content-Type: application/octet-stream' --data-binary @"$value" \
      "http://$addr/kv/list/v$(printf %04d "$i")" || true)
    [ "$code" = 200 ] || failed=$((failed + 1))
  done
  rm -f "$value"
  R[list.write_failures]=$failed
  sleep 1
  R[list.rss0]=$(rss_kb "$pid")
  rss_sampler_start "$pid" "$RESULTS/list-rss.txt"
  log "kvserver: $LIST_CLIENTS concurrent listings of list/ for ${LIST_SECONDS}s"
  until=$(($(date +%s) + LIST_SECONDS))
  local pids=()
  for ((i = 0; i < LIST_CLIENTS; i++)); do
    list_client "$addr" "$until" >"$RESULTS/list-client-$i.txt" &
    pids+=("$!")
    BG_PIDS+=("$!")
  done
  for i in "${pids[@]}"; do wait "$i" 2>/dev/null || true; done
  R[list.rss.peak]=$(rss_sampler_stop "$RESULTS/list-rss.txt")
  read -r 'R[list.listings]' 'R[list.pages]' 'R[list.bytes]' 'R[list.errors]' < <(cat "$RESULTS"/list-client-*.txt |
    awk '{ a += $1; b += $2; c += $3; d += $4 } END { print a + 0, b + 0, c + 0, d + 0 }')
  if num "${R[list.rss0]:-}" && num "${R[list.rss.peak]:-}"; then
    R[list.rss.growth]=$((${R[list.rss.peak]} - ${R[list.rss0]}))
  fi
}

# frontdoor_runs: a new three-node cluster (defaults, but -http-max-conns raised above the
# flood when kvserver has that flag), the flood run and the listing run on its leader,
# holding RAFT_BUILD_LOCK throughout.
frontdoor_runs() {
  local l cap
  KV_ARGS=()
  if [ -n "$CONNFLOOD" ] && "$KVSERVER" --help 2>&1 | grep -q -- '-http-max-conns'; then
    cap=$(kv_default http-max-conns)
    if [ "${cap:-0}" -lt $((FLOOD_IDLE + FLOOD_SLOW + 1000)) ]; then
      KV_ARGS=(-http-max-conns $((FLOOD_IDLE + FLOOD_SLOW + 1000)))
    fi
  fi
  R[frontdoor.args]="${KV_ARGS[*]:-defaults}"
  log "kvserver: front-door runs on a new cluster (${R[frontdoor.args]})"
  kv_up
  l=$(kv_leader_index) || die "kvserver: no leader for the front-door runs"
  R[frontdoor.leader]=kv$l
  lock_hold
  if [ -n "$CONNFLOOD" ]; then flood_run "$l"; fi
  if [ "$LIST_VALUES" -gt 0 ]; then list_run "$l"; fi
  lock_release
  kv_down
  KV_ARGS=()
}

KV_RSS="" KV_TERMS="" ETCD_TERMS=""
LAT_BUDGET=n/a
if [ "$ONLY" != etcd ]; then
  measure_floors "before kvserver"
  LAT_BUDGET=$(calc "2 * ($FSYNC_P50 + $RTT_P50)" 3)
  log "kvserver: starting 3 nodes (defaults: $KV_DEFAULTS)"
  KV_ARGS=()
  kv_up
  leader=$(kv_leader_addr)
  l=$(kv_leader_index)
  term_before=$(kv_term)
  run_matrix kvserver "$leader"
  KV_RSS=$(rss_kb "${PIDS[kv$l]}")
  KV_TERMS="$term_before -> $(kv_term)"
  stability_run "$leader"
  if [ "$TRIALS" -gt 0 ]; then
    failover kvserver defaults
    if [ "$KV_DEFAULTS_EQUAL" -eq 1 ]; then
      R[kvserver.failover.equal]=${R[kvserver.failover.defaults]}
    else
      kv_down
      KV_ARGS=(-tick-ms 100 -heartbeat-ticks 1 -election-ticks 10)
      log "kvserver: restarting with ${KV_ARGS[*]} (etcd's 100/1000 ms)"
      kv_up
      failover kvserver equal
    fi
  fi
  kv_down
  if [ -n "$CONNFLOOD" ] || [ "$LIST_VALUES" -gt 0 ]; then frontdoor_runs; fi
  if [ "$SNAPSHOT_GB" != 0 ]; then
    log "kvserver: snapshot memory, $SNAPSHOT_GB GiB (scripts/bench-snapshot-memory.sh)"
    SNAPMEM=$(KVSERVER="$KVSERVER" RAFT_BUILD_LOCK="${RAFT_BUILD_LOCK:-}" \
      "$ROOT/scripts/bench-snapshot-memory.sh" --gb "$SNAPSHOT_GB" --build-dir "$BUILD_DIR" \
      --data-dir "$DATA" 2>>"$LOGS/snapshot-memory.log" | grep '^snapshot-memory:' || true)
    [ -n "$SNAPMEM" ] || log "kvserver: the snapshot memory run failed (log: $LOGS/snapshot-memory.log)"
  fi
fi
if [ "$ONLY" != kvserver ]; then
  measure_floors "before etcd"
  log "etcd: starting 3 members (heartbeat 100 ms, election 1000 ms)"
  etcd_up
  l=$(etcd_leader_index)
  term_before=$(etcd_term)
  run_matrix etcd "$(etcd_client "$l")"
  ETCD_TERMS="$term_before -> $(etcd_term)"
  [ "$TRIALS" -gt 0 ] && failover etcd equal
  etcd_down
fi

# ------------------------------------------------------------------ report
ratio() { if num "${1:-}" && num "${2:-}" && [ "$(calc "$2 > 0" 0)" = 1 ]; then calc "$1 / $2" 2; else echo "n/a"; fi; }
check() {  # check <condition for awk> -> PASS / FAIL / n/a
  if awk "BEGIN { exit !($1) }" 2>/dev/null; then echo PASS; else echo FAIL; fi
}
target_for() {  # target_for <kind> <conns>
  case "$1.$2" in
    write.64) echo ">= 4.0x etcd" ;;
    write.16) echo ">= 3.0x etcd" ;;
    write.1) echo "p50 <= $LAT_BUDGET ms" ;;
    read.64) echo ">= 8.0x etcd" ;;
    *) echo "" ;;
  esac
}
verdict_for() {  # verdict_for <kind> <conns> [etcd|grpc]: the target against that etcd
  local kind=$1 c=$2 x
  x=$(ratio "${R[kvserver.$kind.$c.ops]:-}" "${R[${3:-etcd}.$kind.$c.ops]:-}")
  case "$kind.$c" in
    write.64) if [ "$x" = n/a ]; then echo n/a; else check "$x >= 4"; fi ;;
    write.16) if [ "$x" = n/a ]; then echo n/a; else check "$x >= 3"; fi ;;
    write.1) if num "${R[kvserver.write.1.p50]:-}"; then check "${R[kvserver.write.1.p50]} <= $LAT_BUDGET"; else echo n/a; fi ;;
    read.64) if [ "$x" = n/a ]; then echo n/a; else check "$x >= 8"; fi ;;
    *) echo "" ;;
  esac
}

KV_FO_DEF=$(median <<<"${R[kvserver.failover.defaults]:-}")
KV_FO_EQ=$(median <<<"${R[kvserver.failover.equal]:-}")
ETCD_FO=$(median <<<"${R[etcd.failover.equal]:-}")

# The front-door verdicts (issue 12).
FLOOD_RATIO=$(ratio "${R[flood.load.ops]:-}" "${R[flood.base.ops]:-}")
FLOOD_W_VERDICT=n/a FLOOD_H_VERDICT=n/a FLOOD_M_VERDICT=n/a LIST_VERDICT=n/a
if [ -n "${R[flood.base.ops]:-}" ] && [ -z "${R[flood.opened]:-}" ]; then
  # The targets hold "with the flood open": a server that refuses or drops it fails all three.
  FLOOD_W_VERDICT="FAIL (flood not open)" FLOOD_H_VERDICT=$FLOOD_W_VERDICT FLOOD_M_VERDICT=$FLOOD_W_VERDICT
elif [ -n "${R[flood.base.ops]:-}" ]; then
  FLOOD_W_VERDICT=FAIL
  [ "$FLOOD_RATIO" != n/a ] && FLOOD_W_VERDICT=$(check "$FLOOD_RATIO >= 0.9")
  FLOOD_H_VERDICT=FAIL
  num "${R[flood.health.p99]:-}" && [ "${R[flood.health.ops]:-0}" -gt 0 ] &&
    FLOOD_H_VERDICT=$(check "${R[flood.health.p99]} < 10 && ${R[flood.health.err]:-0} == 0")
  FLOOD_M_VERDICT=FAIL
  num "${R[flood.rss.growth]:-}" && FLOOD_M_VERDICT=$(check "${R[flood.rss.growth]} < 163840")
fi
if [ -n "${R[list.rss0]:-}" ]; then
  LIST_VERDICT=FAIL
  num "${R[list.rss.growth]:-}" && [ "${R[list.listings]:-0}" -gt 0 ] &&
    LIST_VERDICT=$(check "${R[list.rss.growth]} < 65536")
fi
kib_mib() { if num "${1:-}"; then echo "$1 KiB ($(calc "$1 / 1024" 1) MiB)"; else echo "-"; fi; }

TABLE=$(
  echo "etcd is measured twice per cell: through its JSON gateway by kvbench (the same client as kvserver: the targets' verdicts) and through its native gRPC API by bench/etcd-grpc (the fair anchor: kvserver's ratio and the same target against it are shown beside)."
  echo "CPU: utime + stime of the three server processes over the measured window, per completed request."
  echo
  echo "| workload | conns | kvserver ops/s | etcd gateway ops/s | etcd gRPC ops/s | kv / gateway | kv / gRPC | kvserver p50 / p99 ms | gateway p50 / p99 ms | gRPC p50 / p99 ms | CPU us/req kv / gateway / gRPC | errors kv / gw / gRPC | target | verdict (vs gateway, same client) | same target vs gRPC |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|"
  for kind in write read; do
    for c in "${CONN_LIST[@]}"; do
      label="writes"
      [ "$kind" = read ] && label="linearizable reads"
      grpc_verdict=$(verdict_for "$kind" "$c" grpc)
      [ "$kind.$c" = write.1 ] && grpc_verdict=""  # an absolute target: one verdict
      [ -n "$ETCD_GRPC" ] || grpc_verdict=""
      printf '| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s / %s | %s / %s / %s | %s / %s / %s | %s | %s | %s |\n' \
        "$label" "$c" \
        "${R[kvserver.$kind.$c.ops]:--}" "${R[etcd.$kind.$c.ops]:--}" "${R[grpc.$kind.$c.ops]:--}" \
        "$(ratio "${R[kvserver.$kind.$c.ops]:-}" "${R[etcd.$kind.$c.ops]:-}")" \
        "$(ratio "${R[kvserver.$kind.$c.ops]:-}" "${R[grpc.$kind.$c.ops]:-}")" \
        "${R[kvserver.$kind.$c.p50]:--}" "${R[kvserver.$kind.$c.p99]:--}" \
        "${R[etcd.$kind.$c.p50]:--}" "${R[etcd.$kind.$c.p99]:--}" \
        "${R[grpc.$kind.$c.p50]:--}" "${R[grpc.$kind.$c.p99]:--}" \
        "${R[kvserver.$kind.$c.cpu]:--}" "${R[etcd.$kind.$c.cpu]:--}" "${R[grpc.$kind.$c.cpu]:--}" \
        "${R[kvserver.$kind.$c.err]:--}" "${R[etcd.$kind.$c.err]:--}" "${R[grpc.$kind.$c.err]:--}" \
        "$(target_for "$kind" "$c")" "$(verdict_for "$kind" "$c")" "$grpc_verdict"
    done
  done
  echo
  if [ -n "${R[flood.base.ops]:-}${R[list.rss0]:-}" ]; then
    echo "| front door: kvserver leader (${R[frontdoor.leader]:-?}; cluster flags: ${R[frontdoor.args]:-defaults}) | measured | target | verdict |"
    echo "|---|---|---|---|"
    if [ -n "${R[flood.base.ops]:-}" ]; then
      echo "| writes, 64 conns, ${DURATION} s, with $FLOOD_IDLE idle + $FLOOD_SLOW slowloris connections open vs without | ${R[flood.load.ops]:--} vs ${R[flood.base.ops]:--} ops/s = ${FLOOD_RATIO}x (p99 ${R[flood.load.p99]:--} vs ${R[flood.base.p99]:--} ms; errors ${R[flood.load.err]:--}) | >= 0.90x | $FLOOD_W_VERDICT |"
      echo "| /health on the leader during the flood, 1 closed-loop connection, ${DURATION} s | p50 ${R[flood.health.p50]:--} / p99 ${R[flood.health.p99]:--} / max ${R[flood.health.max]:--} ms; ${R[flood.health.ops]:-0} answers, ${R[flood.health.err]:--} errors | p99 < 10 ms, no error | $FLOOD_H_VERDICT |"
      echo "| leader RSS growth, before the flood -> peak during it | ${R[flood.rss0]:--} -> ${R[flood.rss.peak]:--} KiB: $(kib_mib "${R[flood.rss.growth]:-}") | < 163840 KiB (160 MiB) | $FLOOD_M_VERDICT |"
      echo "| the flood (bench/connflood, ${R[flood.seconds]:--} s) | before the load: ${R[flood.open.before]:--}; after /health: ${R[flood.open.after]:--}; closed by the server: idle ${R[flood.closed_idle]:--}, slowloris ${R[flood.closed_slow]:--}; reopened ${R[flood.reconnects]:--}; connect errors ${R[flood.connect_errors]:--} | all open | |"
    fi
    if [ -n "${R[list.rss0]:-}" ]; then
      echo "| leader RSS growth, $LIST_CLIENTS concurrent listings of $LIST_VALUES x 1 MiB values for $LIST_SECONDS s | ${R[list.rss0]:--} -> ${R[list.rss.peak]:--} KiB: $(kib_mib "${R[list.rss.growth]:-}"); ${R[list.listings]:-0} full listings, ${R[list.pages]:-0} pages, $(calc "${R[list.bytes]:-0} / 1048576" 0) MiB, ${R[list.errors]:-0} errors, ${R[list.write_failures]:-0} failed writes | < 65536 KiB (64 MiB) | $LIST_VERDICT |"
    fi
    echo
  fi
  echo "| floors, measured | fdatasync 4 KiB append p50 / p99 ms | loopback RTT p50 / p99 ms | 2 x (fdatasync p50 + RTT p50) ms |"
  echo "|---|---:|---:|---:|"
  printf '%s' "$FLOOR_ROWS"
  echo
  echo "| failover (kill -9 leader -> first write ok on a survivor) | median ms | trials (ms) | target | verdict |"
  echo "|---|---:|---|---|---|"
  fo_eq_verdict=n/a
  num "$KV_FO_EQ" && num "$ETCD_FO" && fo_eq_verdict=$(check "$KV_FO_EQ <= $ETCD_FO")
  fo_def_verdict=n/a
  num "$KV_FO_DEF" && fo_def_verdict=$(check "$KV_FO_DEF <= 500")
  eq_note=""
  [ "$KV_DEFAULTS_EQUAL" -eq 1 ] && eq_note=" (= its defaults)"
  echo "| kvserver, tick 100 ms, election 10 ticks$eq_note | $KV_FO_EQ | ${R[kvserver.failover.equal]:--} | <= etcd | $fo_eq_verdict |"
  echo "| kvserver defaults ($KV_DEFAULTS) | $KV_FO_DEF | ${R[kvserver.failover.defaults]:--} | <= 500 ms | $fo_def_verdict |"
  echo "| etcd, heartbeat 100 ms, election 1000 ms | $ETCD_FO | ${R[etcd.failover.equal]:--} | | |"
  echo
  if [ -n "${R[stability.verdict]:-}" ]; then
    echo "| stability: kvserver writes, 64 conns, $STABILITY s | ops/s | errors | p99 / max ms | leader | term | target | verdict |"
    echo "|---|---:|---:|---:|---|---|---|---|"
    echo "| defaults ($KV_DEFAULTS) | ${R[stability.ops]:--} | ${R[stability.err]:--} | ${R[stability.p99]:--} / ${R[stability.max]:--} | ${R[stability.leaders]} | ${R[stability.terms]} | no leader change | ${R[stability.verdict]} |"
    echo
  fi
  if [ -n "${SNAPMEM:-}" ]; then
    sm() { sed -n "s/.* $1 \([^ ]*\).*/\1/p" <<<"$SNAPMEM"; }
    echo "| memory: a snapshot streams to a new member | state | snapshot file bytes | transfer s | leader RSS before / peak KiB | growth KiB | joiner peak KiB | leader terms | target | verdict |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---|---|"
    echo "| scripts/bench-snapshot-memory.sh --gb $SNAPSHOT_GB | $(sm state_gib) GiB | $(sm snapshot_bytes) | $(sm transfer_s) | $(sm leader_rss_before_kb) / $(sm leader_rss_peak_kb) | $(sm leader_growth_kb) | $(sm joiner_rss_peak_kb) | $(sm terms) | growth <= 65536 KiB | $(sm verdict) |"
    echo
  fi
  echo "kvserver leader RSS after the matrix: ${KV_RSS:-?} KiB. Leader term before -> after the matrix: kvserver ${KV_TERMS:--}, etcd ${ETCD_TERMS:--}."
  echo "Settings: ${DURATION} s per cell after ${WARMUP} s warmup, $KEYS keys preloaded, $VALUE_BYTES-byte values, load at the leader, one kvbench thread (etcd gRPC: etcd-grpc, as many closed-loop clients as kvbench has connections, sharing one gRPC connection); $TRIALS failover trials per configuration."
)

# ------------------------------------------------------------------ chart
# draw_chart <svg>: throughput and p99 per connection count, kvserver beside etcd (gateway
# and gRPC), writes and reads; series without data are left out.
draw_chart() {
  local svg=$1 dat="$RESULTS/matrix.dat" c kind sys f line xtics="" col plots i
  {
    echo "# conns, then for writes and reads: kvserver etcd-gateway etcd-grpc ops/s, the same p99 ms"
    for c in "${CONN_LIST[@]}"; do
      line=$c
      for kind in write read; do
        for f in ops p99; do
          for sys in kvserver etcd grpc; do line+=" ${R[$sys.$kind.$c.$f]:-?}"; done
        done
      done
      echo "$line"
      xtics+="${xtics:+, }\"$c\" $c"
    done
  } >"$dat"
  local names=("kvserver" "etcd, JSON gateway (kvbench)" "etcd, gRPC (etcd-grpc)")
  local colors=("#1f77b4" "#d62728" "#ff7f0e")
  # plot_cmd <first column> [key]: the plot command for three series starting at that
  # column; with "key" their titles (one key for the whole chart, in the corner of the
  # write p99 plot that low latencies at one connection leave empty).
  plot_cmd() {
    local first=$1 out="" title
    for i in 0 1 2; do
      col=$((first + i))
      awk -v c="$col" '!/^#/ && $c != "?" { found = 1 } END { exit !found }' "$dat" || continue
      title="notitle"
      [ "${2:-}" = key ] && title="title '${names[$i]}'"
      out+="${out:+, }'$dat' using 1:$col with linespoints lw 2 pt 7 lc rgb '${colors[$i]}' $title"
    done
    if [ -z "$out" ]; then out="NaN notitle"; fi
    echo "plot $out"
  }
  plots=$(
    cat <<GNUPLOT
set terminal svg size 1100,820 dynamic font "sans,11" background rgb "white"
set output '$svg'
set datafile missing "?"
set multiplot layout 2,2 title "kvserver vs etcd: 3 members + client on this machine ($(nproc) cores), $VALUE_BYTES-byte values, ${DURATION} s per cell ($(date -u '+%Y-%m-%d'))"
set logscale x 2
set xtics ($xtics)
set xrange [$(calc "${CONN_LIST[0]} / 1.5" 2):$(calc "${CONN_LIST[${#CONN_LIST[@]} - 1]} * 1.5" 1)]
set grid
set key top left Left reverse samplen 2
set xlabel "connections (etcd gRPC: clients)"
set ylabel "ops/s"
set yrange [0:*]
set title "writes: throughput"
$(plot_cmd 2)
set title "linearizable reads: throughput"
$(plot_cmd 8)
set ylabel "p99 latency, ms"
set logscale y 10
set yrange [*:*]
set title "writes: p99 latency"
$(plot_cmd 5 key)
set title "linearizable reads: p99 latency"
$(plot_cmd 11)
unset multiplot
GNUPLOT
  )
  echo "$plots" >"$RESULTS/matrix.gnuplot"
  gnuplot "$RESULTS/matrix.gnuplot" 2>>"$LOGS/gnuplot.log"
}
CHART=""
if [ "$SKIP_MATRIX" -eq 0 ] && command -v gnuplot >/dev/null; then
  if draw_chart "$RESULTS/bench-matrix.svg"; then
    CHART="$RESULTS/bench-matrix.svg"
    log "chart: $CHART"
  else
    log "gnuplot failed (log: $LOGS/gnuplot.log)"
  fi
fi

echo
echo "$TABLE"
echo

if [ "$APPEND" -eq 1 ]; then
  {
    echo
    echo "### Run $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo '```'
    echo "$ uname -a"
    uname -a
    echo "$ nproc"
    nproc
    echo "kvserver $KV_VERSION, etcd $("$ETCD" --version 2>/dev/null | head -1 | awk '{ print $3 }')"
    echo "scripts/bench-compare.sh --duration $DURATION --warmup $WARMUP --trials $TRIALS --stability $STABILITY --snapshot-gb $SNAPSHOT_GB --flood-idle $FLOOD_IDLE --flood-slow $FLOOD_SLOW --list-values $LIST_VALUES --list-seconds $LIST_SECONDS --keys $KEYS --conns $CONNS${ONLY:+ --only $ONLY}$([ "$GRPC" -eq 1 ] || echo ' --no-grpc')"
    echo '```'
    echo
    echo "$TABLE"
  } >>"$ROOT/docs/performance.md"
  log "appended the run to docs/performance.md"
  # A run of both systems replaces the chart docs/performance.md shows.
  if [ -n "$CHART" ] && [ -z "$ONLY" ]; then
    cp "$CHART" "$ROOT/docs/bench-matrix.svg"
    log "replaced docs/bench-matrix.svg"
  fi
fi
