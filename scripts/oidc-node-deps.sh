#!/usr/bin/env bash
# Installs the Node OpenID Connect client of tests/tests/oidc_op.rs (openid-client, with the
# `jose` and `oauth4webapi` it depends on) with `npm ci`, exactly as package-lock.json pins
# it, into tests/oidc-node/node_modules. Idempotent: when the installed tree was made from the
# current lock file, nothing runs. Concurrent callers (parallel tests) are serialized.
set -euo pipefail

dir="$(cd "$(dirname "$0")/../tests/oidc-node" && pwd)"
stamp="$dir/node_modules/.varco-lock"

if ! command -v npm >/dev/null 2>&1; then
  echo "oidc-node-deps: npm is missing (the machine's Node.js provides it)" >&2
  exit 1
fi
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dir/.deps.lock"
  flock 9
fi
if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then
  exit 0
fi
echo "oidc-node-deps: npm ci in $dir" >&2
cd "$dir"
npm ci --no-audit --no-fund --loglevel=error >&2
cp package-lock.json "$stamp"
