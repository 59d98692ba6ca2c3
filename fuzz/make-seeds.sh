#!/usr/bin/env bash
# Regenerates the signed seed documents under seeds/ with the real xmlsec1 (Debian 1.2.37),
# from the templates in crates/xmldsig/tests/fixtures and the TEST-ONLY keys in
# crates/xmldsig/tests/keys. Run from anywhere; needs xmlsec1, perl and python3.
# RSA PKCS#1 v1.5 signatures are deterministic, ECDSA ones are not: a re-run changes only the
# ECDSA seed.
# The hand-written seeds (xml_parse/, c14n/, and the edit programs in dsig_mutate/) are not
# touched, except dsig_mutate/*.bin, which are recomputed against the new base document.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fixtures=$here/../crates/xmldsig/tests/fixtures
keys=$here/../crates/xmldsig/tests/keys
seeds=$here/seeds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

SAMLP=urn:oasis:names:tc:SAML:2.0:protocol
SAML=urn:oasis:names:tc:SAML:2.0:assertion
RESPONSE_ID=_b7d1f3c2a9e84f6d8c0a1e2f3b4c5d6e7f809a1b
ASSERTION_ID=_5a9c7e3f1b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f

# sign IN OUT KEYSTEM NODE_ID
sign() {
    xmlsec1 --sign --privkey-pem "$keys/$3.key.pem,$keys/$3.crt.pem" \
        --id-attr:ID "$SAMLP:Response" --id-attr:ID "$SAML:Assertion" \
        --id-attr:ID "$SAMLP:AuthnRequest" --node-id "$4" --output "$2" "$1"
}
# response TEMPLATE OUT KEYSTEM: Assertion first, then the Response over it.
response() {
    sign "$1" "$work/inner.xml" "$3" "$ASSERTION_ID"
    sign "$work/inner.xml" "$2" "$3" "$RESPONSE_ID"
}
no_key_info() { perl -0pe 's{<ds:KeyInfo>.*?</ds:KeyInfo>}{}gs' "$1" > "$2"; }

mkdir -p "$seeds/signed" "$seeds/dsig_verify" "$seeds/dsig_mutate"

# The dsig_mutate base: signed with the key dsig_mutate trusts.
response "$fixtures/response-spid.xml" "$seeds/signed/response-idp-rsa2048.xml" idp-rsa2048

# dsig_verify trusts idp-rsa3072 and idp-p256: no seed is signed with either.
response "$fixtures/response-spid.xml" "$seeds/dsig_verify/response-attacker.xml" attacker-rsa2048
no_key_info "$seeds/dsig_verify/response-attacker.xml" "$seeds/dsig_verify/response-attacker-no-keyinfo.xml"
sed 's#xmldsig-more\#rsa-sha256#xmldsig-more\#ecdsa-sha256#' \
    "$fixtures/response-spid-assertion-only.xml" > "$work/ec.xml"
sign "$work/ec.xml" "$work/ec-signed.xml" idp-p384 "$ASSERTION_ID"
no_key_info "$work/ec-signed.xml" "$seeds/dsig_verify/assertion-p384-key-ecdsa-sha256-no-keyinfo.xml"
sign "$fixtures/authnrequest.xml" "$seeds/dsig_verify/authnrequest-sp.xml" sp-rsa2048 \
    _4d38c302617b5bf98951e65b4cf304711e2166df20

# dsig_mutate edit programs, with offsets into the base (see fuzz_targets/dsig_mutate.rs).
python3 - "$seeds/signed/response-idp-rsa2048.xml" "$seeds/dsig_mutate" <<'PY'
import struct, sys
base = open(sys.argv[1], "rb").read()
out = sys.argv[2]
marks = [i for i, b in enumerate(base) if b == ord("<")] + [len(base)]
def mark(s, nth=0):
    at = -1
    for _ in range(nth + 1):
        at = base.index(s, at + 1)
    return marks.index(at)
u16 = lambda v: struct.pack("<H", v)
progs = {
    # No edit: both signatures verify, contents identical.
    "identity.bin": b"",
    # Flip one byte of the fiscal number (a DigestMismatch).
    "replace-fiscal.bin": b"\x00" + u16(base.index(b"RSSMRA") ) + b"X",
    # Comment inside the NameID (canonically invisible: still verifies, same reading).
    "comment-in-nameid.bin": b"\x07" + u16((base.index(b"_e1f2a3b4") + 4) << 1 | 1) + bytes([9]),
    # Copy the whole Assertion before samlp:Status (duplicate ID: refused by the parser).
    "copy-assertion.bin": b"\x04" + u16(mark(b"<saml:Assertion")) + u16(mark(b"</samlp:Response>"))
        + u16(mark(b"<samlp:Status")),
    # Move the Assertion's signature to the end of the Assertion.
    "move-assertion-signature.bin": b"\x06" + u16(mark(b"<ds:Signature", 1))
        + u16(mark(b"<saml:Subject")) + u16(mark(b"</saml:Assertion>")),
    # Wrap the Assertion in samlp:Extensions (the first insertion adds one mark, hence + 1).
    "wrap-assertion.bin": b"\x07" + u16(mark(b"<saml:Assertion") << 1) + bytes([4])
        + b"\x07" + u16((mark(b"</samlp:Response>") + 1) << 1) + bytes([5]),
}
for name, prog in progs.items():
    open(f"{out}/{name}", "wb").write(prog)
PY
ls -l "$seeds"/*/
