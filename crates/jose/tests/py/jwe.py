"""JWEs made by jwcrypto (an independent JOSE implementation) for tests/interop_jwe.rs.
stdin: a JSON array of our public encryption JWKs, one per scenario, in the order of
SCENARIOS below. stdout: a JSON array of {name, jwe, expect, plaintext}."""

import base64
import json
import sys

from jwcrypto import jwe, jwk

keys = [jwk.JWK(**k) for k in json.load(sys.stdin)]
stranger = jwk.JWK.generate(kty="EC", crv="P-256")
PLAIN = json.dumps({"state": "s-1", "vp_token": {"pid": ["eyJ...~"]}})


def b64(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def enc(key, header, plaintext=PLAIN):
    t = jwe.JWE(plaintext.encode(), protected=json.dumps(header))
    t.add_recipient(key)
    return t.serialize(compact=True)


def std(key, e="A128GCM", **extra):
    h = {"alg": "ECDH-ES", "enc": e, "kid": key.get("kid")}
    h.update(extra)
    return h


def flip(token, segment):
    p = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(p[segment] + "=="))
    raw[0] ^= 1
    p[segment] = b64(bytes(raw))
    return ".".join(p)


def rehead(token, change):
    p = token.split(".")
    h = json.loads(base64.urlsafe_b64decode(p[0] + "=="))
    change(h)
    p[0] = b64(json.dumps(h).encode())
    return ".".join(p)


def off_curve(h):
    h["epk"]["y"] = b64(bytes(32))


SCENARIOS = [
    ("ok_a128gcm", lambda k: enc(k, std(k)), "ok"),
    ("ok_a256gcm", lambda k: enc(k, std(k, "A256GCM")), "ok"),
    ("ok_apu_apv_no_kid", lambda k: enc(k, {"alg": "ECDH-ES", "enc": "A128GCM", "apu": b64(b"wallet"), "apv": b64(b"nonce-1")}), "ok"),
    ("encrypted_to_another_key", lambda k: enc(stranger, {"alg": "ECDH-ES", "enc": "A128GCM"}), "jose.jwe_decrypt"),
    ("another_kid", lambda k: enc(stranger, std(stranger)), "jose.jwe_kid"),
    ("tampered_ciphertext", lambda k: flip(enc(k, std(k)), 3), "jose.jwe_decrypt"),
    ("tampered_tag", lambda k: flip(enc(k, std(k)), 4), "jose.jwe_decrypt"),
    ("tampered_header", lambda k: rehead(enc(k, std(k)), lambda h: h.update(apv=b64(b"x"))), "jose.jwe_decrypt"),
    ("epk_off_curve", lambda k: rehead(enc(k, std(k)), off_curve), "jose.jwe_decrypt"),
    ("key_wrap_alg", lambda k: enc(k, {"alg": "ECDH-ES+A128KW", "enc": "A128GCM", "kid": k.get("kid")}), "jose.jwe_alg"),
    ("cbc_hmac_enc", lambda k: enc(k, std(k, "A128CBC-HS256")), "jose.jwe_alg"),
    ("a192gcm_enc", lambda k: enc(k, std(k, "A192GCM")), "jose.jwe_alg"),
    ("zip_deflate", lambda k: enc(k, std(k, zip="DEF")), "jose.jwe"),
    ("jwk_header", lambda k: enc(k, std(k, jwk=stranger.export_public(as_dict=True))), "jose.header_key"),
]

out = []
for (name, make, expect), key in zip(SCENARIOS, keys):
    out.append({"name": name, "jwe": make(key), "expect": expect, "plaintext": PLAIN})
assert len(out) == len(SCENARIOS) == len(keys), (len(out), len(SCENARIOS), len(keys))
print(json.dumps(out))
