#!/usr/bin/env bash
# spid-sp-test (italia/spid-sp-test, AgID's conformance tool for SPID/CIE/eIDAS service
# providers) in a project-local venv; prints the path of its `spid_sp_test` executable. At
# run time the tool needs the xmlsec1 and openssl commands. Env: SPID_SP_TEST_VERSION.
set -euo pipefail
BIN=$("$(dirname "${BASH_SOURCE[0]}")/py-venv.sh" spid-sp-test "spid-sp-test==${SPID_SP_TEST_VERSION:-1.2.18}")
[ -x "$BIN/spid_sp_test" ] || { echo "spid-sp-test-venv: $BIN/spid_sp_test missing" >&2; exit 1; }
echo "$BIN/spid_sp_test"
