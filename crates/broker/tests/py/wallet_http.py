"""A test wallet that talks to a running Varco over HTTP, built only from published
libraries (jwcrypto, cryptography, the OpenWallet Foundation `sd-jwt`): it follows the
authorization request by reference, checks the request object as a wallet must (x5c leaf
hashed into the x509_hash client_id, signature, typ, response mode), issues itself a PID
with the test issuer's key, presents the requested claims bound to the request's nonce and
client_id, encrypts the answer to the request's key and POSTs it to the response_uri. The
scenario name says what to do wrong (the named attack tests).

Modes (argv[1]):
  status_list: stdin {"issuer_key_pem", "kid", "uri", "revoked": [idx...]} -> the signed
               Token Status List JWT on stdout.
  present:     stdin {"issuer_key_pem", "kid", "iss", "status_uri", "status_idx",
               "authorization_url", "public_base", "origin", "scenario"} -> stdout
               {"status": HTTP status, "body": the JSON answer, "posted": the form body,
               "asked": the claim names the request asked for, "disclosed": the claim
               names the presentation discloses}.

`origin` replaces `public_base` in the URLs the wallet follows: the test's Varco listens
on plain loopback HTTP behind what would be a TLS-terminating proxy in production. With
`response_origin`, the answer goes there instead (another replica of the same Varco).

Scenario `withhold:<claim>`: disclose what was asked except that claim.

When the request's DCQL query also asks for `wallet_attestation`, the wallet attaches a
Wallet Attestation: an SD-JWT VC that the test Wallet Provider (`provider` in the input:
{"key_pem", "kid", "iss", "vct", and optionally "x5c": its certificate chain}) signs over the wallet instance's key (the PID's holder
key), presented with a KB-JWT for this request. The `wa_*` scenarios spoil it."""

import base64
import hashlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwe, jwk, jws
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def sign(key, header, claims):
    t = jws.JWS(json.dumps(claims).encode())
    t.add_signature(key, alg=header["alg"], protected=json.dumps(header))
    return t.serialize(compact=True)


def status_list(inp):
    key = jwk.JWK.from_pem(inp["issuer_key_pem"].encode())
    bits = bytearray(16)
    for i in inp["revoked"]:
        bits[i // 8] |= 1 << (i % 8)
    now = int(time.time())
    claims = {"sub": inp["uri"], "iat": now - 10, "exp": now + 3600,
              "status_list": {"bits": 1, "lst": b64(zlib.compress(bytes(bits)))}}
    return sign(key, {"alg": "ES256", "typ": "statuslist+jwt", "kid": inp["kid"]}, claims)


def rewrite(url, inp):
    return url.replace(inp["public_base"], inp["origin"], 1)


def fetch_request(inp):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(inp["authorization_url"]).query)
    client_id = q["client_id"][0]
    with urllib.request.urlopen(rewrite(q["request_uri"][0], inp)) as r:
        assert r.headers["Content-Type"] == "application/oauth-authz-req+jwt", r.headers
        jar = r.read().decode()
    header = json.loads(b64d(jar.split(".")[0]))
    claims = json.loads(b64d(jar.split(".")[1]))
    assert header["typ"] == "oauth-authz-req+jwt", header
    assert claims["client_id"] == client_id
    if client_id.startswith("openid_federation:"):
        # The key the verifier's Entity Configuration publishes (the test hands it over).
        assert claims["iss"] == client_id[len("openid_federation:"):]
        key = jwk.JWK(**inp["verifier_jwk"])
    else:
        assert client_id.startswith("x509_hash:")
        leaf = base64.b64decode(header["x5c"][0])
        assert client_id == "x509_hash:" + b64(hashlib.sha256(leaf).digest())
        pem = x509.load_der_x509_certificate(leaf).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        key = jwk.JWK.from_pem(pem)
    t = jws.JWS()
    t.deserialize(jar)
    t.verify(key)
    assert claims["response_mode"] == "direct_post.jwt"
    assert claims["response_type"] == "vp_token"
    return claims


def issue(inp, issuer_key, holder_key, scenario):
    now = int(time.time())
    iss = inp["iss"]
    exp = now + 86400
    if scenario == "expired_credential":
        exp = now - 3600
    claims = {
        "iss": iss, "iat": now - 7200, "exp": exp, "vct": "urn:eudi:pid:it:1",
        "status": {"status_list": {"idx": inp["status_idx"], "uri": inp["status_uri"]}},
        SDObj("given_name"): "Mario", SDObj("family_name"): "Rossi",
        SDObj("birth_date"): "1980-01-10", SDObj("tax_id_code"): "TINIT-RSSMRA80A10H501W",
        SDObj("birth_place"): "Roma",
    }
    kid = inp["kid"]
    if scenario == "untrusted_issuer":
        claims["iss"] = "https://pid.untrusted.example"
    header = {"typ": "dc+sd-jwt", "kid": kid}
    if inp.get("x5c"):
        header["x5c"] = inp["x5c"]
    return SDJWTIssuer(claims, issuer_key, holder_key, sign_alg="ES256", add_decoy_claims=True,
                       extra_header_parameters=header).sd_jwt_issuance


def present(req, inp, scenario):
    issuer_key = jwk.JWK.from_pem(inp["issuer_key_pem"].encode())
    if scenario == "untrusted_issuer":
        issuer_key = jwk.JWK.generate(kty="EC", crv="P-256")
    holder_key = jwk.JWK.generate(kty="EC", crv="P-256")
    q = req["dcql_query"]["credentials"][0]
    disclose = {c["path"][0]: True for c in q["claims"]}
    if scenario.startswith("withhold:"):
        disclose.pop(scenario[len("withhold:"):], None)
    nonce, aud = req["nonce"], req["client_id"]
    if scenario == "wrong_nonce":
        nonce = "a-nonce-of-another-request"
    if scenario == "wrong_aud":
        aud = "x509_hash:another-verifier"
    kb_key = holder_key
    if scenario == "unbound_kb":
        kb_key = jwk.JWK.generate(kty="EC", crv="P-256")
    h = SDJWTHolder(issue(inp, issuer_key, holder_key, scenario))
    h.create_presentation(disclose, nonce, aud, kb_key, "ES256")
    p = h.sd_jwt_presentation
    inp["_holder_key"] = holder_key
    parts = p.split("~")
    if scenario == "missing_kb":
        p = "~".join(parts[:-1]) + "~"
    if scenario == "tampered_disclosure":
        # Rewrite the family_name disclosure's value, keeping its salt and name.
        for i, d in enumerate(parts[1:-1], start=1):
            salt, name, value = json.loads(b64d(d))
            if name == "family_name":
                parts[i] = b64(json.dumps([salt, name, "Bianchi"]).encode())
        p = "~".join(parts)
    if scenario == "alg_confusion":
        # The issuer JWT re-signed with HS256, the issuer's public key as the HMAC secret.
        ij = parts[0]
        header = json.loads(b64d(ij.split(".")[0]))
        payload = json.loads(b64d(ij.split(".")[1]))
        secret = issuer_key.export_public()
        hk = jwk.JWK(kty="oct", k=b64(secret.encode()))
        header["alg"] = "HS256"
        parts[0] = sign(hk, header, payload)
        p = "~".join(parts)
    if scenario == "oversized_presentation":
        p = parts[0] + "~" + ("A" * 70000) + "~" + parts[-1]
    return q["id"], p


def wallet_attestation(req, inp, scenario):
    """The Wallet Provider's attestation of this wallet instance (its key is the PID's
    holder key), presented for this request: `<provider JWT>~<KB-JWT>`."""
    wp = inp["provider"]
    provider_key = jwk.JWK.from_pem(wp["key_pem"].encode())
    instance_key = inp["_holder_key"]
    iss = wp["iss"]
    if scenario == "wa_untrusted_provider":
        provider_key = jwk.JWK.generate(kty="EC", crv="P-256")
        iss = "https://wallet-provider.untrusted.example"
    if scenario == "wa_forged_signature":
        # The trusted provider's name and kid, someone else's key.
        provider_key = jwk.JWK.generate(kty="EC", crv="P-256")
    if scenario == "wa_unbound":
        # A genuine attestation, but of another instance's key.
        instance_key = jwk.JWK.generate(kty="EC", crv="P-256")
    now = int(time.time())
    iat, exp = now - 60, now + 3600
    if scenario == "wa_expired":
        iat, exp = now - 7200, now - 3600
    if scenario == "wa_long_lived":
        exp = now + 30 * 86400
    claims = {"iss": iss, "iat": iat, "exp": exp, "vct": wp["vct"],
              "wallet_name": "Test Wallet", "aal": "https://trust-list.example/aal/high"}
    header = {"typ": "dc+sd-jwt", "kid": wp["kid"]}
    if wp.get("x5c"):
        header["x5c"] = wp["x5c"]
    issued = SDJWTIssuer(claims, provider_key, instance_key, sign_alg="ES256",
                         extra_header_parameters=header).sd_jwt_issuance
    holder = SDJWTHolder(issued)
    holder.create_presentation({}, req["nonce"], req["client_id"], instance_key, "ES256")
    p = holder.sd_jwt_presentation
    if scenario == "wa_alg_confusion":
        # The provider JWT re-signed with HS256, the provider's public key as the secret.
        parts = p.split("~")
        h = json.loads(b64d(parts[0].split(".")[0]))
        payload = json.loads(b64d(parts[0].split(".")[1]))
        hk = jwk.JWK(kty="oct", k=b64(provider_key.export_public().encode()))
        h["alg"] = "HS256"
        parts[0] = sign(hk, h, payload)
        p = "~".join(parts)
    return p


def mdoc_present(req, inp, scenario):
    """A DeviceResponse: pymdoccbor issues with the test issuer key and its certificate
    chain (`x5c`, DER) in the x5chain header; cbor2 + cryptography sign the device
    authentication over the OpenID4VP 1.0 session transcript of this request. base64url."""
    import datetime
    import cbor2
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from pymdoccbor.mdoc.issuer import MdocCborIssuer

    q = req["dcql_query"]["credentials"][0]
    doctype = q["meta"]["doctype_value"]
    issuer = serialization.load_pem_private_key(inp["issuer_key_pem"].encode(), None)
    device = ec.generate_private_key(ec.SECP256R1())
    d = issuer.private_numbers().private_value.to_bytes(32, "big")
    m = MdocCborIssuer(private_key={"KTY": "EC2", "CURVE": "P_256", "ALG": "ES256", "D": d,
                                    "KID": b"ds"}, alg="ES256")
    n = device.public_key().public_numbers()
    x, y = n.x.to_bytes(32, "big"), n.y.to_bytes(32, "big")
    wanted = {c["path"][1] for c in q["claims"]}
    data = {"family_name": "Rossi", "given_name": "Mario", "birth_date": "1980-01-10",
            "tax_id_code": "TINIT-RSSMRA80A10H501W", "birth_place": "Roma"}
    chain = [base64.b64decode(c) for c in inp["x5c"]]
    m.new(data={doctype: {k: v for k, v in data.items() if k in wanted}}, doctype=doctype,
          validity={"issuance_date": "2024-01-01", "expiry_date": "2030-01-01"},
          devicekeyinfo={"KTY": "EC2", "CURVE": "P_256", "X": x, "Y": y}, x509_chain=chain,
          # `revocation` lands in the signed MSO as `status` (pymdoccbor's `status` does not).
          revocation={"status_list": {"idx": inp["status_idx"], "uri": inp["status_uri"]}})
    doc = m.signed["documents"][0]
    enc = jwk.JWK(**req["client_metadata"]["jwks"]["keys"][0])
    nonce = req["nonce"] if scenario != "mdoc_wrong_nonce" else "another-nonce"
    info = cbor2.dumps([req["client_id"], nonce, b64d(enc.thumbprint()), req["response_uri"]])
    st = [None, None, ["OpenID4VPHandover", hashlib.sha256(info).digest()]]
    dns = cbor2.CBORTag(24, cbor2.dumps({}))
    dab = cbor2.dumps(cbor2.CBORTag(24, cbor2.dumps(["DeviceAuthentication", st, doctype, dns])))
    protected = cbor2.dumps({1: -7})
    tbs = cbor2.dumps(["Signature1", protected, b"", dab])
    r, s_ = decode_dss_signature(device.sign(tbs, ec.ECDSA(hashes.SHA256())))
    doc["deviceSigned"] = {"nameSpaces": dns, "deviceAuth": {"deviceSignature": [
        protected, {}, None, r.to_bytes(32, "big") + s_.to_bytes(32, "big")]}}
    return q["id"], b64(cbor2.dumps({"version": "1.0", "documents": [doc], "status": 0}))


def encrypt(req, payload):
    meta = req["client_metadata"]
    k = jwk.JWK(**meta["jwks"]["keys"][0])
    h = {"alg": "ECDH-ES", "enc": meta["encrypted_response_enc_values_supported"][0],
         "kid": k.get("kid")}
    t = jwe.JWE(json.dumps(payload).encode(), protected=json.dumps(h))
    t.add_recipient(k)
    return t.serialize(compact=True)


def post(url, body):
    r = urllib.request.Request(url, data=body.encode(), method="POST",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw[:200].decode(errors="replace")}


def main():
    mode = sys.argv[1]
    inp = json.load(sys.stdin)
    if mode == "status_list":
        print(status_list(inp))
        return
    scenario = inp["scenario"]
    req = fetch_request(inp)
    if req["dcql_query"]["credentials"][0]["format"] == "mso_mdoc":
        cid, p = mdoc_present(req, inp, scenario)
    else:
        cid, p = present(req, inp, scenario)
    answer = {"vp_token": {cid: [p]}, "state": req["state"]}
    asked = [c["id"] for c in req["dcql_query"]["credentials"]]
    if "wallet_attestation" in asked and scenario != "wa_missing":
        answer["vp_token"]["wallet_attestation"] = [wallet_attestation(req, inp, scenario)]
    body = "response=" + urllib.parse.quote(encrypt(req, answer), safe="")
    if scenario == "oversized_body":
        body += "&pad=" + "A" * (400 * 1024)
    response_uri = req["response_uri"]
    if inp.get("response_origin"):
        response_uri = response_uri.replace(inp["public_base"], inp["response_origin"], 1)
    else:
        response_uri = rewrite(response_uri, inp)
    status, out = post(response_uri, body)
    asked = [c["path"][-1] for c in req["dcql_query"]["credentials"][0]["claims"]]
    disclosed = []
    if req["dcql_query"]["credentials"][0]["format"] == "dc+sd-jwt":
        for d in p.split("~")[1:-1]:
            try:
                item = json.loads(b64d(d))
            except ValueError:
                continue
            if isinstance(item, list) and len(item) == 3:
                disclosed.append(item[1])
    print(json.dumps({"status": status, "body": out, "posted": body, "asked": asked,
                      "disclosed": disclosed}))


main()
