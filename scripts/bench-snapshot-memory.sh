#!/usr/bin/env bash
# Issue 7's memory target: kvserver's RSS growth while a >= 1 GiB snapshot streams to a
# new member (target: the leader grows by at most 64 MiB). Issue 16's disk targets, from
# the same run: the leader's data directory at most 1.3x the state plus the retained log
# (sampled every second from the first write to the end of the join, under load, with
# snapshots every --snapshot-entries entries), the joiner caught up with exactly one
# snapshot stream and its directory never above 2.2x the state. "The state" is the
# leader's kv/ directory (RocksDB); sizes are `du` (hard links counted once).
#
#   scripts/bench-snapshot-memory.sh              1 GiB of state (about a minute here)
#   scripts/bench-snapshot-memory.sh --gb 0.05    a quick check of the script itself
#
# Starts 3 kvserver nodes on loopback with small -snapshot-entries/-snapshot-trailing (so
# a new member must be sent a snapshot), PUTs --gb GiB of values to the leader, writes
# small keys until the leader holds a snapshot covering all of it, then starts node3 with
# -join <leader> and samples VmRSS of the leader and node3 every 50 ms (plus the leader's
# VmHWM, reset just before) until node3 is a voter and has applied the leader's commit
# index, while --load-conns kvbench connections write small keys to the leader. Prints
# two machine-readable lines (snapshot-memory:, snapshot-footprint:) and a table; the
# RSS and disk series and the leader's smaps_rollup (before, at peak) stay in results/.
# Exit 0 whatever the verdict.
#
# Options:
#   --gb G                 GiB of values to write (default 1; fractions allowed)
#   --value-kib K          size of each value (default 256; at most 1024 = -max-value-bytes)
#   --values random|kvbench  random (default): curl PUTs one block of /dev/urandom bytes
#                          to every key, which RocksDB cannot compress; kvbench: `kvbench
#                          --preload`, whose values compress ~18x (small snapshot)
#   --snapshot-entries N   kvserver -snapshot-entries (default 500)
#   --snapshot-trailing N  kvserver -snapshot-trailing (default 100)
#   --timeout S            node3 must have caught up within S seconds (default 600)
#   --load-conns N         kvbench connections writing 100-byte values to the leader
#                          during the join (default 8; 0: none)
#   --port-base P          HTTP P..P+3, Raft P+100..P+103 (default 27000)
#   --build-dir DIR        Release build tree (default <repo>/build-release)
#   --data-dir DIR         parent of the run directory (default <build-dir>/bench-data)
#   --keep                 keep the nodes' data (logs and results are always kept)
# Environment:
#   KVSERVER=PATH          that kvserver binary instead of the build tree's
#   RAFT_BUILD_LOCK=F      hold `flock F` over the generation and the join, so that no
#                          build or benchmark of someone sharing the machine overlaps them
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GB=1 VALUE_KIB=256 VALUES=random SNAP_ENTRIES=500 SNAP_TRAILING=100 JOIN_TIMEOUT_S=600
PORT_BASE=27000 BUILD_DIR="$ROOT/build-release" DATA_PARENT="" KEEP=0
START_TIMEOUT_S=60 SNAPSHOT_TIMEOUT_S=300 STOP_TIMEOUT_S=15 SAMPLE_S=0.05 LOAD_CONNS=8
LIMIT_KB=$((64 * 1024))

die() { echo "bench-snapshot-memory: error: $*" >&2; exit 1; }
log() { echo "bench-snapshot-memory: $*" >&2; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --gb) GB=${2:?}; shift 2 ;;
    --value-kib) VALUE_KIB=${2:?}; shift 2 ;;
    --values) VALUES=${2:?}; shift 2 ;;
    --snapshot-entries) SNAP_ENTRIES=${2:?}; shift 2 ;;
    --snapshot-trailing) SNAP_TRAILING=${2:?}; shift 2 ;;
    --timeout) JOIN_TIMEOUT_S=${2:?}; shift 2 ;;
    --load-conns) LOAD_CONNS=${2:?}; shift 2 ;;
    --port-base) PORT_BASE=${2:?}; shift 2 ;;
    --build-dir) BUILD_DIR=${2:?}; shift 2 ;;
    --data-dir) DATA_PARENT=${2:?}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench-snapshot-memory: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$VALUES" in random | kvbench) ;; *) die "--values must be random or kvbench" ;; esac
[[ $GB =~ ^[0-9]*\.?[0-9]+$ ]] || die "--gb must be a number of GiB"
[[ $VALUE_KIB =~ ^[0-9]+$ ]] && [ "$VALUE_KIB" -ge 1 ] && [ "$VALUE_KIB" -le 1024 ] || die "--value-kib must be 1..1024"
VALUE_BYTES=$((VALUE_KIB * 1024))
KEYS=$(awk -v g="$GB" -v v="$VALUE_BYTES" 'BEGIN { n = int(g * 2^30 / v + 0.999999); print (n < 1 ? 1 : n) }')
KVSERVER=${KVSERVER:-$BUILD_DIR/kvserver/kvserver}
KVBENCH=$BUILD_DIR/bench/kvbench; [ -x "$KVBENCH" ] || KVBENCH=$BUILD_DIR/bench-standalone/kvbench
[ -x "$KVSERVER" ] || die "no kvserver binary at $KVSERVER (build Release first: scripts/bench-compare.sh)"
[ "$VALUES" = random ] && [ "$LOAD_CONNS" -eq 0 ] || [ -x "$KVBENCH" ] || die "no kvbench in $BUILD_DIR (build it first)"
LOCK="${RAFT_BUILD_LOCK:-}"

# ------------------------------------------------------------------ data, cleanup
[ -n "$DATA_PARENT" ] || DATA_PARENT="$BUILD_DIR/bench-data"
mkdir -p "$DATA_PARENT"
DATA=$(mktemp -d "$DATA_PARENT/snapmem-$(date -u +%Y%m%dT%H%M%SZ)-XXXX")
LOGS="$DATA/logs" RESULTS="$DATA/results"
mkdir -p "$LOGS" "$RESULTS"
need_kb=$((KEYS * VALUE_KIB * 16)) avail_kb=$(df -Pk "$DATA" | awk 'NR == 2 { print $4 }')  # 4 nodes x (log, DB, 2 snapshots)
[ "$avail_kb" -gt "$need_kb" ] || die "$DATA has $((avail_kb / 1024)) MiB free; the run needs about $((need_kb / 1024)) MiB"

declare -A PIDS=()  # node index -> pid
SAMPLER_PID="" LOAD_PID=""
cleanup() {
  local rc=$? i deadline=$((SECONDS + STOP_TIMEOUT_S))
  trap '' INT TERM
  for i in $SAMPLER_PID $LOAD_PID; do kill "$i" 2>/dev/null || true; done
  for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
  for i in "${!PIDS[@]}"; do
    while kill -0 "${PIDS[$i]}" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  [ "$KEEP" -eq 1 ] || rm -rf "$DATA/kv" "$DATA/value.bin"
  log "logs and results: $DATA"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for off in 0 1 2 3 100 101 102 103; do
  ! port_open $((PORT_BASE + off)) || die "127.0.0.1:$((PORT_BASE + off)) is in use; pick another --port-base"
done

# ------------------------------------------------------------------ cluster helpers
http() { curl -s --max-time 2 "$@" 2>/dev/null || true; }
kv_http() { echo "127.0.0.1:$((PORT_BASE + $1))"; }
kv_start() {  # kv_start <i> [join addr]
  local i=$1 join=()
  [ -z "${2:-}" ] || join=(-join "$2")
  mkdir -p "$DATA/kv/node$i"
  setsid "$KVSERVER" -id "node$i" -laddr "$(kv_http "$i")" -raddr "127.0.0.1:$((PORT_BASE + 100 + i))" \
    -data "$DATA/kv/node$i" -snapshot-entries "$SNAP_ENTRIES" -snapshot-trailing "$SNAP_TRAILING" \
    -log-level info "${join[@]}" </dev/null >>"$LOGS/node$i.log" 2>&1 &
  PIDS[$i]=$!
}
status() { http "http://$(kv_http "$1")/status"; }
field() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p"; }  # a number from the JSON on stdin
metric() { http "http://$(kv_http "$1")/metrics" | awk -v m="$2" '$1 == m { printf "%.0f\n", $2; exit }'; }
role() { status "$1" | sed -n 's/.*"role": *"\([A-Za-z]*\)".*/\1/p'; }
voters() { grep -o '"voter": *true' | wc -l; }
is_voter() { tr -d ' \n' | grep -o "{[^{}]*\"id\":\"$1\"[^{}]*}" | grep -q '"voter":true'; }
rss_kb() { local k v _; while read -r k v _; do [ "$k" = "$2:" ] && { echo "$v"; return; }; done <"/proc/$1/status"; echo 0; }
wait_healthy() {
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$(kv_http "$1")/health")" = 200 ]; do
    kill -0 "${PIDS[$1]}" 2>/dev/null || die "node$1 exited at startup (log: $LOGS/node$1.log)"
    [ "$SECONDS" -lt "$deadline" ] || die "node$1 not healthy within ${START_TIMEOUT_S}s (log: $LOGS/node$1.log)"
    sleep 0.2
  done
}
find_leader() {  # sets L, LEADER_ADDR, LPID: the node leading in the highest term (waits for one)
  local i s t bt=0 deadline=$((SECONDS + START_TIMEOUT_S))
  while :; do
    for i in 0 1 2; do
      s=$(status "$i") t=$(field term <<<"$s")
      [[ $s == *'"role":"Leader"'* ]] && [ "${t:-0}" -gt "$bt" ] && L=$i bt=$t
    done
    if [ "$bt" -gt 0 ]; then LEADER_ADDR=$(kv_http "$L") LPID=${PIDS[$L]}; return 0; fi
    [ "$SECONDS" -lt "$deadline" ] || die "no leader among node0..2 within ${START_TIMEOUT_S}s (logs: $LOGS)"
    sleep 0.2
  done
}

# Every second: ms, then per node: total, kv/ (the state), raft/ without snap/ (the
# log), in KiB; a node not started yet shows 0 0 0.
# du of a directory in KiB. A file removed during the walk (a checkpoint released, a
# snapshot cleaned up) makes du exit 1 with its total still printed: under pipefail that
# ended the sampler after a few seconds.
kb_of() { du -sk "$@" 2>/dev/null | cut -f1 || true; }

disk_sampler() {
  local t0 i d
  t0=$(date +%s%N)
  echo "ms n0_total_kb n0_state_kb n0_log_kb n1_... n2_... n3_..." >"$RESULTS/disk.txt"
  while :; do
    line="$((($(date +%s%N) - t0) / 1000000))"
    for i in 0 1 2 3; do
      d="$DATA/kv/node$i"
      if [ -d "$d/kv" ]; then
        line+=" $(kb_of "$d") $(kb_of "$d/kv") $(kb_of --exclude=snap "$d/raft")"
      else
        line+=" 0 0 0"
      fi
    done
    echo "$line" >>"$RESULTS/disk.txt"
    sleep 1
  done
}

# ------------------------------------------------------------------ 1. three voters
log "run directory $DATA; starting 3 nodes (-snapshot-entries $SNAP_ENTRIES -snapshot-trailing $SNAP_TRAILING)"
kv_start 0; wait_healthy 0
for i in 1 2; do kv_start "$i" "$(kv_http 0)"; wait_healthy "$i"; done
deadline=$((SECONDS + START_TIMEOUT_S))
until [ "$(status 0 | voters)" -eq 3 ]; do
  [ "$SECONDS" -lt "$deadline" ] || die "3 voters not reached within ${START_TIMEOUT_S}s (logs: $LOGS)"
  sleep 0.2
done
find_leader
TERM0=$(status "$L" | field term)
log "3 voters; leader node$L ($LEADER_ADDR, pid $LPID), term $TERM0"

measured() {
  disk_sampler &
  SAMPLER_PID=$!
  # ---------------------------------------------------------------- 2. generate the state
  log "writing $KEYS values of $VALUE_KIB KiB ($VALUES) to the leader"
  local t0=$SECONDS pass left ok="$RESULTS/put-ok.txt" cfg="$DATA/put.cfg"
  if [ "$VALUES" = random ]; then
    head -c "$VALUE_BYTES" /dev/urandom >"$DATA/value.bin"
    : >"$ok"
    for pass in 1 2 3 4 5 6; do  # each pass PUTs the keys not yet acknowledged (200)
      seq 0 $((KEYS - 1)) | awk -v a="$LEADER_ADDR" 'FILENAME == ARGV[1] { ok[$1]; next } !(("big-" $1) in ok) {
        printf "url = \"http://%s/kv/big-%s\"\noutput = \"/dev/null\"\n", a, $1 }' "$ok" - >"$cfg"
      left=$(grep -c '^url' "$cfg" || true)
      [ "$left" -gt 0 ] || break
      [ "$pass" -eq 1 ] || log "pass $((pass - 1)): $left of $KEYS PUTs not acknowledged (HTTP $(awk '$1 != 200 \
        { n[$1]++ } END { for (c in n) { printf "%s%s x%d", s, c, n[c]; s = ", " } }' "$RESULTS/put-pass$((pass - 1)).txt")); again"
      [ "$pass" -lt 6 ] || die "$left of $KEYS PUTs still failing after 5 passes (logs: $LOGS)"
      sleep $((pass > 1 ? 2 : 0))
      curl -s --no-progress-meter -Z --parallel-max 16 --max-time 60 -X PUT -K "$cfg" \
        -H 'Content-Type: application/octet-stream' --data-binary @"$DATA/value.bin" \
        -w '%{http_code} %{url_effective}\n' >"$RESULTS/put-pass$pass.txt" 2>>"$LOGS/curl.log" || true
      awk '$1 == 200 { sub(/.*\/kv\//, "", $2); print $2 }' "$RESULTS/put-pass$pass.txt" >>"$ok"
    done
  else
    "$KVBENCH" --target kvserver --addr "$LEADER_ADDR" --connections 16 --keys "$KEYS" \
      --value-size "$VALUE_BYTES" --preload --warmup 0 --duration 0.2 --json \
      >"$RESULTS/preload.json" || die "kvbench preload failed ($RESULTS/preload.json)"
  fi
  GEN_S=$((SECONDS - t0))
  find_leader  # elections happen under this load; measure whichever node leads now
  GEN_INDEX=$(status "$L" | field commit_index)
  [ -n "$GEN_INDEX" ] || die "no /status from the leader node$L after the writes"
  log "generated in ${GEN_S}s, commit index $GEN_INDEX, leader node$L; writing small keys until a snapshot covers it"
  local pad=0 n snap deadline=$((SECONDS + SNAPSHOT_TIMEOUT_S)) next=0
  while :; do
    snap=$(status "$L" | field snapshot_index)
    if [ "${snap:-0}" -ge "$GEN_INDEX" ]; then
      sleep 2  # let the followers' own snapshot jobs and RocksDB flushes settle
      [ "$(role "$L")" = Leader ] && break
      find_leader; log "leadership moved to node$L; waiting for its snapshot"; continue
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "no snapshot at index >= $GEN_INDEX within ${SNAPSHOT_TIMEOUT_S}s (latest: ${snap:-?})"
    if [ "$SECONDS" -ge "$next" ]; then  # first enough for one snapshot, then a trickle
      n=20; [ "$pad" -gt 0 ] || n=$((SNAP_ENTRIES + 20))
      curl -s --max-time 30 -X PUT -d x -o /dev/null "http://$LEADER_ADDR/kv/pad-[$pad-$((pad + n - 1))]" || true
      pad=$((pad + n)) next=$((SECONDS + 5))
    fi
    sleep 0.5
  done
  SNAP_INDEX=$snap TERM1=$(status "$L" | field term)
  DB_BYTES=$(metric "$L" kv_db_size_bytes)
  local latest  # the newest snapshot: a .snap file or a linked .snapd directory
  latest=$(find "$DATA/kv/node$L/raft/snap" -maxdepth 1 \( -name 'snap-*.snap' -o -name 'snap-*.snapd' \) -printf '%f\n' | sort | tail -1)
  SNAP_BYTES=$(du -sb --apparent-size "$DATA/kv/node$L/raft/snap/$latest" 2>/dev/null | cut -f1)
  log "snapshot index $SNAP_INDEX ($pad small keys), $latest ${SNAP_BYTES:-?} bytes; leader RocksDB ${DB_BYTES:-?} bytes"
  LEADER_SAMPLE_FROM=$(($(wc -l <"$RESULTS/disk.txt") + 1))
  if [ "$LOAD_CONNS" -gt 0 ]; then
    "$KVBENCH" --target kvserver --addr "$LEADER_ADDR" --connections "$LOAD_CONNS" --keys 100000 \
      --value-size 100 --warmup 0 --duration 36000 --timeout 10 >"$RESULTS/load.txt" 2>&1 &
    LOAD_PID=$!
    log "$LOAD_CONNS kvbench connections write 100-byte values to the leader during the join"
  fi

  # The floor of the catch-up target: the snapshot's bytes over loopback TCP, under the
  # same load, read into one 1 MiB buffer and dropped (no disk).
  LOOPBACK_S=$(loopback_s "${SNAP_BYTES:-0}")
  log "loopback floor: ${SNAP_BYTES:-0} bytes in ${LOOPBACK_S} s"

  # ---------------------------------------------------------------- 3. join node3, sample RSS
  echo 5 >"/proc/$LPID/clear_refs" 2>/dev/null || log "warning: cannot reset the leader's VmHWM"
  RSS_BEFORE=$(rss_kb "$LPID" VmRSS)
  cp "/proc/$LPID/smaps_rollup" "$RESULTS/leader-smaps-before.txt" 2>/dev/null || true
  log "leader RSS before the join: $RSS_BEFORE KiB; starting node3 -join $LEADER_ADDR"
  local start_ns j=0 r3 done=0 commit applied now
  start_ns=$(date +%s%N)
  JOIN_START_ISO=$(date -u +%Y-%m-%dT%H:%M:%S)
  kv_start 3 "$LEADER_ADDR"
  RSS_PEAK=$RSS_BEFORE J_PEAK=0 deadline=$((SECONDS + JOIN_TIMEOUT_S))
  echo "ms leader_rss_kb node3_rss_kb" >"$RESULTS/rss.txt"
  while [ "$done" -eq 0 ]; do
    kill -0 "$LPID" 2>/dev/null || die "the leader exited during the join (log: $LOGS/node$L.log)"
    kill -0 "${PIDS[3]}" 2>/dev/null || die "node3 exited during the join (log: $LOGS/node3.log)"
    now=$(rss_kb "$LPID" VmRSS) r3=$(rss_kb "${PIDS[3]}" VmRSS)
    echo "$((($(date +%s%N) - start_ns) / 1000000)) $now $r3" >>"$RESULTS/rss.txt"
    if [ "$now" -gt "$RSS_PEAK" ]; then
      RSS_PEAK=$now
      cp "/proc/$LPID/smaps_rollup" "$RESULTS/leader-smaps-peak.txt" 2>/dev/null || true
    fi
    [ "$r3" -le "$J_PEAK" ] || J_PEAK=$r3
    # Every other sample (about 0.2 s here; each sample takes 80-100 ms on 2 busy cores):
    # is node3 a voter and caught up? Every 10th overstated the catch-up by up to a second.
    if [ $((j++ % 2)) -eq 0 ]; then
      s=$(status "$L")
      commit=$(field commit_index <<<"$s") applied=$(status 3 | field applied_index)
      if is_voter node3 <<<"$s" && [ -n "$applied" ] && [ "$applied" -ge "${commit:-1}" ]; then done=1; fi
      [ "$SECONDS" -lt "$deadline" ] || die "node3 not caught up within ${JOIN_TIMEOUT_S}s (applied ${applied:-?} of ${commit:-?})"
    fi
    sleep "$SAMPLE_S"
  done
  TRANSFER_S=$(awk -v d="$(($(date +%s%N) - start_ns))" 'BEGIN { printf "%.1f", d / 1e9 }')
  JOIN_SAMPLES_TO=$(wc -l <"$RESULTS/disk.txt")
  [ -z "$LOAD_PID" ] || { kill "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; LOAD_PID=""; }
  HWM=$(rss_kb "$LPID" VmHWM)
  [ "$HWM" -le "$RSS_PEAK" ] || RSS_PEAK=$HWM
}

# Seconds to send $1 bytes over a loopback TCP connection (python3; "?" without it).
loopback_s() {
  command -v python3 >/dev/null || { echo "?"; return; }
  python3 - "$1" <<'PY'
import socket, sys, threading, time
n = int(sys.argv[1])
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def sink():
    c, _ = srv.accept(); buf = bytearray(1 << 20); got = 0
    while got < n:
        k = c.recv_into(buf)
        if k == 0: break
        got += k
    c.close()
t = threading.Thread(target=sink); t.start()
start = time.monotonic()
s = socket.create_connection(srv.getsockname()); block = bytes(1 << 20); left = n
while left > 0:
    s.sendall(block[:min(left, len(block))]); left -= min(left, len(block))
s.close(); t.join()
print("%.1f" % (time.monotonic() - start))
PY
}

# The timestamp (column 1) of the first line of log $1 matching $2.
first_ts() { grep -m1 -e "$2" "$1" | cut -d' ' -f1; }
# Seconds from ISO timestamp $1 to $2; "?" when either is missing.
iso_gap_s() {
  [ -n "$1" ] && [ -n "$2" ] || { echo "?"; return; }
  awk -v a="$(date -d "$1" +%s.%N)" -v b="$(date -d "$2" +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

if [ -n "$LOCK" ]; then exec {LOCK_FD}>>"$LOCK"; log "waiting for the lock $LOCK"; flock "$LOCK_FD"; fi
measured
[ -z "$LOCK" ] || flock -u "$LOCK_FD"

# ------------------------------------------------------------------ 4. report
for i in 0 1 2 3; do http "http://$(kv_http "$i")/metrics" >"$RESULTS/metrics-node$i.txt"; done
SENT=$(metric "$L" kv_raft_snapshots_sent_total) INSTALLED=$(metric 3 kv_raft_snapshots_installed_total)
LAST_KEY=big-$((KEYS - 1)); [ "$VALUES" = random ] || LAST_KEY=$(printf 'k%08d' $((KEYS - 1)))
GOT=$(curl -s --max-time 10 "http://$(kv_http 3)/kv/$LAST_KEY?consistency=stale" | wc -c)
[ "$GOT" -eq "$VALUE_BYTES" ] || die "node3 has $GOT bytes under $LAST_KEY, expected $VALUE_BYTES"
[ "${INSTALLED:-0}" -ge 1 ] || log "warning: node3 installed no snapshot: it caught up from the log"
TERM2=$(status "$L" | field term)
[ "$(role "$L")" = Leader ] || log "warning: node$L lost the leadership during the join (logs: $LOGS)"
GROWTH=$((RSS_PEAK - RSS_BEFORE))
VERDICT=FAIL; [ "$GROWTH" -gt "$LIMIT_KB" ] || VERDICT=PASS
STATE_BYTES=$((KEYS * VALUE_BYTES))
STATE_GIB=$(awk -v b="$STATE_BYTES" 'BEGIN { printf "%.2f", b / 2^30 }')
echo "snapshot-memory: state_gib $STATE_GIB state_bytes $STATE_BYTES db_bytes ${DB_BYTES:-?} snapshot_index $SNAP_INDEX snapshot_bytes ${SNAP_BYTES:-?} snapshots_sent ${SENT:-?} snapshots_installed ${INSTALLED:-?} terms $TERM0/$TERM1/${TERM2:-?} transfer_s $TRANSFER_S leader_rss_before_kb $RSS_BEFORE leader_rss_peak_kb $RSS_PEAK leader_growth_kb $GROWTH joiner_rss_peak_kb $J_PEAK verdict $VERDICT (growth <= 64 MiB)"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
# Issue 16: the disk series. Leader (columns 2 + 3L..): (total - log) / state per sample,
# under the small-key load (from the snapshot covering the values to the end of the
# join): its median and its worst sample; and the worst while the values were written.
# Joiner (node3, columns 11..13): its largest total during the join over the leader's
# state at that moment.
kill "$SAMPLER_PID" 2>/dev/null || true
FOOT=$(awk -v l="$L" -v from="$LEADER_SAMPLE_FROM" -v to="$JOIN_SAMPLES_TO" 'NR > 1 {
    t = $(2 + 3 * l); st = $(3 + 3 * l); lg = $(4 + 3 * l)
    if (st > 0 && NR < from && (t - lg) / st > gr) gr = (t - lg) / st
    if (st > 0 && NR >= from && NR <= to) {
      r = (t - lg) / st; rs[++n] = r
      if (r > lr) { lr = r; lt = t; ls = st; ll = lg }
      if ($11 / st > jr) { jr = $11 / st; jt = $11; js = st }
    }
  } END {
    for (i = 2; i <= n; i++) { v = rs[i]; for (j = i - 1; j > 0 && rs[j] > v; j--) rs[j + 1] = rs[j]; rs[j + 1] = v }
    printf "%.2f %.2f %d %d %d %.2f %d %d %.2f\n", (n ? rs[int((n + 1) / 2)] : 0), lr, lt, ls, ll, jr, jt, js, gr
  }' "$RESULTS/disk.txt")
read -r LEADER_MEDIAN LEADER_RATIO LEADER_TOTAL_KB LEADER_STATE_KB LEADER_LOG_KB JOINER_RATIO JOINER_PEAK_KB JOINER_STATE_KB GEN_RATIO <<<"$FOOT"
STREAMS=$(grep -c -e 'snapshot received' -e 'snapshot receive abandoned' -e 'snapshot receive failed' "$LOGS/node3.log" || true)
PREPARE_MAX=$(http "http://$(kv_http "$L")/metrics" | awk '$1 == "kv_raft_snapshot_prepare_seconds_max" { printf "%.3f", $2 }')
# The apply thread's freeze per snapshot during the join (small writes), from the
# leader's "snapshot taken ... prepare_ms=N" lines: median and max, in ms.
PREPARE_JOIN=$(awk -v t="$JOIN_START_ISO" '$1 >= t && /snapshot taken/ {
    for (i = 1; i <= NF; i++) if ($i ~ /^prepare_ms=/) { split($i, a, "="); v[++n] = a[2] + 0 } }
  END { for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j > 0 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
        if (n) printf "%d/%d", v[int((n + 1) / 2)], v[n]; else printf "?" }' "$LOGS/node$L.log")
# The catch-up's parts, from the logs: the stream (leader's "sending snapshot" to node3's
# "snapshot received") and the install (to node3's "snapshot installed").
RECEIVED=$(first_ts "$LOGS/node3.log" 'snapshot received')
STREAM_S=$(iso_gap_s "$(first_ts "$LOGS/node$L.log" 'sending snapshot: peer=node3')" "$RECEIVED")
INSTALL_S=$(iso_gap_s "$RECEIVED" "$(first_ts "$LOGS/node3.log" 'snapshot installed')")
FORM=$(grep -m1 -o 'snapshot received.*form=[a-z]*' "$LOGS/node3.log" | sed 's/.*form=//')
# "A few seconds" over the loopback floor: 5.
CATCHUP_VERDICT=PASS
[ "$LOOPBACK_S" != "?" ] && awk -v t="$TRANSFER_S" -v l="$LOOPBACK_S" 'BEGIN { exit !(t > l + 5) }' && CATCHUP_VERDICT=FAIL
[ "$LOOPBACK_S" != "?" ] || CATCHUP_VERDICT="? (no python3 for the loopback floor)"
FOOT_VERDICT=PASS
awk -v r="$LEADER_MEDIAN" 'BEGIN { exit !(r > 1.3) }' && FOOT_VERDICT=FAIL
awk -v r="$JOINER_RATIO" 'BEGIN { exit !(r > 2.2) }' && FOOT_VERDICT=FAIL
[ "$STREAMS" -eq 1 ] || FOOT_VERDICT=FAIL
echo "snapshot-footprint: state_gib $STATE_GIB leader_median $LEADER_MEDIAN leader_worst $LEADER_RATIO leader_worst_while_loading $GEN_RATIO leader_total_kb $LEADER_TOTAL_KB leader_state_kb $LEADER_STATE_KB leader_log_kb $LEADER_LOG_KB joiner_ratio $JOINER_RATIO joiner_peak_kb $JOINER_PEAK_KB streams $STREAMS transfer_s $TRANSFER_S prepare_max_s ${PREPARE_MAX:-?} join_prepare_ms_median/max $PREPARE_JOIN stream_s $STREAM_S install_s $INSTALL_S form ${FORM:-?} loopback_s $LOOPBACK_S catchup_verdict $CATCHUP_VERDICT verdict $FOOT_VERDICT (leader median <= 1.3x state + log, joiner <= 2.2x state, one stream; catch-up <= loopback + 5 s)"
cat <<EOF

| snapshot to a new member | |
|---|---|
| state written | $KEYS values x $VALUE_KIB KiB ($VALUES) = $STATE_GIB GiB, in ${GEN_S} s |
| leader RocksDB (kv_db_size_bytes) | ${DB_BYTES:-?} bytes |
| snapshot sent | index $SNAP_INDEX, file ${SNAP_BYTES:-?} bytes; sent ${SENT:-?}, installed ${INSTALLED:-?} |
| node3 start -> voter and caught up | $TRANSFER_S s (stream $STREAM_S s, install $INSTALL_S s; received as ${FORM:-?}) |
| the snapshot's bytes over loopback under the same load (the floor) | $LOOPBACK_S s |
| target: catch-up <= loopback + 5 s | $CATCHUP_VERDICT |
| leader term: start / before join / after join | $TERM0 / $TERM1 / ${TERM2:-?} (leader node$L) |
| leader RSS before / peak / growth | $(mib "$RSS_BEFORE") / $(mib "$RSS_PEAK") / $(mib "$GROWTH") |
| node3 RSS peak | $(mib "$J_PEAK") |
| target: leader growth <= 64 MiB | $VERDICT |
| leader directory under small writes, (total - log) / state: median / worst | $LEADER_MEDIAN / $LEADER_RATIO (worst: $(mib "$LEADER_TOTAL_KB") - $(mib "$LEADER_LOG_KB") log, state $(mib "$LEADER_STATE_KB")) |
| leader directory while the values were written, worst | $GEN_RATIO |
| node3 directory during the join, peak / state | $JOINER_RATIO ($(mib "$JOINER_PEAK_KB") / $(mib "$JOINER_STATE_KB")) |
| snapshot streams to node3 | $STREAMS |
| apply thread's snapshot freeze: longest since start / median and max during the join | ${PREPARE_MAX:-?} s / $PREPARE_JOIN ms |
| targets: leader median <= 1.3, node3 <= 2.2, one stream | $FOOT_VERDICT |
EOF
