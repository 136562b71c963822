#!/usr/bin/env bash
# Writes with 8 ranges vs 1 range on a 3-node loopback cluster (docs/performance.md,
# finding 22; issue 17's target). For each round, alternating: a fresh 3-node cluster of
# BIN with default flags (-shards 1: one Raft group, the single-group node; -shards 8:
# ranges mode), node0 bootstrapping, the others joining; for ranges, the run starts once
# every range has a leader and the leaders are spread (each node leads 2 or 3 of the 8).
# Then kvbench: --preload, 10,000 keys spread over the first bytes (--spread-keys),
# 100-byte values, writes only, --cpu-pids of the three servers, against
#   leader   the single group's leader only (the usual way: no forwarding)
#   all      every node, connections round-robin (a write not for a range led by the node
#            it reaches is forwarded: 2/3 of them)
#
#   scripts/bench-ranges.sh [--bin build/kvserver/kvserver] [--rounds 2] [--conns 64]
#                           [--duration 8] [--shards 8] [--kvbench build/bench/kvbench]
#
# Prints one line per run and the mean of each cell.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/build/kvserver/kvserver" KVBENCH="$ROOT/build/bench/kvbench"
ROUNDS=2 CONNS=64 DURATION=8 SHARDS=8
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --shards) SHARDS=$2; shift 2 ;;
    --kvbench) KVBENCH=$2; shift 2 ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
for b in "$BIN" "$KVBENCH"; do [ -x "$b" ] || { echo "bench-ranges.sh: no $b" >&2; exit 2; }; done

# The data ranges each node leads ("node0:3 node1:3 node2:2"), or "" before they all have one.
leaders() {
  curl -s -m 2 "http://127.0.0.1:3600/status" | python3 -c '
import json, sys, collections
try:
    j = json.load(sys.stdin)
except Exception:
    sys.exit(0)
c = collections.Counter()
for r in j.get("ranges", []):
    if not r.get("leader"):
        sys.exit(0)
    c[r["leader"]] += 1
if sum(c.values()) == len(j.get("ranges", [])) and c:
    print(" ".join(f"{k}:{v}" for k, v in sorted(c.items())))'
}

# run SHARDS TARGET: one measured run on a fresh cluster; prints "ops/s cpu_us_per_op".
run() {
  local shards=$1 target=$2 dir pids=() i flags=()
  dir=$(mktemp -d /tmp/bench-ranges.XXXXXX)
  [ "$shards" -gt 1 ] && flags=(-shards "$shards")
  for i in 0 1 2; do
    local join=()
    [ "$i" -gt 0 ] && join=(-join 127.0.0.1:3600)
    "$BIN" -id "node$i" -laddr "127.0.0.1:360$i" -raddr "127.0.0.1:460$i" -data "$dir/n$i" \
      "${flags[@]}" "${join[@]}" >"$dir/n$i.log" 2>&1 &
    pids+=($!)
    sleep 1.5
  done
  local spread="" t
  for t in $(seq 1 150); do
    if [ "$shards" -gt 1 ]; then
      spread=$(leaders)
      # Spread: three leaders, none with more than ceil(shards / 3).
      if [ "$(echo "$spread" | wc -w)" = 3 ] &&
        ! echo "$spread" | tr ' ' '\n' | awk -F: -v max=$(((shards + 2) / 3)) '$2 > max {bad=1} END {exit !bad}'; then
        break
      fi
    elif curl -sf -m 1 http://127.0.0.1:3600/health >/dev/null; then
      break
    fi
    sleep 0.2
  done
  local addr="127.0.0.1:3600,127.0.0.1:3601,127.0.0.1:3602"
  [ "$target" = leader ] && addr=127.0.0.1:3600  # node0 bootstrapped: it leads
  local pidlist
  pidlist=$(IFS=,; echo "${pids[*]}")
  local out
  out=$("$KVBENCH" --addr "$addr" --connections "$CONNS" --duration "$DURATION" --warmup 2 \
    --keys 10000 --preload --spread-keys --cpu-pids "$pidlist" --json) || true
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  rm -rf "$dir"
  echo "$out" | python3 -c '
import json, sys
j = json.load(sys.stdin)
ops = j.get("ops_per_s", 0)
cpu = j.get("cpu_us_per_op", -1)
print(f"{ops:.0f} {cpu:.1f}")' | sed "s/\$/ ${spread:+($spread)}/"
}

declare -A sum
cells=("1 leader" "1 all" "$SHARDS all")
for r in $(seq 1 "$ROUNDS"); do
  for cell in "${cells[@]}"; do
    read -r shards target <<<"$cell"
    res=$(run "$shards" "$target")
    echo "round $r  shards $shards  clients->$target  writes/s cpu_us/op: $res"
    sum["$cell"]=$(echo "${sum[$cell]:-0} $(echo "$res" | cut -d' ' -f1)" | awk '{print $1 + $2}')
  done
done
for cell in "${cells[@]}"; do
  read -r shards target <<<"$cell"
  echo "mean  shards $shards  clients->$target  $(echo "${sum[$cell]} $ROUNDS" | awk '{printf "%.0f", $1 / $2}') writes/s"
done
