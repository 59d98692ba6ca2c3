"""ISO mdoc DeviceResponses for tests/interop_mdoc.rs, made by independent libraries:
pymdoccbor (issuer side: IssuerSignedItems, MSO, COSE_Sign1 issuerAuth via pycose) and
cbor2 + cryptography for the device side (DeviceAuthentication over the OpenID4VP 1.0
session transcript, ES256). Prints one JSON object (binary fields hex): the issuer's
public key, the request values, and one scenario per case with the expected code."""

import datetime
import hashlib
import json
import sys

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pymdoccbor.mdoc.issuer import MdocCborIssuer

CLIENT_ID = "x509_hash:Uvo3HtuIxuhC92rShpgqcT3YXwrqRxWEviRiA0OZszk"
NONCE = "n-mdoc-1"
RESPONSE_URI = "https://varco.example.it/wallet/response"
THUMBPRINT = hashlib.sha256(b"our encryption key").digest()
DOCTYPE = "eu.europa.ec.eudi.pid.1"
NS = "eu.europa.ec.eudi.pid.1"


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def cose_private(k, kid):
    n = k.private_numbers()
    return {"KTY": "EC2", "CURVE": "P_256", "ALG": "ES256", "D": n.private_value.to_bytes(32, "big"), "KID": kid}


def point(k):
    n = k.public_key().public_numbers()
    return n.x.to_bytes(32, "big"), n.y.to_bytes(32, "big")


issuer = ec_key()
attacker = ec_key()
device = ec_key()
other_device = ec_key()
now = datetime.datetime.now(datetime.timezone.utc)
CERT = {"country_name": "IT", "state_or_province_name": "RM", "locality_name": "Roma",
        "organization_name": "PID Provider", "common_name": "pid.example.it",
        "san_url": "https://pid.example.it",
        "not_valid_before": now - datetime.timedelta(days=1),
        "not_valid_after": now + datetime.timedelta(days=30)}
DATA = {NS: {"family_name": "Rossi", "given_name": "Mario", "birth_date": "1980-01-10",
             "tax_id_code": "TINIT-RSSMRA80A10H501U", "birth_place": "Roma",
             "nationality": ["IT"], "age_over_18": True}}


def issue(key=issuer, dev=device, doctype=DOCTYPE, expiry="2030-01-01", data=DATA):
    x, y = point(dev)
    m = MdocCborIssuer(private_key=cose_private(key, b"ds-1"), alg="ES256", cert_info=CERT)
    m.new(data=data, doctype=doctype, validity={"issuance_date": "2024-01-01", "expiry_date": expiry},
          devicekeyinfo={"KTY": "EC2", "CURVE": "P_256", "X": x, "Y": y})
    return m.signed


def transcript(client_id=CLIENT_ID, nonce=NONCE, thumb=THUMBPRINT, uri=RESPONSE_URI):
    info = cbor2.dumps([client_id, nonce, thumb, uri])
    return [None, None, ["OpenID4VPHandover", hashlib.sha256(info).digest()]]


def es256(key, data):
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def device_sign(doc, key=device, st=None, doctype=None, alg=-7):
    dns = cbor2.CBORTag(24, cbor2.dumps({}))
    da = ["DeviceAuthentication", st or transcript(), doctype or doc["docType"], dns]
    dab = cbor2.dumps(cbor2.CBORTag(24, cbor2.dumps(da)))
    protected = cbor2.dumps({1: alg})
    sig_structure = cbor2.dumps(["Signature1", protected, b"", dab])
    doc["deviceSigned"] = {"nameSpaces": dns,
                           "deviceAuth": {"deviceSignature": [protected, {}, None, es256(key, sig_structure)]}}
    return doc


def response(signed, **dev):
    doc = signed["documents"][0]
    device_sign(doc, **dev)
    return cbor2.dumps({"version": "1.0", "documents": [doc], "status": 0})


def mutate(signed, fn):
    doc = signed["documents"][0]
    fn(doc)
    return signed


S = {}
S["ok"] = (response(issue()), "ok")
S["forged_issuer_signature"] = (response(issue(key=attacker)), "mdoc.issuer_signature")


def tamper_item(doc):
    items = doc["issuerSigned"]["nameSpaces"][NS]
    inner = cbor2.loads(items[0].value)
    inner["elementValue"] = "Bianchi" if isinstance(inner["elementValue"], str) else False
    items[0] = cbor2.CBORTag(24, cbor2.dumps(inner))


S["tampered_element"] = (response(mutate(issue(), tamper_item)), "mdoc.digest")


def add_foreign(doc):
    other = issue()["documents"][0]["issuerSigned"]["nameSpaces"][NS][0]
    doc["issuerSigned"]["nameSpaces"][NS].append(other)


S["foreign_element"] = (response(mutate(issue(), add_foreign)), "mdoc.digest")


def dup_item(doc):
    items = doc["issuerSigned"]["nameSpaces"][NS]
    items.append(items[0])


S["duplicate_element"] = (response(mutate(issue(), dup_item)), "mdoc.duplicate")
S["expired"] = (response(issue(expiry="2025-01-01")), "mdoc.expired")
S["device_signature_other_key"] = (response(issue(), key=other_device), "mdoc.device_signature")
S["device_signature_other_nonce"] = (response(issue(), st=transcript(nonce="old-nonce")), "mdoc.device_signature")
S["device_signature_other_client"] = (response(issue(), st=transcript(client_id="x509_hash:other")), "mdoc.device_signature")
S["device_signature_other_doctype"] = (response(issue(), doctype="org.iso.18013.5.1.mDL"), "mdoc.device_signature")
S["device_alg_unsupported"] = (response(issue(), alg=-8), "mdoc.alg")
S["doctype_mismatch"] = (response(mutate(issue(), lambda d: d.update(docType="org.iso.18013.5.1.mDL"))), "mdoc.doctype")


def device_mac(doc):
    doc["deviceSigned"]["deviceAuth"] = {"deviceMac": [b"", {}, None, b"x"]}


def mac_resp():
    signed = issue()
    doc = signed["documents"][0]
    device_sign(doc)
    device_mac(doc)
    return cbor2.dumps({"version": "1.0", "documents": [doc], "status": 0})


S["device_mac_refused"] = (mac_resp(), "mdoc.structure")
S["not_cbor"] = (b"\xff\x00garbage", "mdoc.cbor")
S["indefinite_length"] = (b"\xbf\x67version\x631.0\xff", "mdoc.cbor")
S["duplicate_map_key"] = (b"\xa2\x67version\x631.0\x67version\x631.0", "mdoc.cbor")
S["deep_nesting"] = (b"\x81" * 200 + b"\x00", "mdoc.cbor")
S["trailing_bytes"] = (response(issue()) + b"\x00", "mdoc.cbor")
S["too_large"] = (b"\x00" * (600 * 1024), "mdoc.too_large")

x, y = point(issuer)
print(json.dumps({
    "issuer_point": (b"\x04" + x + y).hex(),
    "now": int(now.timestamp()),
    "client_id": CLIENT_ID, "nonce": NONCE, "response_uri": RESPONSE_URI, "thumbprint": THUMBPRINT.hex(),
    "scenarios": {k: {"cbor": v.hex(), "expect": e} for k, (v, e) in S.items()},
}))
