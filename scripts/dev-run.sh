#!/usr/bin/env bash
# `make run`: the demo identity provider and Varco with the development configuration, so a
# browser can log in at once. Keys are generated on first start under deploy/dev/state/.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=deploy/dev/state
IDP_PORT=${IDP_PORT:-8090}
mkdir -p "$STATE"

if [ ! -f "$STATE/sp.key.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 730 \
    -keyout "$STATE/sp.key.pem" -out "$STATE/sp.crt.pem" \
    -subj "/C=IT/O=Comune di Esempio/CN=localhost/organizationIdentifier=PA:IT-c_h501" 2>/dev/null
fi
[ -f "$STATE/session.key" ] || openssl rand -hex 32 > "$STATE/session.key"

cargo build --quiet --bin varco --bin varco-dev-idp
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

target/debug/varco-dev-idp --listen "127.0.0.1:$IDP_PORT" --base-url "http://localhost:$IDP_PORT" \
  --state-dir "$STATE/idp" --sp-metadata http://127.0.0.1:8080/saml/metadata &
pids+=($!)
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$IDP_PORT/metadata" -o "$STATE/idp-metadata.xml" 2>/dev/null && break
  sleep 0.2
done
[ -s "$STATE/idp-metadata.xml" ] || { echo "demo IdP did not start" >&2; exit 1; }

# A second demo IdP plays the Italian eIDAS node (FICEP): Varco registers it in the eidas
# federation (deploy/dev/varco.toml), so anna.schmidt logs in there as an EU citizen.
EIDAS_PORT=${EIDAS_PORT:-8091}
target/debug/varco-dev-idp --listen "127.0.0.1:$EIDAS_PORT" --base-url "http://localhost:$EIDAS_PORT" \
  --state-dir "$STATE/eidas-idp" --sp-metadata http://127.0.0.1:8080/saml/metadata/eidas &
pids+=($!)
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$EIDAS_PORT/metadata" -o "$STATE/eidas-idp-metadata.xml" 2>/dev/null && break
  sleep 0.2
done
[ -s "$STATE/eidas-idp-metadata.xml" ] || { echo "demo eIDAS node did not start" >&2; exit 1; }

target/debug/varco serve --config deploy/dev/varco.toml --idp-metadata "$STATE/idp-metadata.xml" &
pids+=($!)
for _ in $(seq 50); do
  curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
  kill -0 "${pids[2]}" 2>/dev/null || { echo "varco did not start (see above)" >&2; exit 1; }
  sleep 0.2
done
cat <<MSG

  Varco is running:        http://localhost:8080/
  demo identity provider:  http://localhost:$IDP_PORT/metadata
  demo eIDAS node:         http://localhost:$EIDAS_PORT/metadata (user anna.schmidt)
  forward-auth check:      http://localhost:8080/auth   tokens' keys: http://localhost:8080/.well-known/jwks.json
  Open http://localhost:8080/ and choose "Entra con SPID" (Ctrl-C stops both).

MSG
wait -n "${pids[@]}"
