#!/usr/bin/env bash
# Backups in ranges mode (docs/state-format.md, "Ranges backups"): time and memory of
# `kvctl snapshot save` on a -shards node holding --mib MiB of incompressible values,
# then of `kvserver -restore` from that file. The backup streams each range's RocksDB
# checkpoint into a file and copies the files into one: the node's memory must not grow
# with the state (VmHWM growth, reset just before the save), nor the restore's.
#
#   scripts/bench-ranges-backup.sh               512 MiB over 8 ranges
#   scripts/bench-ranges-backup.sh --mib 32      a quick check of the script itself
#
# Prints one machine-readable line (ranges-backup: ...). Exit 0 whatever it measures.
#
# Options:
#   --mib M          MiB of values to write (default 512)
#   --value-kib K    size of each value (default 256)
#   --shards N       ranges (default 8)
#   --port-base P    HTTP P, P+1; Raft P+100, P+101 (default 27200)
#   --build-dir DIR  build tree with kvserver and kvctl (default <repo>/build)
#   --keep           keep the run directory
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MIB=512
VALUE_KIB=256
SHARDS=8
PORT=27200
BUILD="$ROOT/build"
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --mib) MIB="$2"; shift 2 ;;
    --value-kib) VALUE_KIB="$2"; shift 2 ;;
    --shards) SHARDS="$2"; shift 2 ;;
    --port-base) PORT="$2"; shift 2 ;;
    --build-dir) BUILD="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
KVSERVER="$BUILD/kvserver/kvserver"
KVCTL="$BUILD/kvserver/kvctl"
RUN="$BUILD/bench-data/ranges-backup-$$"
mkdir -p "$RUN"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ "$KEEP" = 0 ]; then rm -rf "$RUN"; else echo "kept $RUN"; fi
}
trap cleanup EXIT

start() {  # start NAME HTTP_PORT RAFT_PORT EXTRA...: the pid in $STARTED
  local name="$1" hp="$2" rp="$3"
  shift 3
  "$KVSERVER" -id "$name" -laddr "127.0.0.1:$hp" -raddr "127.0.0.1:$rp" -data "$RUN/$name" \
    -range-max-bytes 0 "$@" > "$RUN/$name.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$hp/readyz")" = 200 ] &&
      return 0
    sleep 0.1
  done
  echo "$name did not become ready; its log:" >&2
  tail -20 "$RUN/$name.log" >&2
  exit 1
}
kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$2/status"; }

start node0 "$PORT" $((PORT + 100)) -shards "$SHARDS"
head -c $((VALUE_KIB * 1024)) /dev/urandom > "$RUN/value"
count=$((MIB * 1024 / VALUE_KIB))
echo "writing $count values of $VALUE_KIB KiB over $SHARDS ranges..."
# Keys spread over first bytes from '!' to 'z' (none needs escaping in a URL), so over
# every range of the bootstrap.
ALPH='!*0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
key_of() { printf '%s%06d' "${ALPH:$(($1 % ${#ALPH})):1}" "$1"; }
for i in $(seq 0 $((count - 1))); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$RUN/value" \
    "http://127.0.0.1:$PORT/kv/$(key_of "$i")")
  [ "$code" = 200 ] || { echo "PUT $key: $code" >&2; exit 1; }
done

pid=${PIDS[0]}
echo 5 > "/proc/$pid/clear_refs"  # VmHWM := VmRSS
rss_before=$(kib VmRSS "$pid")
t0=$(date +%s.%N)
"$KVCTL" -addr "127.0.0.1:$PORT" snapshot save "$RUN/backup.file" > "$RUN/save.out"
t1=$(date +%s.%N)
hwm=$(kib VmHWM "$pid")
# Apparent sizes (RocksDB preallocates file space that du would count); after the save,
# whose checkpoints flushed the memtables. The state holds each value twice: the key's
# record and its change-history event (watches).
state_kib=$(du -sk --apparent-size "$RUN/node0/ranges" | cut -f1)
backup_kib=$(du -k "$RUN/backup.file" | cut -f1)
cat "$RUN/save.out"

kill -9 "$pid"
wait "$pid" 2>/dev/null || true
t2=$(date +%s.%N)
start node1 $((PORT + 1)) $((PORT + 101)) -restore "$RUN/backup.file"
t3=$(date +%s.%N)
restore_hwm=$(kib VmHWM "$STARTED")
restored_kib=$(du -sk --apparent-size "$RUN/node1/ranges" | cut -f1)
# Every value is back: a sample of keys read from the restored node.
for i in 0 $((count / 2)) $((count - 1)); do
  key=$(key_of "$i")
  got=$(curl -s "http://127.0.0.1:$((PORT + 1))/kv/$key" | wc -c)
  [ "$got" = $((VALUE_KIB * 1024)) ] || { echo "restored $key: $got bytes" >&2; exit 1; }
done

awk -v s="$state_kib" -v b="$backup_kib" -v r0="$rss_before" -v h="$hwm" \
  -v save="$(echo "$t1 - $t0" | bc)" -v rest="$(echo "$t3 - $t2" | bc)" -v rh="$restore_hwm" \
  -v rk="$restored_kib" -v n="$SHARDS" 'BEGIN {
  printf "ranges-backup: ranges=%d state_mib=%.0f backup_mib=%.0f save_s=%.1f save_mib_s=%.0f rss_before_mib=%.0f hwm_growth_mib=%.1f restore_s=%.1f restore_hwm_mib=%.0f restored_mib=%.0f\n",
    n, s / 1024, b / 1024, save, b / 1024 / save, r0 / 1024, (h - r0) / 1024, rest, rh / 1024, rk / 1024
}'
