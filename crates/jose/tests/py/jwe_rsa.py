"""JWEs as the SPID/CIE OIDC profile encrypts UserInfo (RSA-OAEP / RSA-OAEP-256 with
A128CBC-HS256 / A256CBC-HS512), made by jwcrypto for tests/interop_jwe_rsa.rs.
stdin: our public RSA encryption JWK. stdout: a JSON array of {name, jwe, expect}."""

import base64
import json
import sys

from jwcrypto import jwe, jwk

ours = jwk.JWK(**json.load(sys.stdin))
stranger = jwk.JWK.generate(kty="RSA", size=2048)
PLAIN = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"


def b64(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def enc(key, alg, e, **extra):
    h = {"alg": alg, "enc": e, "kid": ours.get("kid")}
    h.update(extra)
    t = jwe.JWE(PLAIN.encode(), protected=json.dumps(h))
    t.allowed_algs = jwe.default_allowed_algs + ["RSA1_5"]
    t.add_recipient(key)
    return t.serialize(compact=True)


def flip(token, segment, at=0):
    p = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(p[segment] + "=="))
    raw[at] ^= 1
    p[segment] = b64(bytes(raw))
    return ".".join(p)


out = []
for alg in ("RSA-OAEP", "RSA-OAEP-256"):
    for e in ("A128CBC-HS256", "A256CBC-HS512"):
        out.append({"name": f"{alg}+{e}", "jwe": enc(ours, alg, e), "expect": "ok"})
good = enc(ours, "RSA-OAEP", "A256CBC-HS512")
out += [
    {"name": "tampered ciphertext", "jwe": flip(good, 3), "expect": "jose.jwe_decrypt"},
    {"name": "tampered last block (padding oracle probe)", "jwe": flip(good, 3, -1), "expect": "jose.jwe_decrypt"},
    {"name": "tampered tag", "jwe": flip(good, 4), "expect": "jose.jwe_decrypt"},
    {"name": "tampered iv", "jwe": flip(good, 2), "expect": "jose.jwe_decrypt"},
    {"name": "tampered encrypted key", "jwe": flip(good, 1, 5), "expect": "jose.jwe_decrypt"},
    {"name": "to another key", "jwe": enc(stranger, "RSA-OAEP", "A256CBC-HS512"), "expect": "jose.jwe_decrypt"},
    {"name": "RSA1_5 refused", "jwe": enc(ours, "RSA1_5", "A128CBC-HS256"), "expect": "jose.jwe_alg"},
    {"name": "GCM content refused", "jwe": enc(ours, "RSA-OAEP", "A128GCM"), "expect": "jose.jwe_alg"},
    {"name": "zip refused", "jwe": enc(ours, "RSA-OAEP", "A128CBC-HS256", zip="DEF"), "expect": "jose.jwe"},
]
json.dump(out, sys.stdout)
