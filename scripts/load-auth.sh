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

. scripts/lib/stack.sh
stack_begin load
VPORT=$(port); NPORT=$(port)
VARCO=http://127.0.0.1:$VPORT
stack_idp "$VARCO"
stack_varco varco "$VPORT" 1 ""
COOKIE=$(stack_login "$VARCO")

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
