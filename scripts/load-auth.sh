#!/usr/bin/env bash
# Load harness for the forward-auth path (docs/PERFORMANCE.md): `/auth` with a valid session,
# and nginx answering `return 204` on the same loopback in the same run, as the ceiling of an
# HTTP round trip on this machine. Both servers are pinned to one core and wrk to the other.
#
# Usage: scripts/load-auth.sh [DURATION_SECONDS] [CONNECTIONS]   (defaults 15, 32)
# Needs: wrk, nginx, openssl, curl (Debian packages; installed when missing), release build.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
CONNS=${2:-32}
./scripts/install-deps.sh wrk nginx openssl curl >&2
cargo build --release --quiet --bin varco --bin varco-dev-idp

WORK=$(mktemp -d /tmp/varco-load-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
VPORT=$(port); IPORT=$(port); NPORT=$(port)
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

mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
error_log $WORK/nginx/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  server { listen 127.0.0.1:$NPORT; location / { return 204; } }
}
CONF
taskset -c 1 nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$NPORT/" >/dev/null 2>&1 && break; sleep 0.1; done

run() {
  echo "== $1"
  shift
  taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" | grep -E "Requests/sec|Latency|50%|90%|99%|Non-2xx|Socket errors"
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); wrk -t1 -c$CONNS -d${DURATION}s"
run "nginx return 204" "http://127.0.0.1:$NPORT/"
run "varco /auth, valid session (200 + 8 headers + cached ES256 token)" \
  -H "Cookie: varco_session=$COOKIE" -H 'X-Original-URI: /pratiche' -H 'X-Forwarded-Host: 127.0.0.1' "$VARCO/auth"
run "varco /auth, no session (401 + login URL)" -H 'X-Original-URI: /pratiche' "$VARCO/auth"
