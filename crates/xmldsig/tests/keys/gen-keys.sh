#!/bin/sh
# Regenerates the TEST-ONLY keys and certificates in this directory.
# Run from this directory with OpenSSL 3.x. Keys are random, so a re-run
# produces different files: commit the result and never depend on key bytes.
set -eu

# Fixed validity, independent of the clock of the machine that runs this:
# 2025-01-01 .. 2035-01-01 (10 years), so fixture timestamps (2025-03-14)
# fall inside it. `openssl req -x509` of OpenSSL 3.0 cannot set a start
# date, hence `openssl ca -selfsign`.
NOT_BEFORE=20250101000000Z
NOT_AFTER=20350101000000Z

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: > "$work/index.txt"
cat > "$work/ca.cnf" <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
database        = $work/index.txt
new_certs_dir   = $work
rand_serial     = yes
default_md      = sha256
policy          = policy_any
unique_subject  = no
copy_extensions = none
x509_extensions = ext
[ policy_any ]
countryName      = optional
organizationName = optional
commonName       = supplied
[ ext ]
# Same extensions as "openssl req -x509" puts on a self-signed certificate.
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
basicConstraints       = critical, CA:TRUE
[ req ]
distinguished_name = dn
[ dn ]
CNF

gen() { # name subject genpkey-options...
    name=$1; subj=$2; shift 2
    openssl genpkey "$@" -out "$name.key.pem"
    openssl req -new -key "$name.key.pem" -subj "$subj" -config "$work/ca.cnf" -out "$work/$name.csr"
    openssl ca -batch -notext -selfsign -config "$work/ca.cnf" -keyfile "$name.key.pem" \
        -startdate "$NOT_BEFORE" -enddate "$NOT_AFTER" -in "$work/$name.csr" -out "$name.crt.pem"
    openssl x509 -in "$name.crt.pem" -outform DER -out "$name.crt.der"
    openssl pkcs8 -topk8 -nocrypt -in "$name.key.pem" -outform DER -out "$name.key.pk8.der"
    chmod 644 "$name".*
}

gen idp-rsa2048      "/C=IT/O=Varco Test IdP/CN=idp-rsa2048.test.invalid"   -algorithm RSA -pkeyopt rsa_keygen_bits:2048
gen attacker-rsa2048 "/C=IT/O=Varco Test Attacker/CN=attacker.test.invalid" -algorithm RSA -pkeyopt rsa_keygen_bits:2048
gen idp-rsa3072      "/C=IT/O=Varco Test IdP/CN=idp-rsa3072.test.invalid"   -algorithm RSA -pkeyopt rsa_keygen_bits:3072
gen idp-p256         "/C=IT/O=Varco Test IdP/CN=idp-p256.test.invalid"      -algorithm EC  -pkeyopt ec_paramgen_curve:P-256
gen idp-p384         "/C=IT/O=Varco Test IdP/CN=idp-p384.test.invalid"      -algorithm EC  -pkeyopt ec_paramgen_curve:P-384
gen sp-rsa2048       "/C=IT/O=Varco Test SP/CN=sp-rsa2048.test.invalid"     -algorithm RSA -pkeyopt rsa_keygen_bits:2048
