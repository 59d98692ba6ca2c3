#!/usr/bin/env bash
# SATOSA beside Varco's ACS, in one run (issue 20, target 4: Varco's CPU per ACS POST at least
# 1,000 times below SATOSA's; docs/PERFORMANCE.md, "SATOSA beside Varco").
#
# Rounds alternated, each side pinned to the same core (CPU), the load generator and the demo
# IdP to LOADGEN_CPUS: Varco, then for each pysaml2 signature backend in BACKENDS a SATOSA
# round followed by a Varco round (by default: Varco, SATOSA/xmlsec1, Varco, SATOSA/XMLSecurity,
# Varco); each SATOSA round is set against the mean of the two Varco rounds around it.
#   - Varco: `varco-loadgen acs`, N logins closed loop over CONNS connections, audit on (the
#     release `varco` and the demo IdP signing with RSA-2048, started by the loadgen);
#   - SATOSA 8.6.0 (PyPI, pinned, in a venv of scripts/py-venv.sh) under gunicorn, its SAML2
#     backend (pysaml2 SP: signed AuthnRequests, Response and Assertion signatures required,
#     only answers to its own outstanding requests) trusting the demo IdP (RSA-2048), and the
#     bench frontend of tests/peers/satosa answering 200 with the mapped attributes:
#     `varco-loadgen satosa` prepares SATOSA_N logins through SATOSA and the IdP, then posts
#     them to SATOSA's ACS closed loop over SATOSA_CONNS connections, and counts the CPU of
#     SATOSA's process tree over the POSTs only. Backends: `xmlsec1`, pysaml2's default (runs
#     the xmlsec1 program per check), and `XMLSecurity` (pyXMLSecurity, in process).
# Every POST must succeed on both sides: failures are printed and fail the run (exit 1).
#
# One gunicorn worker (sync, as SATOSA's docs run it): the SAML2 backend keeps its outstanding
# AuthnRequest IDs in the worker's memory, so with `allow_unsolicited: false` the Response must
# reach the worker that sent the request; and on one core more workers add no capacity.
#
# Usage: scripts/compare-satosa.sh     environment: N (3000 Varco logins a round), CONNS (32),
#        SATOSA_N (300), SATOSA_CONNS (4), BACKENDS ("xmlsec1 XMLSecurity"), CPU (1),
#        LOADGEN_CPUS (0)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-3000}
CONNS=${CONNS:-32}
SATOSA_N=${SATOSA_N:-300}
SATOSA_CONNS=${SATOSA_CONNS:-4}
CPU=${CPU:-1}
LOADGEN_CPUS=${LOADGEN_CPUS:-0}
BACKENDS=${BACKENDS:-xmlsec1 XMLSecurity}
# xmlsec1: pysaml2's default signature backend runs it for every signature it checks.
./scripts/install-deps.sh xmlsec1 openssl curl python3-venv >&2
VENV=$(./scripts/py-venv.sh satosa satosa==8.6.0 pysaml2==7.5.5 gunicorn==27.0.1 pyXMLSecurity==1.0.0)
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
  local backend=$1 idp_port sp_port dir="$WORK/satosa-$1" peer="$PWD/tests/peers/satosa"
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
  # SATOSA is given the IdP's SingleSignOnService for HTTP-POST only: pysaml2 cannot sign an
  # HTTP-Redirect query string with its XMLSecurity backend, and SATOSA sends the AuthnRequest
  # by the first binding the IdP's metadata offers. (The metadata's signature, which this
  # removal breaks, is not checked by SATOSA here; and the AuthnRequest is preparation only.)
  curl -sf "http://127.0.0.1:$idp_port/metadata" |
    sed 's|<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"[^>]*/>||' \
      >"$dir/idp-metadata.xml"
  grep -q 'SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"' \
    "$dir/idp-metadata.xml"

  echo "== SATOSA $("$VENV/python" -c 'import satosa; print(satosa.__version__)'): $SATOSA_N logins, closed loop, $SATOSA_CONNS connections, gunicorn (1 sync worker) on cpu $CPU, pysaml2 backend $backend"
  BENCH_SATOSA_BASE="http://127.0.0.1:$sp_port" BENCH_SATOSA_DIR="$peer" \
    BENCH_SP_KEY="$dir/sp.key.pem" BENCH_SP_CERT="$dir/sp.crt.pem" \
    BENCH_IDP_METADATA="$dir/idp-metadata.xml" SATOSA_CONFIG="$peer/proxy_conf.yaml" \
    BENCH_CRYPTO_BACKEND="$backend" SATOSA_STATE_ENCRYPTION_KEY="$(openssl rand -hex 32)" \
    taskset -c "$CPU" "$VENV/gunicorn" --chdir "$peer" --workers 1 --no-control-socket \
    --bind "127.0.0.1:$sp_port" satosa.wsgi:app >/dev/null 2>"$dir/satosa.log" &
  local gunicorn=$!
  started+=("$gunicorn")
  wait_http "http://127.0.0.1:$sp_port/Saml2/metadata" "$gunicorn" "$dir/satosa.log"
  curl -sf "http://127.0.0.1:$sp_port/Saml2/metadata" >"$dir/satosa-metadata.xml"
  stop_one "$idp"
  start_idp "$idp_port" "$dir" "$dir/satosa-metadata.xml"
  "${LG[@]}" satosa --satosa-url "http://127.0.0.1:$sp_port" --satosa-pid "$gunicorn" \
    --n "$SATOSA_N" --concurrency "$SATOSA_CONNS" | tee "$WORK/satosa-$backend.log" || status=1
  # pysaml2 logs, for each AuthnRequest, that the IdP offers no HTTP-Redirect (see above):
  # left out. The Response the driver alters before the measured POSTs is logged as a
  # signature failure; a failed measured POST is counted by the driver itself.
  grep ERROR "$dir/satosa.log" | grep -v 'Unsupported binding: .*HTTP-Redirect' |
    sed 's/^\[[^]]*\] //' | cut -c 1-160 | sort | uniq -c | sort -rn | sed -n 1,5p \
    >"$dir/errors" || true
  if [ -s "$dir/errors" ]; then
    echo "SATOSA's log, errors (the altered Response's signature failure is expected):"
    cat "$dir/errors"
  fi
  cp "$dir/satosa.log" "$WORK/satosa-$backend.server.log"
  stop_started
}

echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
varco_round 0
rounds=0
for b in $BACKENDS; do
  echo
  satosa_round "$b"
  echo
  rounds=$((rounds + 1))
  varco_round "$rounds"
done
echo

per_login() { value '^varco CPU: .*, \([0-9.]*\) µs per login.*$' <"$WORK/varco-$1.log"; }
echo "== summary (load average $(cut -d' ' -f1-3 /proc/loadavg))"
i=0
for b in $BACKENDS; do
  v1=$(per_login "$i")
  i=$((i + 1))
  v2=$(per_login "$i")
  s=$(value '^satosa CPU: .*, \([0-9.]*\) µs per post.*$' <"$WORK/satosa-$b.log")
  if [ -z "$v1" ] || [ -z "$v2" ] || [ -z "$s" ]; then
    echo "a round gave no CPU figure (varco: '$v1' '$v2', SATOSA/$b: '$s')"
    status=1
    continue
  fi
  python3 - "$b" "$v1" "$v2" "$s" <<'PY'
import sys
b = sys.argv[1]
v1, v2, s = map(float, sys.argv[2:])
v = (v1 + v2) / 2
print(f"pysaml2 backend {b}: SATOSA {s / 1000:.1f} ms, Varco {v:.0f} µs (rounds around it: {v1:.0f}, {v2:.0f})")
print(f"  SATOSA CPU per ACS POST / Varco CPU per ACS POST = {s / v:.0f}x   (target >= 1000x)")
PY
  grep '^satosa CPU split' "$WORK/satosa-$b.log" | sed 's/^/  /'
done
[ "$status" = 0 ] || echo "FAILED: some POSTs failed or a round gave no figure (see above)"
exit $status
