#!/usr/bin/env bash
# Django with mozilla-django-oidc (a stock application's OpenID Connect login, as many
# administrations' Django portals use it) in a project-local venv; prints the venv's python.
# Used by tests/tests/oidc_op.rs with the project in tests/py/django_rp/.
set -euo pipefail
BIN=$("$(dirname "${BASH_SOURCE[0]}")/py-venv.sh" django-oidc "Django==5.2.20" "mozilla-django-oidc==5.0.2" "requests==2.34.2" "cryptography==50.0.2")
echo "$BIN/python"
