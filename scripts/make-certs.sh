#!/usr/bin/env bash
# Makes a test certificate authority and certificates signed by it, with the openssl command
# (Debian's openssl package). For tests and local clusters: the keys are not protected by a
# passphrase, and the CA key stays beside the certificates.
#
#   scripts/make-certs.sh [-d DIR] [-n "node0 node1 node2"] [-c "admin writer reader"] [-D DAYS]
#
# Writes, in DIR (default ./certs, made 0700; keys 0600):
#   ca.crt, ca.key          the CA (CN "kvserver test CA <DIR's basename>")
#   <node>.crt, <node>.key  one per -n name: CN=<node>, serverAuth and clientAuth (a node is
#                           a TLS server on both ports and a client when it dials a peer),
#                           subjectAltName IP:127.0.0.1, IP:::1, DNS:localhost, DNS:<node>
#   <client>.crt/.key       one per -c name: CN=<client>, clientAuth only (kvctl -cert, or
#                           a CN mapped to a role by kvserver's -auth-file)
# Reuses an existing CA in DIR, so certificates can be added or renewed (rotation: run it
# again with -D and send kvserver SIGHUP). Run it twice with different -d to get two CAs
# that do not trust each other.
set -euo pipefail

dir=./certs
nodes="node0 node1 node2"
clients="admin writer reader"
days=365
while getopts "d:n:c:D:h" opt; do
  case "$opt" in
    d) dir=$OPTARG ;;
    n) nodes=$OPTARG ;;
    c) clients=$OPTARG ;;
    D) days=$OPTARG ;;
    h) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "make-certs: unknown option (try -h)" >&2; exit 2 ;;
  esac
done
command -v openssl >/dev/null || { echo "make-certs: openssl not found (apt-get install openssl)" >&2; exit 1; }

umask 077
mkdir -p "$dir"
chmod 700 "$dir"
ca_name="kvserver test CA $(basename "$(cd "$dir" && pwd)")"

if [ ! -f "$dir/ca.crt" ] || [ ! -f "$dir/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -days "$days" -subj "/CN=$ca_name" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
fi

# issue NAME USAGE SAN: a key and a certificate signed by the CA.
issue() {
  local name=$1 usage=$2 san=$3 ext
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    if [ -n "$san" ]; then echo "subjectAltName=$san"; fi
  } >"$ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/$name.crt" -days "$days" -extfile "$ext" 2>/dev/null
  rm -f "$dir/$name.csr" "$ext"
}

for n in $nodes; do
  issue "$n" "serverAuth,clientAuth" "IP:127.0.0.1,IP:::1,DNS:localhost,DNS:$n"
done
for c in $clients; do
  issue "$c" "clientAuth" ""
done
chmod 600 "$dir"/*.key
echo "make-certs: CA and certificates for [$nodes] and clients [$clients] in $dir"
