#!/usr/bin/env bash
# Instruction counts of validating the 8 KB and 11 KB SPID Responses against their crypto floor
# (issue 20 target 3: at most 1.3x), from the `ratio` bench run under callgrind. Instructions
# do not change with the machine's load, so this ratio repeats on a shared machine where
# wall-clock ratios drift; it does not see cache and branch effects (the interleaved
# wall-clock rounds of `cargo bench -p xmldsig --bench ratio` do).
# Each side runs once with N calls and once with none (the same setup); the difference over N
# is one call.
#
# Usage: scripts/ratio-instructions.sh        environment: N (calls per side, default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh valgrind >&2
cargo bench --locked -q -p xmldsig --bench ratio --no-run 2>/dev/null
BIN=$(ls -t target/release/deps/ratio-* | grep -v '\.d$' | head -1)
N=${N:-50}
OUT=$(mktemp -d /tmp/varco-ratio-ir-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

ir() {
  RATIO_SIZE=$1 RATIO_ONLY=$2 RATIO_CALLS=$3 valgrind --tool=callgrind \
    --callgrind-out-file="$OUT/cg.out" "$BIN" 2>"$OUT/err" >/dev/null
  sed -n 's/.*I *refs: *//p' "$OUT/err" | tr -d ,
}

echo "machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/')"
printf '%-5s %14s %14s %7s\n' size floor/call full/call ratio
for size in 8k 11k; do
  per() { echo $(( ($(ir "$size" "$1" "$N") - $(ir "$size" "$1" 0)) / N )); }
  floor=$(per floor)
  full=$(per full)
  ratio=$(awk -v a="$full" -v b="$floor" 'BEGIN { printf "%.3f", a / b }')
  printf '%-5s %14s %14s %7s\n' "$size" "$floor" "$full" "$ratio"
done
