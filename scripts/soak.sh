#!/usr/bin/env bash
# Soak (docs/PERFORMANCE.md): full logins at a fixed RATE for SECONDS with durable audit on,
# Varco's RSS sampled every 5 s; reports errors and RSS growth after the warm-up. Full logins
# rather than prepared ACS posts because a soak needs fresh signed Responses all along, and
# those expire 5 minutes after signing.
#
# Usage: scripts/soak.sh            environment: RATE (250), SECONDS_ (600), WARMUP (60),
#        VARCO_CPUS (1), LOADGEN_CPUS (0), AUDIT (on)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-250}
DURATION=${SECONDS_:-600}
WARMUP=${WARMUP:-60}
VARCO_CPUS=${VARCO_CPUS:-1}
LOADGEN_CPUS=${LOADGEN_CPUS:-0}
AUDIT=${AUDIT:-on}
./scripts/install-deps.sh openssl >&2
cargo build --release --locked --quiet --bin varco --bin varco-dev-idp --bin varco-loadgen
echo "== soak: full logins at $RATE/s for $DURATION s"
exec taskset -c "$LOADGEN_CPUS" target/release/varco-loadgen full --rate "$RATE" \
  --duration "$DURATION" --warmup "$WARMUP" --concurrency 256 \
  --varco-cpus "$VARCO_CPUS" --idp-cpus "$LOADGEN_CPUS" --audit "$AUDIT"
