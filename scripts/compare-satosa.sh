#!/usr/bin/env bash
# SATOSA beside Varco's ACS, in one run (issue 20, target 4: Varco's CPU per ACS POST at least
# 1,000 times below SATOSA's; docs/PERFORMANCE.md, "SATOSA beside Varco").
#
# Three rounds, alternated, each side pinned to the same core (CPU) and the load generator
# and the demo IdP to LOADGEN_CPUS:
#   1. Varco: `varco-loadgen acs`, N logins closed loop over CONNS connections, audit on
#      (the release `varco` and the demo IdP signing with RSA-2048, started by the loadgen);
#   2. SATOSA 8.6.0 (PyPI, pinned, in a venv of scripts/py-venv.sh) under gunicorn, its SAML2
#      backend (pysaml2 SP: signed AuthnRequests, Response and Assertion signatures required,
#      only answers to its own outstanding requests) trusting the demo IdP (RSA-2048), and the
#      bench frontend of tests/peers/satosa answering 200 with the mapped attributes:
#      `varco-loadgen satosa` prepares SATOSA_N logins through SATOSA and the IdP, then posts
#      them to SATOSA's ACS closed loop over SATOSA_CONNS connections, and counts the CPU of
#      SATOSA's process tree over the POSTs only;
#   3. Varco again.
# Every POST must succeed on both sides: failures are printed and fail the run (exit 1).
#
# One gunicorn worker (sync, as SATOSA's docs run it): the SAML2 backend keeps its outstanding
# AuthnRequest IDs in the worker's memory, so with `allow_unsolicited: false` the Response must
# reach the worker that sent the request; and on one core more workers add no capacity.
#
# Usage: scripts/compare-satosa.sh     environment: N (3000 Varco logins a round), CONNS (32),
#        SATOSA_N (300), SATOSA_CONNS (4), CPU (1), LOADGEN_CPUS (0)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-3000}
CONNS=${CONNS:-32}
SATOSA_N=${SATOSA_N:-300}
SATOSA_CONNS=${SATOSA_CONNS:-4}
CPU=${CPU:-1}
LOADGEN_CPUS=${LOADGEN_CPUS:-0}
# xmlsec1: pysaml2's default signature backend runs it for every signature it checks.
./scripts/install-deps.sh xmlsec1 openssl curl python3-venv >&2
VENV=$(./scripts/py-venv.sh satosa satosa==8.6.0 pysaml2==7.5.5 gunicorn==27.0.1)
cargo build --release --locked --quiet --bin varco --bin varco-dev-idp --bin varco-loadgen

WORK=$(mktemp -d /tmp/varco-satosa-XXXXXX)
started=()
stop_started() {
  local p
  for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${started[@]}"; do wait "$p" 2>/dev/null || true; done
  started=()
}
trap 'stop_started; rm -rf "$WORK"' EXIT
# Stops one process this script started, and forgets it.
stop_one() {
  local p keep=()
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for p in "${started[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  started=("${keep[@]}")
}

LG=(taskset -c "$LOADGEN_CPUS" target/release/varco-loadgen)
value() { sed -n "s/$1/\1/p" | head -n1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {
  local url=$1 pid=$2 log=$3 i
  for i in $(seq 1 600); do
    curl -sf -o /dev/null "$url" && return 0
    kill -0 "$pid" 2>/dev/null || { echo "exited before $url answered:" >&2; cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "$url not ready after 60 s" >&2
  return 1
}

# The demo IdP on PORT with its key in DIR/idp, serving the SP of metadata SOURCE; sets idp.
idp=
start_idp() {
  taskset -c "$LOADGEN_CPUS" target/release/varco-dev-idp --listen "127.0.0.1:$1" \
    --state-dir "$2/idp" --sp-metadata "$3" >/dev/null 2>>"$2/idp.log" &
  idp=$!
  started+=("$idp")
  wait_http "http://127.0.0.1:$1/healthz" "$idp" "$2/idp.log"
}

status=0
varco_round() {
  echo "== Varco: $N logins, closed loop, $CONNS connections, audit on, varco on cpu $CPU"
  "${LG[@]}" acs --n "$N" --concurrency "$CONNS" --varco-cpus "$CPU" --idp-cpus "$LOADGEN_CPUS" \
    --audit on | tee "$WORK/varco-$1.log" || status=1
}

satosa_round() {
  local idp_port sp_port dir="$WORK/satosa" peer="$PWD/tests/peers/satosa"
  mkdir -p "$dir/idp"
  idp_port=$(free_port)
  sp_port=$(free_port)
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=bench-idp \
    -keyout "$dir/idp/idp-key.pem" -out "$dir/idp/idp-cert.pem" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=bench-satosa \
    -keyout "$dir/sp.key.pem" -out "$dir/sp.crt.pem" 2>/dev/null
  # The IdP's metadata goes into SATOSA's configuration, and SATOSA's SP metadata (which
  # SATOSA serves at its entityID) into the IdP's: the IdP is started first reading SATOSA's
  # metadata from its URL, then restarted, same key and address, with it saved to a file, so
  # that preparing a login does not make SATOSA build its metadata again. With it the IdP
  # serves only that SP, resolves its ACS, and checks each AuthnRequest's signature.
  start_idp "$idp_port" "$dir" "http://127.0.0.1:$sp_port/Saml2/metadata"
  curl -sf "http://127.0.0.1:$idp_port/metadata" >"$dir/idp-metadata.xml"

  echo "== SATOSA $("$VENV/python" -c 'import satosa; print(satosa.__version__)'): $SATOSA_N logins, closed loop, $SATOSA_CONNS connections, gunicorn (1 sync worker) on cpu $CPU"
  BENCH_SATOSA_BASE="http://127.0.0.1:$sp_port" BENCH_SATOSA_DIR="$peer" \
    BENCH_SP_KEY="$dir/sp.key.pem" BENCH_SP_CERT="$dir/sp.crt.pem" \
    BENCH_IDP_METADATA="$dir/idp-metadata.xml" SATOSA_CONFIG="$peer/proxy_conf.yaml" \
    SATOSA_STATE_ENCRYPTION_KEY="$(openssl rand -hex 32)" \
    taskset -c "$CPU" "$VENV/gunicorn" --chdir "$peer" --workers 1 --no-control-socket \
    --bind "127.0.0.1:$sp_port" satosa.wsgi:app >/dev/null 2>"$dir/satosa.log" &
  local gunicorn=$!
  started+=("$gunicorn")
  wait_http "http://127.0.0.1:$sp_port/Saml2/metadata" "$gunicorn" "$dir/satosa.log"
  curl -sf "http://127.0.0.1:$sp_port/Saml2/metadata" >"$dir/satosa-metadata.xml"
  stop_one "$idp"
  start_idp "$idp_port" "$dir" "$dir/satosa-metadata.xml"
  "${LG[@]}" satosa --satosa-url "http://127.0.0.1:$sp_port" --satosa-pid "$gunicorn" \
    --n "$SATOSA_N" --concurrency "$SATOSA_CONNS" | tee "$WORK/satosa.log" || status=1
  if grep -q ERROR "$dir/satosa.log"; then
    echo "SATOSA's log has errors:"
    grep ERROR "$dir/satosa.log" | sort | uniq -c | sort -rn | head -n 5
  fi
  stop_started
}

echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
varco_round 1
echo
satosa_round
echo
varco_round 2
echo

v1=$(value '^varco CPU: .*, \([0-9.]*\) µs per login.*$' <"$WORK/varco-1.log")
v2=$(value '^varco CPU: .*, \([0-9.]*\) µs per login.*$' <"$WORK/varco-2.log")
s=$(value '^satosa CPU: .*, \([0-9.]*\) µs per post.*$' <"$WORK/satosa.log")
echo "== summary (load average $(cut -d' ' -f1-3 /proc/loadavg))"
if [ -z "$v1" ] || [ -z "$v2" ] || [ -z "$s" ]; then
  echo "a round gave no CPU figure (varco: '$v1' '$v2', satosa: '$s')"
  exit 1
fi
python3 - "$v1" "$v2" "$s" <<'PY'
import sys
v1, v2, s = map(float, sys.argv[1:])
v = (v1 + v2) / 2
print(f"varco  CPU per ACS POST: {v:.0f} µs (mean of the rounds around SATOSA: {v1:.0f}, {v2:.0f})")
print(f"SATOSA CPU per ACS POST: {s / 1000:.1f} ms")
print(f"SATOSA CPU per ACS POST / Varco CPU per ACS POST = {s / v:.0f}x   (target >= 1000x)")
PY
[ "$status" = 0 ] || echo "FAILED: some POSTs failed (see above)"
exit $status
