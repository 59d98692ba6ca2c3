#!/usr/bin/env bash
# Provides PyJWT with the `cryptography` backend (an independent JOSE implementation, used by
# the tests to verify Varco's tokens against its JWKS) in a project-local virtualenv, and
# prints the path of its python on stdout (the only line written there).
#
# Idempotent: pip runs only when the installed PyJWT is not exactly $PYJWT_VERSION.
# Environment: PYJWT_VENV (default <repo>/.venv/pyjwt), PYTHON (default python3).
set -euo pipefail

VERSION="${PYJWT_VERSION:-2.15.1}"
CRYPTO_VERSION="${CRYPTOGRAPHY_VERSION:-50.0.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PYJWT_VENV:-$ROOT/.venv/pyjwt}"
PYTHON="${PYTHON:-python3}"

die() { echo "pyjwt-venv: $*" >&2; exit 1; }

installed_version() {
  "$VENV/bin/python" - <<'PY' 2>/dev/null
from importlib.metadata import version
import cryptography  # the backend must import too
print(version("PyJWT"))
PY
}

mkdir -p "$(dirname "$VENV")"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$VENV.lock"
  flock 9
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  "$PYTHON" -m venv --help >/dev/null 2>&1 || die "$PYTHON has no venv module (Debian: apt-get install python3-venv)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" >&2 || die "python3 -m venv failed"
fi

if [ "$(installed_version || true)" != "$VERSION" ]; then
  echo "pyjwt-venv: installing PyJWT==$VERSION cryptography==$CRYPTO_VERSION into $VENV" >&2
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
    "PyJWT==$VERSION" "cryptography==$CRYPTO_VERSION" >&2 || die "pip install failed"
  [ "$(installed_version || true)" = "$VERSION" ] || die "PyJWT $VERSION not importable after install"
fi

echo "$VENV/bin/python"
