#!/usr/bin/env bash
# Instruction count of one forward-auth answer under callgrind (docs/PERFORMANCE.md,
# "Forward-auth under load"): repeatable whatever else runs on the machine, unlike req/s.
# varco-loadgen logs in once through the ACS, then sends N `GET /auth` for that session over C
# keep-alive connections while Varco runs under callgrind, instrumented only during those N
# answers: everything Varco's threads execute per answer (hyper's connection handling and
# parsing, the check, the answer, metrics, logs), but not the kernel's socket work.
# Prints the count per answer and the top functions, inclusive and self; the raw profile is
# kept in OUT.
#
# Usage: scripts/profile-auth.sh        environment: N (2000), C (32), OUT (/tmp/varco-profile-auth),
#                                       BIN_DIR (target/release; set it to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
C=${C:-32}
OUT=${OUT:-/tmp/varco-profile-auth}
BIN_DIR=${BIN_DIR:-}
./scripts/install-deps.sh valgrind openssl >&2
if [ -z "$BIN_DIR" ]; then
  cargo build --release --locked --quiet --bin varco --bin varco-dev-idp --bin varco-loadgen
  BIN_DIR=target/release
fi
rm -rf "$OUT"; mkdir -p "$OUT"
"$BIN_DIR/varco-loadgen" auth --n "$N" --concurrency "$C" --bin-dir "$BIN_DIR" \
  --callgrind "$OUT/varco-auth.out" >&2
f=$(ls "$OUT"/varco-auth.out.* | head -1)
total=$(callgrind_annotate "$f" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "live server, GET /auth with a valid session: $(( total / N )) instructions per answer ($total over $N, $C connections)"
clean() { sed -E 's#/root/.cargo/registry/src/[^/]*/##; s#/rustc/[0-9a-f]*/##; s# \[[^]]*\]$##' | cut -c1-150; }
callgrind_annotate --inclusive=yes "$f" 2>/dev/null | sed -n '/file:function/,$p' | sed -n 2,70p | clean
echo "-- self"
callgrind_annotate "$f" 2>/dev/null | sed -n '/file:function/,$p' | sed -n 2,40p | clean
