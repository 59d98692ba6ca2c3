"""An independent OpenID4VP wallet for tests/interop_openid4vp.rs, built only from
published libraries: jwcrypto (request object signature, JWE ECDH-ES), cryptography
(x509_hash certificate), and the OpenWallet Foundation `sd-jwt` (issuer and holder).

stdin: {"now": N, "verifier_jwk": {...}, "requests": [{"name": ..., "jar": ...}, ...]}
stdout: {"issuer_jwks": {...}, "responses": [{"name", "response", "client_id"}...]}

For every request the wallet checks the request object as a wallet must (signature with
the verifier key, or with the x5c leaf whose hash is the client_id; typ; response mode),
issues itself a PID, discloses the DCQL claim paths, binds the presentation to the
request's nonce and client_id, and encrypts the answer to the request's key; the scenario
name says what to do wrong."""

import base64
import hashlib
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwe, jwk, jws
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
import sd_jwt.holder as holder_mod

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pymdoccbor.mdoc.issuer import MdocCborIssuer
import datetime

inp = json.load(sys.stdin)
NOW = inp["now"]
holder_mod.time = lambda: NOW
verifier_key = jwk.JWK(**inp["verifier_jwk"])
issuer_key = jwk.JWK.generate(kty="EC", crv="P-256", kid="pid-issuer")
holder_key = jwk.JWK.generate(kty="EC", crv="P-256")
stranger = jwk.JWK.generate(kty="EC", crv="P-256")


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def open_request(jar):
    header = json.loads(b64d(jar.split(".")[0]))
    assert header["typ"] == "oauth-authz-req+jwt", header
    claims = json.loads(b64d(jar.split(".")[1]))
    if claims["client_id"].startswith("x509_hash:"):
        leaf = base64.b64decode(header["x5c"][0])
        assert claims["client_id"] == "x509_hash:" + b64(hashlib.sha256(leaf).digest())
        pem = x509.load_der_x509_certificate(leaf).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        key = jwk.JWK.from_pem(pem)
    else:
        assert claims["client_id"].startswith("openid_federation:https://")
        key = verifier_key
    t = jws.JWS()
    t.deserialize(jar)
    t.verify(key)  # raises if the signature is bad
    assert claims["response_type"] == "vp_token"
    assert claims["response_mode"] == "direct_post.jwt"
    assert claims["aud"] == "https://self-issued.me/v2"
    return claims


def pid_issuance():
    claims = {
        "iss": "https://pid.example.it", "iat": NOW - 3600, "exp": NOW + 86400, "vct": "urn:eudi:pid:it:1",
        "status": {"status_list": {"idx": 3, "uri": "https://pid.example.it/status/1"}},
        SDObj("given_name"): "Mario", SDObj("family_name"): "Rossi",
        SDObj("birth_date"): "1980-01-10", SDObj("tax_id_code"): "TINIT-RSSMRA80A10H501U",
        SDObj("birth_place"): "Roma",
    }
    return SDJWTIssuer(claims, issuer_key, holder_key, sign_alg="ES256", add_decoy_claims=True,
                       extra_header_parameters={"typ": "dc+sd-jwt", "kid": "pid-issuer"}).sd_jwt_issuance


def present(req, nonce=None, aud=None):
    q = req["dcql_query"]["credentials"][0]
    disclose = {c["path"][0]: True for c in q["claims"]}
    h = SDJWTHolder(pid_issuance())
    h.create_presentation(disclose, nonce or req["nonce"], aud or req["client_id"], holder_key, "ES256")
    return q["id"], h.sd_jwt_presentation


def encrypt(req, payload, key=None, kid=True):
    meta = req["client_metadata"]
    k = key or jwk.JWK(**meta["jwks"]["keys"][0])
    h = {"alg": "ECDH-ES", "enc": meta["encrypted_response_enc_values_supported"][0]}
    if kid and key is None:
        h["kid"] = k.get("kid")
    t = jwe.JWE(json.dumps(payload).encode(), protected=json.dumps(h))
    t.add_recipient(k)
    return t.serialize(compact=True)


MDOC_ISSUER = ec.generate_private_key(ec.SECP256R1())
MDOC_DEVICE = ec.generate_private_key(ec.SECP256R1())


def xy(k):
    n = k.public_key().public_numbers()
    return n.x.to_bytes(32, "big"), n.y.to_bytes(32, "big")


def mdoc_present(req):
    """A DeviceResponse (pymdoccbor issuer; cbor2 + cryptography device signature over the
    OpenID4VP 1.0 session transcript computed from the request), base64url."""
    q = req["dcql_query"]["credentials"][0]
    doctype = q["meta"]["doctype_value"]
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = {"country_name": "IT", "state_or_province_name": "RM", "locality_name": "Roma",
            "organization_name": "PID Provider", "common_name": "pid.example.it",
            "san_url": "https://pid.example.it",
            "not_valid_before": now - datetime.timedelta(days=1),
            "not_valid_after": now + datetime.timedelta(days=30)}
    d = MDOC_ISSUER.private_numbers().private_value.to_bytes(32, "big")
    m = MdocCborIssuer(private_key={"KTY": "EC2", "CURVE": "P_256", "ALG": "ES256", "D": d, "KID": b"ds"},
                       alg="ES256", cert_info=cert)
    x, y = xy(MDOC_DEVICE)
    wanted = {c["path"][1] for c in q["claims"]}
    data = {"family_name": "Rossi", "given_name": "Mario", "birth_date": "1980-01-10",
            "tax_id_code": "TINIT-RSSMRA80A10H501U", "birth_place": "Roma"}
    m.new(data={doctype: {k: v for k, v in data.items() if k in wanted}}, doctype=doctype,
          validity={"issuance_date": "2024-01-01", "expiry_date": "2030-01-01"},
          devicekeyinfo={"KTY": "EC2", "CURVE": "P_256", "X": x, "Y": y})
    doc = m.signed["documents"][0]
    enc = jwk.JWK(**req["client_metadata"]["jwks"]["keys"][0])
    thumb = b64d(enc.thumbprint())
    info = cbor2.dumps([req["client_id"], req["nonce"], thumb, req["response_uri"]])
    st = [None, None, ["OpenID4VPHandover", hashlib.sha256(info).digest()]]
    dns = cbor2.CBORTag(24, cbor2.dumps({}))
    dab = cbor2.dumps(cbor2.CBORTag(24, cbor2.dumps(["DeviceAuthentication", st, doctype, dns])))
    protected = cbor2.dumps({1: -7})
    tbs = cbor2.dumps(["Signature1", protected, b"", dab])
    r, s_ = decode_dss_signature(MDOC_DEVICE.sign(tbs, ec.ECDSA(hashes.SHA256())))
    doc["deviceSigned"] = {"nameSpaces": dns, "deviceAuth": {"deviceSignature": [
        protected, {}, None, r.to_bytes(32, "big") + s_.to_bytes(32, "big")]}}
    return q["id"], b64(cbor2.dumps({"version": "1.0", "documents": [doc], "status": 0}))


def answer(name, req):
    if name == "ok_mdoc":
        cid, p = mdoc_present(req)
        return encrypt(req, {"vp_token": {cid: [p]}, "state": req["state"]})
    cid, p = present(req)
    state = req["state"]
    ok = {"vp_token": {cid: [p]}, "state": state}
    if name in ("ok", "ok_x509", "response_for_another_request", "expired"):
        return encrypt(req, ok)
    if name == "other_state":
        return encrypt(req, dict(ok, state="state-of-another-browser"))
    if name == "encrypted_to_another_key":
        return encrypt(req, ok, key=stranger, kid=False)
    if name == "unrequested_credential":
        return encrypt(req, {"vp_token": {cid: [p], "extra": [p]}, "state": state})
    if name == "missing_credential":
        return encrypt(req, {"vp_token": {}, "state": state})
    if name == "two_presentations":
        return encrypt(req, {"vp_token": {cid: [p, p]}, "state": state})
    if name == "wallet_error":
        return encrypt(req, {"error": "access_denied", "state": state})
    if name == "kb_wrong_nonce":
        return encrypt(req, {"vp_token": {cid: [present(req, nonce="old-nonce")[1]]}, "state": state})
    if name == "kb_wrong_aud":
        return encrypt(req, {"vp_token": {cid: [present(req, aud="openid_federation:https://other-rp.example.it")[1]]}, "state": state})
    if name == "unencrypted":
        return b64(json.dumps(ok).encode())
    raise SystemExit("unknown scenario " + name)


out = []
for r in inp["requests"]:
    req = open_request(r["jar"])
    out.append({"name": r["name"], "response": answer(r["name"], req), "client_id": req["client_id"]})
mx, my = xy(MDOC_ISSUER)
print(json.dumps({"issuer_jwks": {"keys": [issuer_key.export_public(as_dict=True)]},
                  "mdoc_issuer_point": (b"\x04" + mx + my).hex(),
                  # pymdoccbor stamps validFrom with its wall clock: the time to verify at.
                  "mdoc_now": int(datetime.datetime.now(datetime.timezone.utc).timestamp()),
                  "responses": out}))
