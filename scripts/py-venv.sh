#!/usr/bin/env bash
# A project-local Python virtualenv with exactly the pinned requirements given, for the
# tools the tests drive (spid-sp-test, PyJWT, kubectl + kubernetes-validate, …). Prints the
# venv's bin directory on stdout (the only line written there; progress goes to stderr).
#
#   scripts/py-venv.sh NAME REQUIREMENT...      e.g. scripts/py-venv.sh pyjwt PyJWT==2.15.1
#
# Idempotent: the venv (<repo>/.venv/NAME, or $PY_VENV_ROOT/NAME) is created once, and pip runs
# only when the requirement list differs from the one last installed there. Concurrent
# callers (parallel test binaries) are serialized with flock. Needs python3 with the venv
# module (Debian: python3-venv). Environment: PY_VENV_ROOT, PYTHON (default python3).
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 NAME REQUIREMENT..." >&2; exit 64; }
NAME=$1
shift
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PY_VENV_ROOT:-$ROOT/.venv}/$NAME"
PYTHON="${PYTHON:-python3}"
WANT="$*"

die() { echo "py-venv($NAME): $*" >&2; exit 1; }

mkdir -p "$(dirname "$VENV")"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$VENV.lock"
  flock 9
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (Debian: apt-get install python3 python3-venv)"
  "$PYTHON" -m venv --help >/dev/null 2>&1 || die "$PYTHON has no venv module (Debian: apt-get install python3-venv)"
  rm -rf "$VENV"
  echo "py-venv($NAME): creating $VENV" >&2
  "$PYTHON" -m venv "$VENV" >&2 || die "python3 -m venv failed"
fi

STAMP="$VENV/.requirements"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  echo "py-venv($NAME): installing $WANT" >&2
  # shellcheck disable=SC2086 # one word per requirement
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q $WANT >&2 || die "pip install failed"
  "$VENV/bin/python" -m pip check >&2 || die "inconsistent dependencies after install"
  printf '%s' "$WANT" > "$STAMP"
fi
echo "$VENV/bin"
