#!/usr/bin/env bash
# Generates a FRESH signing key and self-signed certificate for spid-sp-test's built-in test
# IdP, whose shipped certificate expired on 2025-03-08 (upstream issue #179), and prints the
# directory holding them. Use it as:
#
#   dir=$(scripts/spid-sp-test-idp-cert.sh)           # or: scripts/spid-sp-test-idp-cert.sh DIR
#   IDP_CERT_PATH=$dir spid_sp_test --idp-metadata > idp.xml   # trust this IdP in the SP
#   IDP_CERT_PATH=$dir spid_sp_test ... -tr                     # Responses signed with the new key
#
# The directory gets `private.key` (unencrypted PKCS#8 PEM, RSA 2048) and `public.cert`
# (X.509 PEM, SHA-256, valid from now for DAYS days, default 30), the two names
# spid-sp-test reads from IDP_CERT_PATH. Without an argument a new directory is made under
# ${TMPDIR:-/tmp}; an existing DIR is reused and its two files are replaced. Test-only material:
# never trust it outside a test run.
set -euo pipefail

DAYS="${DAYS:-30}"
command -v openssl >/dev/null 2>&1 || { echo "spid-sp-test-idp-cert: openssl not found (Debian: apt-get install openssl)" >&2; exit 1; }

if [ $# -ge 1 ]; then
  DIR="$1"
  mkdir -p "$DIR"
else
  DIR="$(mktemp -d "${TMPDIR:-/tmp}/spid-sp-test-idp.XXXXXX")"
fi

# The same subject as the shipped certificate, so reports look alike; a random serial.
openssl req -x509 -newkey rsa:2048 -sha256 -nodes \
  -keyout "$DIR/private.key" -out "$DIR/public.cert" \
  -days "$DAYS" -set_serial "0x$(openssl rand -hex 16)" \
  -subj "/C=IT/ST=Italy/L=Rome/O=AgID/OU=AgID TEST/CN=agid.gov.it" \
  >/dev/null 2>&1 || { echo "spid-sp-test-idp-cert: openssl req failed" >&2; exit 1; }
chmod 600 "$DIR/private.key"
echo "$DIR"
