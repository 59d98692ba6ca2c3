#!/usr/bin/env bash
# Load harness for logins (docs/PERFORMANCE.md): the release `varco` with durable audit and
# replay protection on, the demo IdP signing with RSA-2048, driven by varco-loadgen
# (crates/loadgen) over loopback. Three runs in one go:
#   1. ACS at its maximum: N prepared Responses, each answering its own pending request,
#      posted by CONNS connections in a closed loop (32 by default, chosen when Varco on one
#      core queued at most 32 heavy jobs, `admission.heavy_queue`, now 128: each ACS post is
#      one or two of them, and more connections than the queue holds measure the 503
#      `broker_busy` admission, not the ACS);
#   2. ACS at a fixed RATE (open loop, latency counted from each login's due time), fresh
#      Responses again;
#   3. full logins (/saml/login with its RSA-2048 AuthnRequest signature, the IdP, the ACS),
#      closed loop.
# Varco is pinned to VARCO_CPUS, the load generator and the IdP to LOADGEN_CPUS.
#
# Usage: scripts/load-acs.sh            environment: N (5000), RATE (2000), CONNS (32),
#        FULL_N (2000), VARCO_CPUS (1), LOADGEN_CPUS (0), AUDIT (on | off | a directory)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
RATE=${RATE:-2000}
CONNS=${CONNS:-32}
FULL_N=${FULL_N:-2000}
VARCO_CPUS=${VARCO_CPUS:-1}
LOADGEN_CPUS=${LOADGEN_CPUS:-0}
AUDIT=${AUDIT:-on}
./scripts/install-deps.sh openssl >&2
cargo build --release --locked --quiet --bin varco --bin varco-dev-idp --bin varco-loadgen

LG=(taskset -c "$LOADGEN_CPUS" target/release/varco-loadgen)
COMMON=(--varco-cpus "$VARCO_CPUS" --idp-cpus "$LOADGEN_CPUS" --audit "$AUDIT")
status=0
echo "== ACS maximum: $N logins, closed loop, $CONNS connections"
"${LG[@]}" acs --n "$N" --concurrency "$CONNS" "${COMMON[@]}" || status=1
echo
echo "== ACS at $RATE logins/s (open loop), $N logins"
# --probe: the moments the VM itself stopped (docs/PERFORMANCE.md, "When the slow logins
# happen"), printed with the run; --timeline: when the slow logins happened, beside them.
"${LG[@]}" acs --n "$N" --rate "$RATE" --concurrency 512 --probe --timeline "${COMMON[@]}" || status=1
echo
echo "== full login (/saml/login + IdP + ACS), $FULL_N logins, closed loop, 32 connections"
"${LG[@]}" full --n "$FULL_N" --concurrency 32 "${COMMON[@]}" || status=1
exit $status
