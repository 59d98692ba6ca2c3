# The system under load for the shell harnesses (scripts/load-auth.sh, scripts/load-hostile.sh,
# scripts/flood-login.sh): the release `varco-dev-idp` and one or more release `varco` on free
# loopback ports, keys made by openssl in a scratch directory, one real login through the demo
# IdP. Sourced, not run; the caller has `set -euo pipefail` and is at the repository root.
#
#   stack_begin NAME            scratch directory $WORK (removed at exit with every process
#                               started here), keys, IPORT/IDP chosen
#   port                        prints a free loopback port
#   stack_idp URL...            starts the demo IdP trusting each Varco at URL (its
#                               /saml/metadata), writes $WORK/idp.xml
#   stack_idp_for NAME...       a Varco port VPORT[NAME] and a management port MPORT[NAME]
#                               for each NAME, then stack_idp trusting all of them
#   stack_varco NAME PORT CPUS MPORT [TOML]
#                               writes $WORK/NAME.toml (MPORT: management listener, or "" for
#                               none; TOML: tables appended) and starts Varco on PORT pinned to
#                               CPUS (taskset), waits for /healthz; its pid in $STACK_PID
#   stack_login URL             one login through the demo IdP; prints the session cookie value

WORK=""
pids=()
stack_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$WORK" ] && [ -z "${KEEP_WORK:-}" ] && rm -rf "$WORK"
  return 0
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stack_begin() {
  WORK=$(mktemp -d "/tmp/varco-$1-XXXXXX")
  trap stack_cleanup EXIT
  trap "exit 143" TERM INT  # so a timeout or Ctrl-C also runs the cleanup
  IPORT=$(port)
  IDP=http://127.0.0.1:$IPORT
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=varco-load \
    -keyout "$WORK/sp.key.pem" -out "$WORK/sp.crt.pem" 2>/dev/null
  openssl rand -hex 32 > "$WORK/session.key"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/token.pem" 2>/dev/null
}

stack_idp() {
  local sps=() url
  for url in "$@"; do sps+=(--sp-metadata "$url/saml/metadata"); done
  ${IDP_CPUS:+taskset -c "$IDP_CPUS"} "${BIN_DIR:-target/release}/varco-dev-idp" --listen "127.0.0.1:$IPORT" \
    --base-url "$IDP" --state-dir "$WORK/idp" "${sps[@]}" 2>"$WORK/idp.log" &
  pids+=($!)
  for _ in $(seq 100); do curl -fsS "$IDP/metadata" -o "$WORK/idp.xml" 2>/dev/null && break; sleep 0.1; done
  [ -s "$WORK/idp.xml" ] || { echo "the demo IdP did not start" >&2; cat "$WORK/idp.log" >&2; exit 1; }
}

stack_idp_for() {
  declare -gA VPORT MPORT
  local urls=() name
  for name in "$@"; do
    VPORT[$name]=$(port); MPORT[$name]=$(port)
    urls+=("http://127.0.0.1:${VPORT[$name]}")
  done
  stack_idp "${urls[@]}"
}

stack_varco() {
  local name=$1 vport=$2 cpus=$3 mport=$4 extra=${5:-}
  {
    echo "[server]"
    echo "listen = \"127.0.0.1:$vport\""
    [ -n "$mport" ] && echo "management_listen = \"127.0.0.1:$mport\""
    cat <<TOML
public_base_url = "http://127.0.0.1:$vport"
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
    printf '%s\n' "$extra"
  } > "$WORK/$name.toml"
  # In a session of its own, so in an autogroup of its own (kernel.sched_autogroup_enabled):
  # the scheduler then shares a core between Varco and everything else first, and only then
  # between Varco's threads by their nice values, as in a pod's own cgroup. Without it, the
  # harness's own clients would weigh against Varco's threads by nice too.
  setsid taskset -c "$cpus" "${VARCO_BIN:-${BIN_DIR:-target/release}/varco}" serve --config "$WORK/$name.toml" 2>"$WORK/$name.log" &
  STACK_PID=$!
  pids+=("$STACK_PID")
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$vport/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "varco ($name) did not start" >&2; cat "$WORK/$name.log" >&2; exit 1
}

stack_login() {
  local varco=$1 jar sso state answer resp relay code cookie check
  jar=$(mktemp "$WORK/jar-XXXXXX")
  enc() { python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
  field() { python3 -c 'import sys,re,html; m=re.search(r"name=\"%s\"[^>]*value=\"([^\"]*)\"" % sys.argv[1], sys.stdin.read()); print(html.unescape(m.group(1)))' "$1"; }
  sso=$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$varco/saml/login?idp=$(enc "$IDP")&level=2&return_to=%2F")
  state=$(curl -sS -c "$jar" -b "$jar" "$sso" | field state)
  answer=$(curl -sS -c "$jar" -b "$jar" --data-urlencode "state=$state" -d user=mario.rossi -d level=2 "$IDP/login")
  resp=$(printf '%s' "$answer" | field SAMLResponse)
  relay=$(printf '%s' "$answer" | field RelayState)
  code=$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' \
    --data-urlencode "SAMLResponse=$resp" --data-urlencode "RelayState=$relay" "$varco/saml/acs")
  [ "$code" = 303 ] || { echo "login failed: ACS answered $code" >&2; exit 1; }
  cookie=$(awk '$6=="varco_session"{print $7}' "$jar")
  check=$(curl -sS -o /dev/null -w '%{http_code}' -H "Cookie: varco_session=$cookie" -H 'X-Original-URI: /pratiche' "$varco/auth")
  [ "$check" = 200 ] || { echo "/auth answered $check" >&2; exit 1; }
  printf '%s\n' "$cookie"
}
