#!/usr/bin/env bash
# Provides spid-sp-test (italia/spid-sp-test, the AgID conformance tool for SPID/CIE/eIDAS
# service providers) in a project-local virtualenv and prints the path of its `spid_sp_test`
# executable on stdout (the only line written there; progress goes to stderr).
#
# Idempotent: the venv is created only when missing, and pip runs only when the installed
# version is not exactly $SPID_SP_TEST_VERSION. Needs python3 with the venv module (Debian:
# python3-venv) and, at run time of the tool, the xmlsec1 and openssl commands.
#
# Environment: SPID_SP_TEST_VENV (default <repo>/.venv/spid-sp-test), PYTHON (default python3).
set -euo pipefail

VERSION="${SPID_SP_TEST_VERSION:-1.2.18}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPID_SP_TEST_VENV:-$ROOT/.venv/spid-sp-test}"
PYTHON="${PYTHON:-python3}"

die() { echo "spid-sp-test-venv: $*" >&2; exit 1; }

installed_version() {
  "$VENV/bin/python" - <<'PY' 2>/dev/null
from importlib.metadata import version
print(version("spid-sp-test"))
PY
}

# Serialize concurrent callers (parallel test binaries) on one lock next to the venv.
mkdir -p "$(dirname "$VENV")"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$VENV.lock"
  flock 9
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (Debian: apt-get install python3 python3-venv)"
  "$PYTHON" -m venv --help >/dev/null 2>&1 || die "$PYTHON has no venv module (Debian: apt-get install python3-venv)"
  rm -rf "$VENV"
  echo "spid-sp-test-venv: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi

if [ "$(installed_version || true)" != "$VERSION" ]; then
  echo "spid-sp-test-venv: installing spid-sp-test==$VERSION into $VENV" >&2
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "spid-sp-test==$VERSION" >&2 \
    || die "pip install spid-sp-test==$VERSION failed"
  [ "$(installed_version || true)" = "$VERSION" ] || die "spid-sp-test $VERSION not importable after install"
fi

BIN="$VENV/bin/spid_sp_test"
[ -x "$BIN" ] || die "$BIN missing after install"
echo "$BIN"
