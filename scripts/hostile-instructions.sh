#!/usr/bin/env bash
# Instruction counts of each worst-case request against the normal 8 KB SPID Response
# (issue 17's "at most 10x" target; docs/PERFORMANCE.md). Callgrind counts instructions, which
# other tenants of a shared machine do not change, so the ratio is repeatable under load where
# CPU-time ratios are not. Each case runs in `varco-hostile --only CASE --calls N` and once with
# `--calls 0` (the same setup: key loading, signing, document generation); the difference over
# N is the instructions of one call.
#
# Usage: scripts/hostile-instructions.sh
#   environment: ACS_BYTES (ACS document size, default 40704: within saml.max_response_bytes;
#   261888 is the parser's limit), N (calls per worst case, default 3; the normal case 10 N)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh valgrind >&2
cargo build --release --locked --quiet --bin varco-hostile
ACS_BYTES=${ACS_BYTES:-40704}
N=${N:-3}
OUT=$(mktemp -d /tmp/varco-hostile-ir-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

ir() {
  valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
    target/release/varco-hostile --acs-bytes "$ACS_BYTES" --only "$1" --calls "$2" \
    2>"$OUT/err" >"$OUT/out"
  sed -n 's/.*I *refs: *//p' "$OUT/err" | tr -d ,
}

echo "machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/')"
printf '%-17s %9s  %-34s %14s %8s\n' case bytes outcome "instr/call" ratio
normal=0
for case in normal slo_worst slo_worst_signed acs_worst acs_worst_signed; do
  calls=$N
  [ "$case" != normal ] || calls=$((N * 10))
  base=$(ir "$case" 0)
  total=$(ir "$case" "$calls")
  read -r _ bytes outcome < "$OUT/out"
  per=$(( (total - base) / calls ))
  [ "$case" != normal ] || normal=$per
  ratio=$(awk -v a="$per" -v b="$normal" 'BEGIN { printf "%.1f", a / b }')
  printf '%-17s %9s  %-34s %14s %7sx\n' "$case" "$bytes" "$outcome" "$per" "$ratio"
done
