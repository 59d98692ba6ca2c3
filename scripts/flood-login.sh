#!/usr/bin/env bash
# A `/saml/login` flood against memory (issue 17, docs/PERFORMANCE.md "A 5-minute login
# flood"): K real logins are started at Varco and left at the IdP's door, then one client
# floods `GET /saml/login` (the largest pending login a client can make: 1 KiB return_to)
# for SECONDS while Varco's VmRSS is sampled every SAMPLE seconds, then the K logins are
# completed through the demo IdP and the ACS. Once with the default admission limits, once
# with them off (the pending-login byte budget alone holds the memory).
#
# Usage: scripts/flood-login.sh [SECONDS] [K]   (defaults 300, 50)
#   environment: SAMPLE (default 30), FLOOD_THREADS (default 4), LIMITS (default
#   "default off")
# Varco on core 1; the flood, the IdP and the logins' client on core 0. The K logins come
# from the flooder's own address (loopback): the per-client limit does not tell them apart.
# Needs: openssl, curl (installed when missing), release build.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_FLOOD=${1:-300}
K=${2:-50}
SAMPLE=${SAMPLE:-30}
FLOOD_THREADS=${FLOOD_THREADS:-4}
LIMITS=${LIMITS:-default off}
./scripts/install-deps.sh openssl curl >&2
cargo build --release --quiet --bin varco --bin varco-dev-idp

. scripts/lib/stack.sh
stack_begin flood-login
# shellcheck disable=SC2086 # one instance per word
IDP_CPUS=0 stack_idp_for $LIMITS

rss() { awk '/^(VmRSS|VmHWM)/ {printf "%s %.1f MiB  ", $1, $2 / 1024}' "/proc/$1/status"; }
metric() { curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" 'index($0, m) == 1 {s += $NF} END {print s + 0}'; }

echo "machine: $(nproc) cores; start $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Every instance up from the start: the demo IdP reads each Varco's metadata per request.
declare -A PID
for mode in $LIMITS; do
  extra=""
  [ "$mode" = off ] && extra="[admission]
client_per_minute = 0
global_per_second = 0"
  stack_varco "limits-$mode" "${VPORT[$mode]}" 1 "${MPORT[$mode]}" "$extra"
  PID[$mode]=$STACK_PID
done
for mode in $LIMITS; do
  vport=${VPORT[$mode]}
  pid=${PID[$mode]}
  echo "== admission limits $mode ($(date -u +%T), load $(cut -d' ' -f1 /proc/loadavg))"
  echo "  idle:            $(rss "$pid")"
  taskset -c 0 python3 scripts/lib/logins.py start "$vport" "$IDP" "$K" "$WORK/before-$mode.json" | sed 's/^/  /'
  echo "  after $K starts: $(rss "$pid")"
  taskset -c 0 python3 scripts/flood-login.py "$vport" "$IDP" 100000000 "$FLOOD_THREADS" "$SECONDS_FLOOD" \
    > "$WORK/flood-$mode.out" &
  flood=$!
  pids+=("$flood")
  t=0
  while [ "$t" -lt "$SECONDS_FLOOD" ]; do
    sleep "$SAMPLE"; t=$((t + SAMPLE))
    echo "  flood ${t} s: $(rss "$pid") pending evicted $(metric "${MPORT[$mode]}" varco_pending_evicted_total), rate-limited $(metric "${MPORT[$mode]}" varco_rate_limited_total)"
  done
  wait "$flood" || true
  echo "  flood answers by status, duration: $(cat "$WORK/flood-$mode.out")"
  taskset -c 0 python3 scripts/lib/logins.py finish "$vport" "$WORK/before-$mode.json" | sed 's/^/  /'
  echo "  end:             $(rss "$pid")"
done
echo "end $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
