#!/usr/bin/env bash
# spid-cie-oidc (italia/spid-cie-oidc-django, the reference Trust Anchor, OP and RP of the
# SPID/CIE OpenID Connect federations) with its pinned dependencies, in a project-local venv;
# prints the venv's python. The Django project that runs it is ours: tests/peers/spidcie.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One requirement per line in the file, comments dropped; py-venv.sh reinstalls when it changes.
mapfile -t REQS < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ROOT/tests/peers/spidcie/requirements.txt")
BIN=$("$ROOT/scripts/py-venv.sh" spidcie "${REQS[@]}")
echo "$BIN/python"
