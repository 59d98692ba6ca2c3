"""SD-JWT VC presentations made by independent, published libraries: the OpenWallet
Foundation's `sd-jwt` (issuer and holder) and `jwcrypto` (every other JWS), for the Rust
tests in tests/interop_sdjwt.rs. Prints one JSON object: keys, request values, and one
scenario per case with the code Varco must answer (or "ok")."""

import base64
import hashlib
import json
import sys
import zlib

from jwcrypto import jwk, jws as jjws
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
import sd_jwt.holder as holder_mod

NOW = int(sys.argv[1])
NONCE = "n-0S6_WzA2Mj"
AUD = "x509_hash:Uvo3HtuIxuhC92rShpgqcT3YXwrqRxWEviRiA0OZszk"
ISS = "https://pid.example.it"
VCT = "urn:eudi:pid:it:1"
STATUS_URI = "https://pid.example.it/status/1"

holder_mod.time = lambda: NOW  # the KB-JWT iat

issuer_key = jwk.JWK.generate(kty="EC", crv="P-256", kid="issuer-1")
attacker_key = jwk.JWK.generate(kty="EC", crv="P-256", kid="issuer-1")
holder_key = jwk.JWK.generate(kty="EC", crv="P-256")
other_holder = jwk.JWK.generate(kty="EC", crv="P-256")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign(key, header, payload) -> str:
    s = jjws.JWS(json.dumps(payload))
    s.add_signature(key, alg=header["alg"], protected=json.dumps(header))
    return s.serialize(compact=True)


def pid_claims(**over):
    c = {
        "iss": ISS,
        "iat": NOW - 3600,
        "exp": NOW + 365 * 86400,
        "vct": VCT,
        "status": {"status_list": {"idx": 5, "uri": STATUS_URI}},
        SDObj("given_name"): "Mario",
        SDObj("family_name"): "Rossi",
        SDObj("birth_date"): "1980-01-10",
        SDObj("tax_id_code"): "TINIT-RSSMRA80A10H501U",
        SDObj("birth_place"): "Roma",
        SDObj("nationalities"): [SDObj("IT"), SDObj("FR")],
        SDObj("address"): {SDObj("street_address"): "Via Roma 1", "locality": "Roma", "country": "IT"},
    }
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def issue(claims, key=issuer_key, header=None, holder=holder_key, decoys=True):
    hdr = {"typ": "dc+sd-jwt", "kid": key.get("kid")}
    hdr.update(header or {})
    return SDJWTIssuer(claims, key, holder, sign_alg="ES256", add_decoy_claims=decoys,
                       extra_header_parameters=hdr).sd_jwt_issuance


ALL = {"given_name": True, "family_name": True, "birth_date": True, "tax_id_code": True,
       "birth_place": True, "nationalities": [True, True], "address": {"street_address": True}}


def present(issuance, disclose=ALL, nonce=NONCE, aud=AUD, hkey=holder_key):
    h = SDJWTHolder(issuance)
    h.create_presentation(disclose, nonce, aud, hkey, "ES256")
    return h.sd_jwt_presentation


def parts(issuance):
    """The issuer JWT and the disclosures of an issuance."""
    p = issuance.split("~")
    return p[0], [d for d in p[1:] if d]


def kb(sd_part, nonce=NONCE, aud=AUD, iat=NOW, key=holder_key, alg="ES256", typ="kb+jwt",
       sd_hash=None):
    payload = {"nonce": nonce, "aud": aud, "iat": iat,
               "sd_hash": sd_hash or b64(hashlib.sha256(sd_part.encode()).digest())}
    if alg == "none":
        return b64(json.dumps({"alg": "none", "typ": typ}).encode()) + "." + \
            b64(json.dumps(payload).encode()) + "."
    return sign(key, {"alg": alg, "typ": typ}, payload)


def assemble(jwt, disclosures, **kbargs):
    sd_part = "~".join([jwt] + disclosures) + "~"
    return sd_part + kb(sd_part, **kbargs)


def disclosure(value, name=None, salt="c2FsdHNhbHRzYWx0"):
    arr = [salt, name, value] if name is not None else [salt, value]
    return b64(json.dumps(arr).encode())


def hand_issuer(header, claims, key=issuer_key):
    """An issuer JWT assembled by hand (plain claims only) and signed by jwcrypto."""
    if header["alg"] == "none":
        return b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode()) + "."
    return sign(key, header, claims)


plain = {"iss": ISS, "iat": NOW - 3600, "exp": NOW + 86400, "vct": VCT,
         "status": {"status_list": {"idx": 5, "uri": STATUS_URI}},
         "cnf": {"jwk": holder_key.export_public(as_dict=True)},
         "given_name": "Mario", "family_name": "Rossi", "birth_date": "1980-01-10",
         "tax_id_code": "TINIT-RSSMRA80A10H501U", "_sd_alg": "sha-256"}

S = {}
good = issue(pid_claims())
S["ok"] = (present(good), "ok")
S["ok_partial"] = (present(good, {"given_name": True, "family_name": True, "birth_date": True,
                                  "tax_id_code": True, "nationalities": [False, True]}), "ok")
S["ok_no_decoys"] = (present(issue(pid_claims(), decoys=False)), "ok")
S["wrong_nonce"] = (present(good, nonce="another-nonce"), "sdjwt.nonce")
S["wrong_aud"] = (present(good, aud="x509_hash:another-verifier"), "sdjwt.audience")

jwt, ds = parts(good)
# A disclosure rewritten with another value: its digest is in no _sd array.
tampered = [disclosure("Luigi", "given_name") if json.loads(base64.urlsafe_b64decode(d + "==")).__getitem__(1) == "given_name" else d for d in ds]
S["tampered_disclosure"] = (assemble(jwt, tampered), "sdjwt.unreferenced_disclosure")
S["foreign_disclosure"] = (assemble(jwt, ds + [parts(issue(pid_claims()))[1][0]]), "sdjwt.unreferenced_disclosure")
S["duplicate_disclosure"] = (assemble(jwt, ds + [ds[0]]), "sdjwt.duplicate_disclosure")
S["missing_kb"] = ("~".join([jwt] + ds) + "~", "sdjwt.kb_missing")
S["kb_other_holder_key"] = (assemble(jwt, ds, key=other_holder), "jose.signature")
S["kb_sd_hash_of_other_disclosures"] = ("~".join([jwt] + ds[:2]) + "~" + kb("~".join([jwt] + ds) + "~"), "sdjwt.sd_hash")
S["kb_stale"] = (assemble(jwt, ds, iat=NOW - 3600), "sdjwt.kb_iat")
S["kb_future"] = (assemble(jwt, ds, iat=NOW + 3600), "sdjwt.kb_iat")
S["kb_alg_none"] = (assemble(jwt, ds, alg="none"), "jose.alg_none")
S["kb_wrong_typ"] = (assemble(jwt, ds, typ="JWT"), "jose.typ")
no_cnf = issue(pid_claims(), holder=None)
S["unbound_no_cnf"] = (assemble(*parts(no_cnf)), "sdjwt.cnf")
S["expired"] = (present(issue(pid_claims(exp=NOW - 3600))), "sdjwt.expired")
S["not_yet_valid"] = (present(issue(pid_claims(nbf=NOW + 3600))), "sdjwt.not_yet_valid")
S["no_exp"] = (present(issue(pid_claims(exp=None))), "sdjwt.claim")
S["vct_not_accepted"] = (present(issue(pid_claims(vct="urn:eudi:pid:1"))), "sdjwt.vct")
S["other_issuer"] = (present(issue(pid_claims(iss="https://evil.example"))), "sdjwt.issuer")
S["forged_issuer_signature"] = (present(issue(pid_claims(), key=attacker_key)), "jose.signature")
S["wrong_issuer_typ"] = (present(issue(pid_claims(), header={"typ": "vc+sd-jwt"})), "jose.typ")
S["issuer_x5c_header"] = (present(issue(pid_claims(), header={"x5c": ["MIIB"]})), "jose.header_key")
S["issuer_alg_none"] = (assemble(hand_issuer({"alg": "none", "typ": "dc+sd-jwt", "kid": "issuer-1"}, plain), []), "jose.alg_none")
hmac_key = jwk.JWK(kty="oct", k=b64(json.dumps(issuer_key.export_public(as_dict=True)).encode()))
S["issuer_hs256_public_key_as_secret"] = (assemble(hand_issuer({"alg": "HS256", "typ": "dc+sd-jwt", "kid": "issuer-1"}, plain, hmac_key), []), "jose.alg_hmac")
S["plain_claims_only"] = (assemble(hand_issuer({"alg": "ES256", "typ": "dc+sd-jwt", "kid": "issuer-1"}, plain), []), "ok")
S["sd_alg_sha512"] = (assemble(hand_issuer({"alg": "ES256", "typ": "dc+sd-jwt", "kid": "issuer-1"}, dict(plain, _sd_alg="sha-512")), []), "sdjwt.sd_alg")
# A disclosure whose name is already a plain claim of the same object.
col = pid_claims()
col["given_name"] = "Mario"
S["claim_collision"] = (present(issue(col)), "sdjwt.claim_collision")
prot = pid_claims(exp=None)
prot[SDObj("exp")] = NOW + 86400
S["exp_selectively_disclosable"] = (present(issue(prot), dict(ALL, exp=True)), "sdjwt.reserved_name")
# An object disclosure placed in an array by a dishonest issuer.
obj_d = disclosure("IT", "country")
arr_claims = dict(plain, nationalities=[{"...": b64(hashlib.sha256(obj_d.encode()).digest())}])
S["object_disclosure_in_array"] = (assemble(hand_issuer({"alg": "ES256", "typ": "dc+sd-jwt", "kid": "issuer-1"}, arr_claims), [obj_d]), "sdjwt.disclosure_kind")
# The same digest twice in the payload.
dd = disclosure("Roma", "birth_place")
dig = b64(hashlib.sha256(dd.encode()).digest())
dup_claims = dict(plain, _sd=[dig], address={"_sd": [dig]})
S["duplicate_digest"] = (assemble(hand_issuer({"alg": "ES256", "typ": "dc+sd-jwt", "kid": "issuer-1"}, dup_claims), [dd]), "sdjwt.duplicate_digest")
many = pid_claims()
for i in range(70):
    many[SDObj(f"extra_{i}")] = i
S["too_many_disclosures"] = (present(issue(many, decoys=False), dict(ALL, **{f"extra_{i}": True for i in range(70)})), "sdjwt.too_many_disclosures")
big = pid_claims()
big["portrait"] = "A" * (70 * 1024)
S["oversized"] = (present(issue(big)), "sdjwt.too_large")
S["revoked"] = (present(issue(pid_claims(status={"status_list": {"idx": 6, "uri": STATUS_URI}}))), "sdjwt.revoked")
S["suspended"] = (present(issue(pid_claims(status={"status_list": {"idx": 7, "uri": STATUS_URI}}))), "sdjwt.suspended")
S["status_other_value"] = (present(issue(pid_claims(status={"status_list": {"idx": 8, "uri": STATUS_URI}}))), "sdjwt.status_other")
S["status_index_beyond_list"] = (present(issue(pid_claims(status={"status_list": {"idx": 100000, "uri": STATUS_URI}}))), "sdjwt.status_index")
S["no_status"] = (present(issue(pid_claims(status=None))), "sdjwt.status_missing")

# The status list: 2 bits per entry, 64 entries; 5 VALID, 6 INVALID, 7 SUSPENDED, 8 = 3.
entries = [0] * 64
entries[6], entries[7], entries[8] = 1, 2, 3
raw = bytearray(len(entries) * 2 // 8)
for i, v in enumerate(entries):
    raw[i * 2 // 8] |= v << ((i * 2) % 8)


def status_token(sub=STATUS_URI, exp=NOW + 3600, lst=None, bits=2, key=issuer_key, typ="statuslist+jwt"):
    claims = {"sub": sub, "iat": NOW - 60, "ttl": 3600,
              "status_list": {"bits": bits, "lst": lst or b64(zlib.compress(bytes(raw), 9))}}
    if exp is not None:
        claims["exp"] = exp
    return sign(key, {"alg": "ES256", "typ": typ, "kid": key.get("kid")}, claims)


L = {
    "ok": (status_token(), "ok"),
    "expired": (status_token(exp=NOW - 3600), "sdjwt.status_list_expired"),
    "other_sub": (status_token(sub="https://pid.example.it/status/2"), "sdjwt.status_list"),
    "forged": (status_token(key=attacker_key), "jose.signature"),
    "wrong_typ": (status_token(typ="JWT"), "jose.typ"),
    "bits_3": (status_token(bits=3), "sdjwt.status_list"),
    "not_zlib": (status_token(lst=b64(b"not compressed at all")), "sdjwt.status_list"),
    # 8 MiB of zeros in about 8 KiB: refused at the decompression bound, not after.
    "zlib_bomb": (status_token(lst=b64(zlib.compress(bytes(8 * 1024 * 1024), 9))), "sdjwt.too_large"),
}

print(json.dumps({
    "now": NOW, "nonce": NONCE, "aud": AUD, "iss": ISS, "vct": VCT, "status_uri": STATUS_URI,
    "issuer_jwks": {"keys": [issuer_key.export_public(as_dict=True)]},
    "holder_jwk": holder_key.export_public(as_dict=True),
    "raw_list": b64(bytes(raw)),
    "scenarios": {k: {"presentation": p, "expect": e} for k, (p, e) in S.items()},
    "status_lists": {k: {"token": t, "expect": e} for k, (t, e) in L.items()},
}))
