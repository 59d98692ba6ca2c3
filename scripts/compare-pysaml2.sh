#!/usr/bin/env bash
# Side by side with pysaml2, the SAML engine of SATOSA / iam-proxy-italia (docs/PERFORMANCE.md):
# the same signed Responses, validated in process by Varco (`saml::validate_response`,
# varco-validate-files) and by pysaml2 7.5.5 (`parse_authn_request_response`) in one run,
# reported as ratios. pysaml2 three ways: its default backend (the xmlsec1 program), its
# other backend `XMLSecurity` (pyXMLSecurity), and python-xmlsec (libxmlsec1 bindings, pip
# `xmlsec`) through a small backend in scripts/pysaml2-validate.py, since pysaml2 has none.
# pyXMLSecurity and python-xmlsec both import as `xmlsec`: two venvs.
#
# The Responses are real: the release `varco` and the demo IdP (RSA-2048, as SPID IdPs sign)
# are started by `varco-loadgen fixtures`, which opens N pending requests at /saml/login and
# has the IdP answer each. pysaml2 reads the clock itself and the Responses expire 5 minutes
# after signing, so everything runs right after they are made. Each side is pinned to CPU.
#
# Usage: scripts/compare-pysaml2.sh     environment: N (300 Responses), XMLSEC1_N (100: the
#        xmlsec1 backend forks twice per Response), ROUNDS (Varco's rounds over the N, 20), CPU (1)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300}
XMLSEC1_N=${XMLSEC1_N:-100}
ROUNDS=${ROUNDS:-20}
CPU=${CPU:-1}
# xmlsec1 for pysaml2's default backend; libxmlsec1-dev and pkg-config to build python-xmlsec
# when pip has no wheel for this Python.
./scripts/install-deps.sh xmlsec1 libxmlsec1-dev pkg-config python3-venv openssl >&2
PY=$(./scripts/py-venv.sh pysaml2 pysaml2==7.5.5 xmlsec==1.3.17 lxml==6.1.3)/python
PYX=$(./scripts/py-venv.sh pysaml2-pyxmlsecurity pysaml2==7.5.5 pyXMLSecurity==1.0.0 lxml==6.1.3)/python
cargo build --release --locked --quiet --bin varco --bin varco-dev-idp --bin varco-loadgen \
  --bin varco-validate-files

WORK=$(mktemp -d /tmp/varco-compare-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
target/release/varco-loadgen fixtures --n "$N" --out "$WORK/fixtures" --prepare-concurrency 4 >&2

run_varco() { taskset -c "$CPU" target/release/varco-validate-files "$WORK/fixtures" --rounds "$ROUNDS"; }
value() { sed -n "s/^$1=//p"; }

echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg); all timings pinned to cpu $CPU"
out1=$(run_varco); echo "$out1"
pyb=$(taskset -c "$CPU" "$PY" scripts/pysaml2-validate.py "$WORK/fixtures" python-xmlsec); echo "$pyb"
pyx=$(taskset -c "$CPU" "$PYX" scripts/pysaml2-validate.py "$WORK/fixtures" XMLSecurity); echo "$pyx"
py1=$(taskset -c "$CPU" "$PY" scripts/pysaml2-validate.py "$WORK/fixtures" xmlsec1 "$XMLSEC1_N"); echo "$py1"
out2=$(run_varco); echo "$out2"

v1=$(value varco_us_per_response <<<"$out1")
v2=$(value varco_us_per_response <<<"$out2")
x=$(value pysaml2_XMLSecurity_us_per_response <<<"$pyx")
s=$(value pysaml2_xmlsec1_us_per_response <<<"$py1")
b=$(value pysaml2_python_xmlsec_us_per_response <<<"$pyb")
python3 - "$v1" "$v2" "$x" "$s" "$b" <<'PY'
import sys
v1, v2, x, s, b = map(float, sys.argv[1:])
v = (v1 + v2) / 2
print(f"varco {v:.1f} µs per Response (mean of the two runs around pysaml2: {v1:.1f}, {v2:.1f})")
print(f"ratio pysaml2[xmlsec1, default] / varco = {s / v:.0f}x")
print(f"ratio pysaml2[XMLSecurity]      / varco = {x / v:.0f}x")
print(f"ratio pysaml2[python-xmlsec]    / varco = {b / v:.0f}x")
print(f"ratio to pysaml2's fastest of the three = {min(s, x, b) / v:.0f}x   (target >= 100x)")
PY
