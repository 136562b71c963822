#!/usr/bin/env bash
# A/B write throughput of two kvserver binaries (docs/performance.md, finding 15): for each
# round and each connection count, a fresh 3-node cluster on loopback (127.0.0.1:3500-3502,
# Raft 4500-4502, data in a temporary directory, default flags) per binary, alternating A
# then B, and one kvbench run against the leader (node0): --preload, 10,000 keys, 100-byte
# values, writes only unless --read-ratio.
#
#   scripts/bench-ab.sh A_KVSERVER B_KVSERVER [--rounds 2] [--conns 16,64] [--duration 8]
#                       [--read-ratio 0] [--kvbench build/bench/kvbench]
#
# Prints one line per run and the mean of each cell, B / A.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 2 ] || { sed -n '2,10p' "$0"; exit 2; }
A=$1 B=$2; shift 2
ROUNDS=2 CONNS=16,64 DURATION=8 RR=0 KVBENCH="$ROOT/build/bench/kvbench"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --read-ratio) RR=$2; shift 2 ;;
    --kvbench) KVBENCH=$2; shift 2 ;;
    *) echo "bench-ab.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for bin in "$A" "$B" "$KVBENCH"; do [ -x "$bin" ] || { echo "bench-ab.sh: no $bin" >&2; exit 2; }; done

# run BIN CONNS: prints ops/s of one run on a fresh cluster.
run() {
  local bin=$1 conns=$2 dir pids=() i
  dir=$(mktemp -d /tmp/bench-ab.XXXXXX)
  for i in 0 1 2; do
    local join=()
    [ "$i" -gt 0 ] && join=(-join 127.0.0.1:3500)
    "$bin" -id "n$i" -laddr "127.0.0.1:350$i" -raddr "127.0.0.1:450$i" -data "$dir/n$i" \
      "${join[@]}" >"$dir/n$i.log" 2>&1 &
    pids+=($!)
    sleep 1.5
  done
  sleep 2
  timeout $((DURATION + 60)) "$KVBENCH" --addr 127.0.0.1:3500 --connections "$conns" \
    --duration "$DURATION" --warmup 2 --read-ratio "$RR" --keys 10000 --preload 2>&1 |
    awk '/^ops/ { for (i = 1; i <= NF; ++i) if ($i == "=") { print $(i + 1); exit } }'
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  rm -rf "$dir"
}

declare -A sum_a sum_b
for ((r = 1; r <= ROUNDS; ++r)); do
  for c in ${CONNS//,/ }; do
    a=$(run "$A" "$c"); b=$(run "$B" "$c")
    echo "round $r conns $c: A $a ops/s, B $b ops/s"
    sum_a[$c]=$(awk -v x="${sum_a[$c]:-0}" -v y="${a:-0}" 'BEGIN { print x + y }')
    sum_b[$c]=$(awk -v x="${sum_b[$c]:-0}" -v y="${b:-0}" 'BEGIN { print x + y }')
  done
done
for c in ${CONNS//,/ }; do
  awk -v c="$c" -v a="${sum_a[$c]}" -v b="${sum_b[$c]}" -v n="$ROUNDS" \
    'BEGIN { printf "conns %s: mean A %.1f, mean B %.1f, B / A %.3f\n", c, a / n, b / n, (a > 0 ? b / a : 0) }'
done
