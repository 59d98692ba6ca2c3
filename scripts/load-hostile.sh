#!/usr/bin/env bash
# Hostile load (issue 17, docs/PERFORMANCE.md): the CPU of each worst-case request against a
# normal 8 KB SPID Response (in process, `varco-hostile`), then `/auth` throughput and
# latency with a valid session, first alone, then while two clients flood the ACS and the SLO
# with worst-case bodies. Varco is pinned to core 1 (so `admission.heavy_workers` defaults to
# 1), wrk and the flooding clients to core 0.
#
# Usage: scripts/load-hostile.sh [DURATION_SECONDS] [CONNECTIONS]   (defaults 15, 32)
#   environment: HEAVY_NICE (admission.heavy_nice, default 10: heavy threads below /auth's;
#   0 for the broker's default behaviour)
# Needs: wrk, openssl, curl (Debian packages; installed when missing), release build.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
CONNS=${2:-32}
HEAVY_NICE=${HEAVY_NICE:-10}
./scripts/install-deps.sh wrk openssl curl >&2
cargo build --release --quiet --bin varco --bin varco-dev-idp --bin varco-hostile

WORK=$(mktemp -d /tmp/varco-hostile-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
VPORT=$(port); IPORT=$(port); MPORT=$(port)
VARCO=http://127.0.0.1:$VPORT
IDP=http://127.0.0.1:$IPORT

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=varco-load \
  -keyout "$WORK/sp.key.pem" -out "$WORK/sp.crt.pem" 2>/dev/null
openssl rand -hex 32 > "$WORK/session.key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/token.pem" 2>/dev/null

target/release/varco-dev-idp --listen "127.0.0.1:$IPORT" --base-url "$IDP" \
  --state-dir "$WORK/idp" --sp-metadata "$VARCO/saml/metadata" 2>"$WORK/idp.log" &
pids+=($!)
for _ in $(seq 100); do curl -fsS "$IDP/metadata" -o "$WORK/idp.xml" 2>/dev/null && break; sleep 0.1; done

cat > "$WORK/varco.toml" <<TOML
[server]
listen = "127.0.0.1:$VPORT"
management_listen = "127.0.0.1:$MPORT"
public_base_url = "$VARCO"
[sp]
key_file = "sp.key.pem"
cert_file = "sp.crt.pem"
[sp.organization]
name = "Load"
display_name = "Load"
url = "https://www.example.org"
ipa_code = "c_h501"
email = "spid@example.org"
phone = "+390600000000"
[session]
key_file = "session.key"
cookie_secure = false
[[idp]]
metadata_file = "idp.xml"
[[token.key]]
kid = "load"
file = "token.pem"
[[route]]
path_prefix = "/"
min_loa = "substantial"
# Rate limits off: the flood must reach validation, so the heavy pool is the only defence.
[admission]
client_per_minute = 0
global_per_second = 0
heavy_nice = $HEAVY_NICE
TOML
taskset -c 1 target/release/varco serve --config "$WORK/varco.toml" 2>"$WORK/varco.log" &
pids+=($!)
for _ in $(seq 100); do curl -fsS "$VARCO/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# One real login through the demo IdP, with curl and a cookie jar.
JAR="$WORK/jar"
enc() { python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
field() { python3 -c 'import sys,re,html; m=re.search(r"name=\"%s\"[^>]*value=\"([^\"]*)\"" % sys.argv[1], sys.stdin.read()); print(html.unescape(m.group(1)))' "$1"; }
sso=$(curl -sS -c "$JAR" -b "$JAR" -o /dev/null -w '%{redirect_url}' "$VARCO/saml/login?idp=$(enc "$IDP")&level=2&return_to=%2F")
state=$(curl -sS -c "$JAR" -b "$JAR" "$sso" | field state)
answer=$(curl -sS -c "$JAR" -b "$JAR" --data-urlencode "state=$state" -d user=mario.rossi -d level=2 "$IDP/login")
resp=$(printf '%s' "$answer" | field SAMLResponse)
relay=$(printf '%s' "$answer" | field RelayState)
code=$(curl -sS -c "$JAR" -b "$JAR" -o /dev/null -w '%{http_code}' \
  --data-urlencode "SAMLResponse=$resp" --data-urlencode "RelayState=$relay" "$VARCO/saml/acs")
[ "$code" = 303 ] || { echo "login failed: ACS answered $code" >&2; cat "$WORK/varco.log" >&2; exit 1; }
COOKIE=$(awk '$6=="varco_session"{print $7}' "$JAR")
check=$(curl -sS -o /dev/null -w '%{http_code}' -H "Cookie: varco_session=$COOKIE" -H 'X-Original-URI: /pratiche' "$VARCO/auth")
[ "$check" = 200 ] || { echo "/auth answered $check" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "== worst-case requests, CPU of one validation (in process, one thread)"
taskset -c 0 target/release/varco-hostile --rounds 5
target/release/varco-hostile --write "$WORK" --idp "$IDP" --sp "$VARCO"
cat > "$WORK/flood.py" <<'PY'
# One flooding client: `acs` starts its own login (its pending request and login cookie)
# and posts the worst-case Response to it, again and again; `slo` posts the worst-case
# LogoutRequest naming the IdP. Prints the answers by status at the end.
import base64, http.client, sys, time, urllib.parse
kind, port, idp, work, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
counts = {}
end = time.time() + seconds
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
response = open(work + "/response.xml").read()
placeholder = "_4d38c302617b5bf98951e65b4cf304711e2166df20"
slo = open(work + "/slo.form").read()
form = {"Content-Type": "application/x-www-form-urlencoded"}
while time.time() < end:
    if kind == "acs":
        c.request("GET", "/saml/login?idp=" + urllib.parse.quote(idp, safe="") + "&level=2&return_to=%2F")
        r = c.getresponse(); r.read()
        loc = r.getheader("Location") or ""
        relay = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query).get("RelayState", [""])[0]
        cookie = (r.getheader("Set-Cookie") or "").split(";")[0]
        # The Response answers this client's own pending login, so it reaches the signature.
        b64 = base64.b64encode(response.replace(placeholder, relay).encode()).decode()
        body = "SAMLResponse=" + urllib.parse.quote(b64, safe="") + "&RelayState=" + relay
        c.request("POST", "/saml/acs", body, {**form, "Cookie": cookie})
    else:
        c.request("POST", "/saml/slo", slo, form)
    r = c.getresponse(); r.read()
    counts[r.status] = counts.get(r.status, 0) + 1
print(kind, "answers by status:", dict(sorted(counts.items())))
PY
run() {
  echo "== $1"
  taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency \
    -H "Cookie: varco_session=$COOKIE" -H 'X-Original-URI: /pratiche' -H 'X-Forwarded-Host: 127.0.0.1' \
    "$VARCO/auth" | grep -E "Requests/sec|Latency|50%|90%|99%|Non-2xx|Socket errors"
}
run "/auth, valid session, no other load"
FLOOD=$((DURATION + 5))
taskset -c 0 python3 "$WORK/flood.py" acs "$VPORT" "$IDP" "$WORK" "$FLOOD" &
f1=$!
taskset -c 0 python3 "$WORK/flood.py" slo "$VPORT" "$IDP" "$WORK" "$FLOOD" &
f2=$!
pids+=("$f1" "$f2")
sleep 2
run "/auth, valid session, while two clients flood the ACS and the SLO with worst-case bodies"
wait "$f1" "$f2" || true
curl -fsS "http://127.0.0.1:$MPORT/metrics" | grep -E '^varco_heavy_(in_flight|rejected_total)|^varco_(slo|logins)_refused_total' | grep -v ' 0$' || true
