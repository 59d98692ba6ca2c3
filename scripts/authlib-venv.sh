#!/usr/bin/env bash
# Authlib (an independent OpenID Connect client: authorization code with PKCE, client
# authentication, ID token and logout token validation against a JWKS) with requests, in a
# project-local venv; prints the venv's python. Used by tests/tests/oidc_op.rs.
set -euo pipefail
BIN=$("$(dirname "${BASH_SOURCE[0]}")/py-venv.sh" authlib "Authlib==1.9.6" "requests==2.34.2" "cryptography==50.0.2")
echo "$BIN/python"
