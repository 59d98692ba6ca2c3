#!/usr/bin/env bash
# Load harness for the forward-auth path (docs/PERFORMANCE.md): `/auth` with a valid session,
# and nginx answering `return 204` on the same loopback in the same run, as the ceiling of an
# HTTP round trip on this machine. Both servers are pinned to one core and wrk to the other.
# Each Varco run also prints Varco's CPU time per answer, user and system (/proc/PID/stat).
#
# Usage: scripts/load-auth.sh [DURATION_SECONDS] [CONNECTIONS]   (defaults 15, 32)
#   COMPARE=DIR   also runs DIR/varco (another build, e.g. main's) beside this tree's, in
#                 alternated rounds: nginx, this, other; nginx, other, this; … (the valid
#                 session only), so the two binaries and nginx share the machine's moments.
#   ROUNDS=N      rounds with COMPARE (default 3).
#   BIN_DIR=DIR   this tree's binaries from DIR (varco, varco-dev-idp), no build.
# Needs: wrk, nginx, openssl, curl (Debian packages; installed when missing), release build.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
CONNS=${2:-32}
COMPARE=${COMPARE:-}
ROUNDS=${ROUNDS:-3}
./scripts/install-deps.sh wrk nginx openssl curl >&2
[ -n "${BIN_DIR:-}" ] || cargo build --release --quiet --bin varco --bin varco-dev-idp

. scripts/lib/stack.sh
stack_begin load
VPORT=$(port); NPORT=$(port)
VARCO=http://127.0.0.1:$VPORT
if [ -n "$COMPARE" ]; then
  OPORT=$(port); OTHER=http://127.0.0.1:$OPORT
  stack_idp "$VARCO" "$OTHER"
else
  stack_idp "$VARCO"
fi
stack_varco varco "$VPORT" 1 ""
VPID=$STACK_PID
if [ -n "$COMPARE" ]; then
  VARCO_BIN=$COMPARE/varco stack_varco other "$OPORT" 1 ""
  OPID=$STACK_PID
  OCOOKIE=$(stack_login "$OTHER")
fi
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

# Clock ticks of user and system time of PID so far.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
# run TITLE PID|- WRK-ARGS...: one wrk run; with a PID, that process's CPU per answer.
run() {
  local title=$1 pid=$2 u0 s0 u1 s1 out
  shift 2
  echo "== $title"
  [ "$pid" != - ] && read -r u0 s0 < <(ticks "$pid")
  out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@")
  grep -E "Requests/sec|Latency|50%|90%|99%|Non-2xx|Socket errors" <<<"$out"
  if [ "$pid" != - ]; then
    read -r u1 s1 < <(ticks "$pid")
    awk -v n="$(awk '/requests in/{print $1}' <<<"$out")" -v u=$((u1 - u0)) -v s=$((s1 - s0)) \
      -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "  CPU per answer: user %.2f µs, system %.2f µs\n", u / hz / n * 1e6, s / hz / n * 1e6 }'
  fi
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); wrk -t1 -c$CONNS -d${DURATION}s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
this() {
  run "varco /auth, valid session (200 + 8 headers + cached ES256 token)" "$VPID" \
    -H "Cookie: varco_session=$COOKIE" -H 'X-Original-URI: /pratiche' -H 'X-Forwarded-Host: 127.0.0.1' "$VARCO/auth"
}
other() {
  run "other varco /auth, valid session ($COMPARE)" "$OPID" \
    -H "Cookie: varco_session=$OCOOKIE" -H 'X-Original-URI: /pratiche' -H 'X-Forwarded-Host: 127.0.0.1' "$OTHER/auth"
}
if [ -z "$COMPARE" ]; then
  run "nginx return 204" - "http://127.0.0.1:$NPORT/"
  this
  run "varco /auth, no session (401 + login URL)" "$VPID" -H 'X-Original-URI: /pratiche' "$VARCO/auth"
  exit 0
fi
for r in $(seq "$ROUNDS"); do
  echo "-- round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  run "nginx return 204" - "http://127.0.0.1:$NPORT/"
  if [ $((r % 2)) = 1 ]; then this; other; else other; this; fi
done
