#!/usr/bin/env bash
# Every ratio of issues 17 and 20 in one run, each beside the machine's load and the
# hypervisor's steal while it ran (docs/PERFORMANCE.md, "bench-compare"). Ratios, not
# absolute figures: each pair is measured side by side in the same run.
#
#   1. validation / crypto floor, 8 KB and 11 KB Responses    (cargo bench xmldsig ratio)
#      the same by instruction count, load-independent       (scripts/ratio-instructions.sh)
#   2. RSA-2048 verify: aws-lc-rs (prepared and not) / ring     (cargo bench xmldsig rsa)
#   3. worst-case request / normal validation, instructions    (scripts/hostile-instructions.sh)
#   4. /auth with a session / nginx `return 204`, and p99      (scripts/load-auth.sh)
#   5. ACS: closed-loop maximum, CPU per login; open loop at RATE: p99, p99.9 (scripts/load-acs.sh)
#   6. SATOSA CPU per ACS POST / Varco CPU per ACS POST, rounds Varco, SATOSA, Varco
#      (scripts/compare-satosa.sh: SATOSA 8.6.0 from PyPI in a venv)
#
# Not here: the pysaml2 comparison (`make compare-pysaml2`) and the soak (`make soak`, ten
# minutes). Usage: scripts/bench-compare.sh   environment: RATE (2000), N (5000),
# AUTH_SECONDS (15), SATOSA_N (300).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-2000}
N=${N:-5000}
AUTH_SECONDS=${AUTH_SECONDS:-15}
OUT=$(mktemp -d /tmp/varco-bench-compare-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# Steal (and busy) share of all CPUs between two reads of /proc/stat.
cpu_sample() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $9}' /proc/stat; }
steal_since() {
  local t0 s0 t1 s1
  read -r t0 s0 <<<"$1"
  read -r t1 s1 < <(cpu_sample)
  awk -v dt=$((t1 - t0)) -v ds=$((s1 - s0)) 'BEGIN { printf "%.1f %%", dt ? 100 * ds / dt : 0 }'
}
load() { cut -d' ' -f1-3 /proc/loadavg; }

summary=()
step() {
  local name=$1
  shift
  echo "== $name (load average $(load))"
  local before
  before=$(cpu_sample)
  "$@" 2>&1 | tee "$OUT/$name.log"
  summary+=("$(printf '%-10s load %-16s steal %s' "$name" "$(load)" "$(steal_since "$before")")")
}

cargo build --release --locked --quiet --bin varco --bin varco-dev-idp --bin varco-loadgen \
  --bin varco-hostile
step ratio taskset -c 1 cargo bench --locked -q -p xmldsig --bench ratio
step ratio_ir ./scripts/ratio-instructions.sh
step rsa taskset -c 1 cargo bench --locked -q -p xmldsig --bench rsa
step hostile ./scripts/hostile-instructions.sh
step auth ./scripts/load-auth.sh "$AUTH_SECONDS" 32
step acs env N="$N" RATE="$RATE" ./scripts/load-acs.sh
step satosa env N="$N" SATOSA_N="${SATOSA_N:-300}" ./scripts/compare-satosa.sh

echo
echo "== summary ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
for line in "${summary[@]}"; do echo "$line"; done
echo "-- validation / floor (target ≤ 1.3):"
grep -E "Response|ratio full" "$OUT/ratio.log" | sed 's/^/   /' || true
grep -E "^(size|8k|11k) " "$OUT/ratio_ir.log" | sed 's/^/   instructions: /' || true
echo "-- RSA verify / ring:"
grep -E "^(ring|aws-lc-rs|sha256)" "$OUT/rsa.log" | sed 's/^/   /' || true
echo "-- worst case / normal validation, instructions (target ≤ 10):"
grep -E "^(slo|acs)_" "$OUT/hostile.log" | awk '{print "   " $1, $NF}'
echo "-- /auth / nginx return 204 (target ≥ 60 %, p99 < 1 ms):"
awk '/^== /{name=$0} /Requests\/sec/{print name, $2}' "$OUT/auth.log" | awk '
  /nginx/{n=$NF} /valid session/{v=$NF} END { if (n) printf "   nginx %.0f req/s, varco %.0f req/s: %.1f %%\n", n, v, 100 * v / n }'
grep -E "^== |99%" "$OUT/auth.log" | sed 's/^/   /'
echo "-- ACS (targets: open loop p99 < 3 ms, p99.9 < 10 ms; < 100 µs CPU per login):"
grep -E "^== |logins/s|latency|varco CPU" "$OUT/acs.log" | sed 's/^/   /'
echo "-- SATOSA / Varco, CPU per ACS POST (target ≥ 1000):"
grep -E "^pysaml2 backend|CPU per ACS POST|^  satosa CPU split|^FAILED" "$OUT/satosa.log" | sed 's/^/   /' || true
