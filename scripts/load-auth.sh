#!/usr/bin/env bash
# Load harness for the forward-auth path (docs/PERFORMANCE.md): `/auth` with a valid session,
# and nginx answering `return 204` on the same loopback in the same run, as the ceiling of an
# HTTP round trip on this machine. Both servers are pinned to one core and wrk to the other.
# nginx's own rate moves by a third between runs on this VM, so one nginx-then-Varco pair is a
# noisy ratio: the servers are alternated for ROUNDS rounds (nginx first in odd rounds, Varco
# first in even ones), each round prints its ratio, and the run ends with the median.
# Each Varco run also prints Varco's CPU time per answer, user and system (/proc/PID/stat);
# each run prints wrk's own CPU (user + system over the run's length: near 100 % means the
# load generator, not the server, set the rate) and the busy share of both cores.
#
# Usage: scripts/load-auth.sh [DURATION_SECONDS] [CONNECTIONS]   (defaults 10, 32)
#   ROUNDS=N      alternated rounds (default 3); the median ratio is printed at the end as
#                 "median /auth / nginx: R %" (scripts/bench-compare.sh reads that line).
#   COMPARE=DIR   also runs DIR/varco (another build, e.g. main's) beside this tree's in each
#                 round: nginx, this, other; other, this, nginx; … (the valid session only),
#                 so the two binaries and nginx share the machine's moments.
#   WRK_THREADS=N wrk's threads (default 1), all on core 0.
#   SYSCALLS=1    `perf stat` attached to each server over its runs (Varco, and nginx's worker):
#                 system calls and context switches per answer, and the calls by name (needs
#                 perf and the tracepoints, i.e. root).
# nginx's worker gets the same CPU-per-answer line as Varco.
#   BIN_DIR=DIR   this tree's binaries from DIR (varco, varco-dev-idp, varco-loadgen), no build.
# After the closed-loop rounds, an open loop (varco-loadgen get, on core 0): nginx `return 204`
# and Varco's `/auth` (the same session and headers) at one fixed rate, each request's latency
# counted from its due time, so neither server's p99 is a figure of the generator's queue. Both
# p99s are printed on one line, "open loop at R/s, round N: nginx p99 … ms …, varco p99 … ms …"
# (scripts/bench-compare.sh reads it); the closed-loop lines above are unchanged.
#   AUTH_OPEN_RATE=R   the open loop's rate (default: half the median of the rounds' nginx
#                      rates, so both servers run at the same, stated, unsaturated load).
#   OPEN_ROUNDS=N      open-loop pairs (default 1), alternated as the closed-loop rounds.
#   OPEN_CONNS=N       the generator's keep-alive connections (default 64).
#   LOADGEN=PATH       the generator (default the varco-loadgen beside the binaries).
# Needs: wrk, nginx, openssl, curl, time (Debian packages; installed when missing), release build.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-32}
COMPARE=${COMPARE:-}
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-1}
./scripts/install-deps.sh wrk nginx openssl curl time >&2
[ -n "${BIN_DIR:-}" ] || cargo build --release --quiet --bin varco --bin varco-dev-idp --bin varco-loadgen
LOADGEN=${LOADGEN:-${BIN_DIR:-target/release}/varco-loadgen}
OPEN_ROUNDS=${OPEN_ROUNDS:-1}
OPEN_CONNS=${OPEN_CONNS:-64}

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
# The worker (nginx's master forks one): its CPU and system calls per answer, as Varco's.
NGINX_WORKER=$(pgrep -P "$(cat "$WORK/nginx/nginx.pid")" | head -1)

# Clock ticks of user and system time of PID so far.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
# Busy and total clock ticks of core 0 and core 1.
cores() { awk '/^cpu[01] /{printf "%d %d ", $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
LAST_RATE=0
# run TITLE PID|- WRK-ARGS...: one wrk run; with a PID, that process's CPU per answer. Sets
# LAST_RATE to its requests per second.
run() {
  local title=$1 pid=$2 u0 s0 u1 s1 out c0 c1 wrk_cpu
  shift 2
  echo "== $title"
  [ "$pid" != - ] && read -r u0 s0 < <(ticks "$pid")
  c0=$(cores)
  local perf_pid=""
  if [ -n "${SYSCALLS:-}" ] && [ "$pid" != - ]; then
    perf stat -x, -e 'raw_syscalls:sys_enter,context-switches,syscalls:sys_enter_*' -p "$pid" -o "$WORK/perf.csv" -- sleep "$DURATION" 2>/dev/null &
    perf_pid=$!
  fi
  out=$( { /usr/bin/time -f 'wrk-cpu %U %S' taskset -c 0 wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$@"; } 2>&1)
  c1=$(cores)
  grep -E "Requests/sec|Latency|50%|90%|99%|Non-2xx|Socket errors" <<<"$out"
  wrk_cpu=$(awk '/^wrk-cpu/{print $2, $3}' <<<"$out")
  awk -v w="$wrk_cpu" -v d="$DURATION" -v c0="$c0" -v c1="$c1" 'BEGIN {
    split(w, t, " "); split(c0, a, " "); split(c1, b, " ")
    printf "  wrk CPU %.0f %% of a core (user %.2f s, system %.2f s); busy: core 0 %.0f %%, core 1 %.0f %%\n",
      100 * (t[1] + t[2]) / d, t[1], t[2], 100 * (b[1] - a[1]) / (b[2] - a[2]), 100 * (b[3] - a[3]) / (b[4] - a[4]) }'
  LAST_RATE=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  if [ "$pid" != - ]; then
    read -r u1 s1 < <(ticks "$pid")
    local n
    n=$(awk '/requests in/{print $1}' <<<"$out")
    awk -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) \
      -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "  CPU per answer: user %.2f µs, system %.2f µs\n", u / hz / n * 1e6, s / hz / n * 1e6 }'
    if [ -n "$perf_pid" ]; then
      wait "$perf_pid" || true
      # perf counts over the same seconds as wrk (it starts a moment before): per answer.
      awk -F, -v n="$n" '$3 ~ /raw_syscalls:sys_enter/ {c = $1} $3 ~ /context-switches/ {x = $1}
        $3 ~ /^syscalls:sys_enter_/ && $1 + 0 > 0 { sub(/^syscalls:sys_enter_/, "", $3); by = by sprintf(" %s %.3f", $3, $1 / n) }
        END { if (n > 0) printf "  per answer: %.3f system calls (%s), %.4f context switches\n", c / n, substr(by, 2), x / n }' "$WORK/perf.csv"
    fi
  fi
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
this() {
  run "varco /auth, valid session (200 + 8 headers + cached ES256 token)" "$VPID" \
    -H "Cookie: varco_session=$COOKIE" -H 'X-Original-URI: /pratiche' -H 'X-Forwarded-Host: 127.0.0.1' "$VARCO/auth"
  THIS_RATE=$LAST_RATE
}
other() {
  run "other varco /auth, valid session ($COMPARE)" "$OPID" \
    -H "Cookie: varco_session=$OCOOKIE" -H 'X-Original-URI: /pratiche' -H 'X-Forwarded-Host: 127.0.0.1' "$OTHER/auth"
  OTHER_RATE=$LAST_RATE
}
ceiling() {
  run "nginx return 204" "${NGINX_WORKER:--}" "http://127.0.0.1:$NPORT/"
  NGINX_RATE=$LAST_RATE
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratios="" other_ratios="" nginx_rates=""
for r in $(seq "$ROUNDS"); do
  echo "-- round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ $((r % 2)) = 1 ]; then
    ceiling; this; [ -z "$COMPARE" ] || other
  else
    [ -z "$COMPARE" ] || other; this; ceiling
  fi
  ratios+=" $(pct "$THIS_RATE" "$NGINX_RATE")"
  nginx_rates+=" $NGINX_RATE"
  line="round $r: nginx $NGINX_RATE req/s, varco $THIS_RATE req/s: $(pct "$THIS_RATE" "$NGINX_RATE") %"
  if [ -n "$COMPARE" ]; then
    other_ratios+=" $(pct "$OTHER_RATE" "$NGINX_RATE")"
    line+=", other $OTHER_RATE req/s: $(pct "$OTHER_RATE" "$NGINX_RATE") %"
  fi
  echo "$line (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
echo "median /auth / nginx: $(median <<<"$ratios") % over $ROUNDS rounds (each:$ratios)"
[ -z "$COMPARE" ] || echo "median other /auth / nginx: $(median <<<"$other_ratios") % over $ROUNDS rounds (each:$other_ratios)"
[ -n "$COMPARE" ] || run "varco /auth, no session (401 + login URL)" "$VPID" -H 'X-Original-URI: /pratiche' "$VARCO/auth"

# open TITLE PID URL ARGS...: one open-loop run of the generator on core 0 at OPEN_RATE; with a
# PID, that process's CPU per answer. Sets LAST_P99 and LAST_P999 (ms).
open() {
  local title=$1 pid=$2 url=$3 u0 s0 u1 s1 out n
  shift 3
  echo "== open loop: $title"
  [ "$pid" != - ] && read -r u0 s0 < <(ticks "$pid")
  out=$(taskset -c 0 "$LOADGEN" get --url "$url" --rate "$OPEN_RATE" --duration "$DURATION" \
    --concurrency "$OPEN_CONNS" "$@" 2>&1) || true
  sed 's/^/  /' <<<"$out"
  pq() { awk -v q="$1" '/^latency from due time/ { for (i = 1; i <= NF; i++) if ($i == q) { sub(/,$/, "", $(i + 1)); print $(i + 1) } }' <<<"$out"; }
  LAST_P99=$(pq p99); LAST_P999=$(pq p99.9)
  if [ "$pid" != - ]; then
    read -r u1 s1 < <(ticks "$pid")
    n=$(awk '/answered 2xx/ { for (i = 1; i <= NF; i++) if ($i == "answered") print $(i - 1) }' <<<"$out")
    awk -v n="${n:-0}" -v u=$((u1 - u0)) -v s=$((s1 - s0)) \
      -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "  CPU per answer: user %.2f µs, system %.2f µs\n", u / hz / n * 1e6, s / hz / n * 1e6 }'
  fi
}
nginx_median=$(median <<<"$nginx_rates")
if [ -n "${AUTH_OPEN_RATE:-}" ]; then
  OPEN_RATE=$AUTH_OPEN_RATE; why="AUTH_OPEN_RATE"
else
  OPEN_RATE=$(awk -v m="$nginx_median" 'BEGIN { printf "%d", m / 2 }'); why="half the median nginx rate, $nginx_median req/s"
fi
echo "-- open loop at $OPEN_RATE/s ($why), $OPEN_CONNS connections, ${DURATION}s each, load average $(cut -d' ' -f1-3 /proc/loadavg)"
open_nginx() { open "nginx return 204" "${NGINX_WORKER:--}" "http://127.0.0.1:$NPORT/"; NGINX_P99=$LAST_P99; NGINX_P999=$LAST_P999; }
open_this() {
  open "varco /auth, valid session" "$VPID" "$VARCO/auth" --header "Cookie: varco_session=$COOKIE" \
    --header 'X-Original-URI: /pratiche' --header 'X-Forwarded-Host: 127.0.0.1'
  THIS_P99=$LAST_P99; THIS_P999=$LAST_P999
}
for r in $(seq "$OPEN_ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then open_nginx; open_this; else open_this; open_nginx; fi
  echo "open loop at $OPEN_RATE/s, round $r: nginx p99 ${NGINX_P99:-?} ms (p99.9 ${NGINX_P999:-?}), varco p99 ${THIS_P99:-?} ms (p99.9 ${THIS_P999:-?}) (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
