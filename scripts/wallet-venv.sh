#!/usr/bin/env bash
# The independent test wallet's libraries, in a project-local venv; prints the venv's python:
# the OpenWallet Foundation's SD-JWT reference implementation (`sd-jwt`, issuer and holder),
# jwcrypto (JWS, JWE ECDH-ES), cbor2 and cryptography, and pymdoccbor (mdoc issuer, on
# pycose). None of Varco's code runs on that side.
set -euo pipefail
BIN=$("$(dirname "${BASH_SOURCE[0]}")/py-venv.sh" wallet "sd-jwt==0.10.4" "jwcrypto==1.6.1" \
  "pymdoccbor==1.4.0" "pycose==1.1.0" "cbor-diag==1.2.0" "cryptography==51.0.1" "cbor2==6.2.1")
echo "$BIN/python"
