#!/usr/bin/env bash
# Soak (docs/PERFORMANCE.md): full logins at a fixed RATE for SECONDS with durable audit on,
# Varco's RSS sampled every 5 s; reports errors and RSS growth after the warm-up. Full logins
# rather than prepared ACS posts because a soak needs fresh signed Responses all along, and
# those expire 5 minutes after signing.
#
# The demo IdP signs with P-256 here (IDP_KEY=p256), not RSA-2048 as SPID IdPs do. The IdP runs
# on the generator's core, and on a slow VM (2026-12-08) RSA signing of 500 Responses a second
# left that core behind its schedule: the backlog reached the 256 logins in flight and Varco's
# bounded heavy queue refused the bursts (1,509 errors of 300,000), which measured the harness,
# not Varco. What the soak measures is Varco's memory over time; the key type changes only which
# signature Varco verifies per login (ECDSA instead of RSA), not what it keeps. IDP_KEY=rsa2048
# restores the SPID key.
#
# Usage: scripts/soak.sh            environment: RATE (250), SECONDS_ (600), WARMUP (60),
#        VARCO_CPUS (1), LOADGEN_CPUS (0), AUDIT (on), IDP_KEY (p256), BIN_DIR (unset: build)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-250}
DURATION=${SECONDS_:-600}
WARMUP=${WARMUP:-60}
VARCO_CPUS=${VARCO_CPUS:-1}
LOADGEN_CPUS=${LOADGEN_CPUS:-0}
AUDIT=${AUDIT:-on}
IDP_KEY=${IDP_KEY:-p256}
./scripts/install-deps.sh openssl >&2
if [ -n "${BIN_DIR:-}" ]; then
  LOADGEN=$BIN_DIR/varco-loadgen
  BIN_ARGS=(--bin-dir "$BIN_DIR")
else
  cargo build --release --locked --quiet --bin varco --bin varco-dev-idp --bin varco-loadgen
  LOADGEN=target/release/varco-loadgen
  BIN_ARGS=()
fi
echo "== soak: full logins at $RATE/s for $DURATION s, IdP key $IDP_KEY"
exec taskset -c "$LOADGEN_CPUS" "$LOADGEN" full --rate "$RATE" \
  --duration "$DURATION" --warmup "$WARMUP" --concurrency 256 \
  --varco-cpus "$VARCO_CPUS" --idp-cpus "$LOADGEN_CPUS" --audit "$AUDIT" --idp-key "$IDP_KEY" \
  "${BIN_ARGS[@]}"
