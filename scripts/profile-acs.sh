#!/usr/bin/env bash
# Instruction counts of the ACS path under callgrind (docs/PERFORMANCE.md): repeatable
# whatever else runs on the machine, unlike timings.
#   1. in process: varco-validate-files over N fixture Responses, 1 round and 3 rounds; the
#      difference divided by 2N is the count per Response with setup subtracted;
#   2. the live server: varco under callgrind, instrumented only while varco-loadgen posts N
#      prepared Responses to /saml/acs (durable audit on): everything Varco's threads execute
#      per login, HTTP, audit writer and all (the kernel's work, fsync included, is not counted).
# Prints the top functions by inclusive and self instruction counts; the raw files are kept
# in OUT.
#
# Usage: scripts/profile-acs.sh        environment: N (60), OUT (/tmp/varco-profile)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-60}
OUT=${OUT:-/tmp/varco-profile}
./scripts/install-deps.sh valgrind openssl >&2
cargo build --release --locked --quiet --bin varco --bin varco-dev-idp --bin varco-loadgen \
  --bin varco-validate-files
rm -rf "$OUT"; mkdir -p "$OUT"
target/release/varco-loadgen fixtures --n "$N" --out "$OUT/fixtures" >&2
cg() { valgrind --tool=callgrind --callgrind-out-file="$1" "${@:2}" 2>&1 | sed -n 's/.*I *refs: *//p' | tr -d ,; }
one=$(cg "$OUT/validate-1.out" target/release/varco-validate-files "$OUT/fixtures" --rounds 1)
three=$(cg "$OUT/validate-3.out" target/release/varco-validate-files "$OUT/fixtures" --rounds 3)
echo "in process, saml::validate_response: $(( (three - one) / (2 * N) )) instructions per Response"
clean() { sed -E 's#/root/.cargo/registry/src/[^/]*/##; s#/rustc/[0-9a-f]*/##; s# \[[^]]*\]$##' | cut -c1-150; }
callgrind_annotate --inclusive=yes "$OUT/validate-3.out" 2>/dev/null | sed -n '/file:function/,$p' | sed -n 2,60p | clean
echo
target/release/varco-loadgen acs --n "$N" --concurrency 8 --callgrind "$OUT/varco-acs.out" >&2
f=$(ls "$OUT"/varco-acs.out.* | head -1)
total=$(callgrind_annotate "$f" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "live server, POST /saml/acs with durable audit: $(( total / N )) instructions per login"
callgrind_annotate --inclusive=yes "$f" 2>/dev/null | sed -n '/file:function/,$p' | sed -n 2,60p | clean
echo "-- self"
callgrind_annotate "$f" 2>/dev/null | sed -n '/file:function/,$p' | sed -n 2,30p | clean
