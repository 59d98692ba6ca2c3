#!/usr/bin/env bash
# PyJWT with the `cryptography` backend (an independent JOSE implementation: the tests verify
# Varco's tokens with it against the JWKS) in a project-local venv; prints the venv's python.
set -euo pipefail
BIN=$("$(dirname "${BASH_SOURCE[0]}")/py-venv.sh" pyjwt "PyJWT==2.15.1" "cryptography==50.0.2")
echo "$BIN/python"
