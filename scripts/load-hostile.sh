#!/usr/bin/env bash
# Hostile load (issue 17, docs/PERFORMANCE.md): the CPU of each worst-case request against a
# normal 8 KB SPID Response (in process, `varco-hostile`), then `/auth` throughput and
# latency with a valid session, first alone, then while two clients flood the ACS and the SLO
# with worst-case bodies and a legitimate user logs in, for each `admission.heavy_nice` of
# HEAVY_NICES, alternated, ROUNDS times, in one run.
#
# Who is charged for what:
# - Varco (one instance per heavy_nice, all on core 1, only one loaded at a time) is the
#   system under test; `admission.heavy_workers` is then 1. Its CPU over each wrk run is read
#   from /proc and split by thread name: async workers (`tokio-rt-worker`), heavy threads
#   (`varco-heavy`), other (scripts/lib/threads-cpu.py).
# - wrk, the demo IdP and the legitimate user's client run on core 0 at normal priority.
# - The two flooding clients model remote attackers: their CPU is not Varco's, so they run on
#   core 0 at nice 19 and get what wrk leaves idle there. Each prints the rate it reached.
#
# Usage: scripts/load-hostile.sh [DURATION_SECONDS] [CONNECTIONS]   (defaults 15, 32)
#   environment: HEAVY_NICES (default "0 10"), ROUNDS (default 1), LEGIT_RATE (whole logins
#   per second during the flood, default 5; 0 for none)
# Needs: wrk, openssl, curl (Debian packages; installed when missing), release build.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
CONNS=${2:-32}
HEAVY_NICES=${HEAVY_NICES:-0 10}
ROUNDS=${ROUNDS:-1}
LEGIT_RATE=${LEGIT_RATE:-5}
./scripts/install-deps.sh wrk openssl curl >&2
cargo build --release --quiet --bin varco --bin varco-dev-idp --bin varco-hostile

. scripts/lib/stack.sh
stack_begin hostile
declare -A PID COOKIE
# shellcheck disable=SC2086 # one instance per word
IDP_CPUS=0 stack_idp_for $HEAVY_NICES
for n in $HEAVY_NICES; do
  # Rate limits off: the flood must reach validation, so the heavy pool is the only defence.
  stack_varco "nice$n" "${VPORT[$n]}" 1 "${MPORT[$n]}" "[admission]
client_per_minute = 0
global_per_second = 0
heavy_nice = $n"
  PID[$n]=$STACK_PID
done
# Logins once every instance answers: the demo IdP reads each Varco's metadata per request.
for n in $HEAVY_NICES; do
  COOKIE[$n]=$(stack_login "http://127.0.0.1:${VPORT[$n]}")
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "start: $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== worst-case requests, CPU of one validation (in process, one thread)"
taskset -c 0 target/release/varco-hostile --rounds 5

cat > "$WORK/flood.py" <<'PY'
# One flooding client: `acs` starts its own login (its pending request and login cookie)
# and posts the worst-case Response to it, again and again; `slo` posts the worst-case
# LogoutRequest naming the IdP. Prints the answers by status, its rate and its own CPU.
import base64, http.client, os, sys, time, urllib.parse
kind, port, idp, work, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
counts = {}
start = time.time()
end = start + seconds
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
t = os.times()
took = time.time() - start
print(f"  flood {kind}: {sum(counts.values()) / took:.0f} posts/s, answers {dict(sorted(counts.items()))}, "
      f"its own CPU {(t.user + t.system) / took:.2f} core")
PY

wrk_run() {
  local n=$1
  ./scripts/lib/threads-cpu.py "${PID[$n]}" "$DURATION" "  varco (heavy_nice $n)" > "$WORK/cpu" &
  local cpu=$!
  /usr/bin/time -f "  wrk CPU %U s user + %S s system" taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency \
    -H "Cookie: varco_session=${COOKIE[$n]}" -H 'X-Original-URI: /pratiche' -H 'X-Forwarded-Host: 127.0.0.1' \
    "http://127.0.0.1:${VPORT[$n]}/auth" 2>&1 | grep -E "Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors|wrk CPU"
  wait "$cpu"
  cat "$WORK/cpu"
}

FLOOD=$((DURATION + 3))
for round in $(seq "$ROUNDS"); do
  for n in $HEAVY_NICES; do
    vport=${VPORT[$n]}
    echo "== round $round, heavy_nice $n: /auth, valid session, no other load ($(date -u +%T), load $(cut -d' ' -f1 /proc/loadavg))"
    wrk_run "$n"
    echo "== round $round, heavy_nice $n: /auth while two clients flood the ACS and the SLO ($(date -u +%T), load $(cut -d' ' -f1 /proc/loadavg))"
    # Written now: a document issued before the flood's own logins would be refused by its
    # IssueInstant (saml_issued_before_request) before any signature work.
    mkdir -p "$WORK/nice$n"
    target/release/varco-hostile --write "$WORK/nice$n" --idp "$IDP" --sp "http://127.0.0.1:$vport"
    nice -n 19 taskset -c 0 python3 "$WORK/flood.py" acs "$vport" "$IDP" "$WORK/nice$n" "$FLOOD" &
    f1=$!
    nice -n 19 taskset -c 0 python3 "$WORK/flood.py" slo "$vport" "$IDP" "$WORK/nice$n" "$FLOOD" &
    f2=$!
    pids+=("$f1" "$f2")
    legit=()
    if [ "$LEGIT_RATE" != 0 ]; then
      taskset -c 0 python3 scripts/lib/logins.py steady "$vport" "$IDP" "$DURATION" "$LEGIT_RATE" &
      legit=($!)
    fi
    sleep 2
    wrk_run "$n"
    wait "$f1" "$f2" "${legit[@]}" || true
  done
done
echo "end: $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $HEAVY_NICES; do
  echo "== heavy_nice $n: heavy-pool and refusal counters over the whole run"
  curl -fsS "http://127.0.0.1:${MPORT[$n]}/metrics" | grep -E '^varco_heavy_(in_flight|rejected_total)|^varco_(slo|logins)_refused_total' | grep -v ' 0$' || true
done
