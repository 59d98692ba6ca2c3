#!/usr/bin/env bash
# Installs the JavaScript side of the browser test (tests/browser: playwright-core, which
# drives the Debian `chromium`, and axe-core) with `npm ci`, exactly as package-lock.json
# pins it, into tests/browser/node_modules. Idempotent: when the installed tree was made from
# the current lock file, nothing runs. Playwright never downloads a browser of its own here.
set -euo pipefail

dir="$(cd "$(dirname "$0")/../tests/browser" && pwd)"
stamp="$dir/node_modules/.varco-lock"

if ! command -v npm >/dev/null 2>&1; then
  echo "browser-deps: npm is missing (the machine's Node.js provides it)" >&2
  exit 1
fi
if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then
  exit 0
fi
echo "browser-deps: npm ci in $dir"
cd "$dir"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
