"""Builds a test federation with PyJWT (an independent JOSE implementation) and prints it.

Usage: federation.py NOW
Output (stdout): JSON {"scenarios": {name: {"anchor": {...}, "subject": ..., "docs": {url:
body}, "expect": "ok" | error code, "trust_marks": ...}}}.

Three entities (Trust Anchor, Intermediate, Relying Party) with fresh keys each run: RSA
2048 / RS256 for the anchor, EC P-256 / ES256 for the intermediate, RSA 2048 / PS256 for the
relying party. The metadata policies and the relying party's metadata are the worked
example of OpenID Federation 1.0, section "Metadata Policy Example". Each scenario other
than "ok" breaks exactly one thing.
"""
import base64, copy, hashlib, hmac, json, sys
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

NOW = int(sys.argv[1])
TA, INT, RP = "https://ta.example.org", "https://int.example.org", "https://rp.example.org"
TM_RP = "https://registry.example.org/openid_relying_party/public/"
TM_INT = "https://registry.example.org/intermediate/public/"
TM_UNLISTED = "https://registry.example.org/not-listed/"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    def __init__(self, kind, alg, kid):
        self.alg, self.kid = alg, kid
        if kind == "rsa":
            self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = RSAAlgorithm.to_jwk(self.priv.public_key(), as_dict=True)
        else:
            self.priv = ec.generate_private_key(ec.SECP256R1())
            self.jwk = ECAlgorithm.to_jwk(self.priv.public_key(), as_dict=True)
        self.jwk["kid"] = kid

    def jwks(self):
        return {"keys": [self.jwk]}

    def sign(self, claims, typ="entity-statement+jwt", kid=None, alg=None):
        headers = {"typ": typ, "kid": kid or self.kid}
        return jwt.encode(claims, self.priv, algorithm=alg or self.alg, headers=headers)


def ec_url(entity):
    return entity + "/.well-known/openid-federation"


def fetch_url(issuer, sub):
    return issuer + "/fetch?" + urlencode({"sub": sub})


def hand_made(header, claims, sig=b"", secret=None):
    """A JWS assembled by hand, for what PyJWT rightly refuses to produce."""
    h = b64(json.dumps(header).encode())
    p = b64(json.dumps(claims).encode())
    if secret is not None:
        sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


ta, intk, rp = Key("rsa", "RS256", "ta-1"), Key("ec", "ES256", "int-1"), Key("rsa", "PS256", "rp-1")
evil_rsa, evil_ec = Key("rsa", "RS256", "ta-1"), Key("ec", "ES256", "int-1")

TA_POLICY = {
    "openid_relying_party": {
        "grant_types": {
            "default": ["authorization_code"],
            "subset_of": ["authorization_code", "refresh_token"],
            "superset_of": ["authorization_code"],
        },
        "token_endpoint_auth_method": {
            "one_of": ["private_key_jwt", "self_signed_tls_client_auth"],
            "essential": True,
        },
        "token_endpoint_auth_signing_alg": {"one_of": ["PS256", "ES256"]},
        "subject_type": {"value": "pairwise"},
        "contacts": {"add": ["helpdesk@federation.example.org"]},
    }
}
INT_POLICY = {
    "openid_relying_party": {
        "grant_types": {"subset_of": ["authorization_code"]},
        "token_endpoint_auth_method": {"one_of": ["self_signed_tls_client_auth"]},
        "contacts": {"add": ["helpdesk@org.example.org"]},
    }
}
INT_METADATA = {
    "openid_relying_party": {
        "sector_identifier_uri": "https://org.example.org/sector-ids.json",
        "policy_uri": "https://org.example.org/policy.html",
    }
}
RP_METADATA = {
    "openid_relying_party": {
        "redirect_uris": ["https://rp.example.org/callback"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "self_signed_tls_client_auth",
        "contacts": ["rp_admins@rp.example.org"],
    },
    "federation_entity": {"organization_name": "RP Example"},
}


def times(exp=3600):
    return {"iat": NOW - 60, "exp": NOW + exp}


def trust_mark(key, iss, tm_type, sub=RP, use_id=False, exp=86400, typ="trust-mark+jwt",
               extra=None):
    claims = {"iss": iss, "sub": sub, **times(exp or 0)}
    if exp is None:
        del claims["exp"]
    claims["id" if use_id else "trust_mark_type"] = tm_type
    claims.update(extra or {})
    return key.sign(claims, typ=typ)


def build(m=None):
    """The federation's documents; `m` overrides parts of it (one break per scenario)."""
    m = m or {}
    ta_claims = {
        "iss": TA, "sub": TA, **times(), "jwks": ta.jwks(),
        "metadata": {"federation_entity": {"federation_fetch_endpoint": TA + "/fetch",
                                           "organization_name": "Trust Anchor"}},
        "trust_mark_issuers": {TM_RP: [TA], TM_INT: [INT]},
    }
    int_claims = {
        "iss": INT, "sub": INT, **times(), "jwks": m.get("int_ec_key", intk).jwks(),
        "authority_hints": [TA],
        "metadata": {"federation_entity": {"federation_fetch_endpoint": INT + "/fetch"}},
    }
    ta_about_int = {"iss": TA, "sub": INT, **times(m.get("ta_int_exp", 3600)),
                    "jwks": intk.jwks(), "metadata_policy": m.get("ta_policy", TA_POLICY)}
    ta_about_int.update(m.get("ta_int_extra", {}))
    int_about_rp = {"iss": INT, "sub": m.get("int_rp_sub", RP),
                    **times(m.get("int_rp_exp", 3600)), "jwks": rp.jwks(),
                    "metadata_policy": m.get("int_policy", INT_POLICY),
                    "metadata": INT_METADATA}
    int_about_rp.update(m.get("int_rp_extra", {}))
    marks = m.get("trust_marks", [
        {"trust_mark_type": TM_RP, "trust_mark": trust_mark(ta, TA, TM_RP)},
        {"id": TM_INT, "trust_mark": trust_mark(intk, INT, TM_INT, use_id=True)},
    ])
    rp_claims = {"iss": RP, "sub": RP, **times(), "jwks": rp.jwks(),
                 "authority_hints": [INT], "metadata": m.get("rp_metadata", RP_METADATA),
                 "trust_marks": marks}
    ta_signer = m.get("ta_signer", ta)
    docs = {
        ec_url(TA): ta_signer.sign(ta_claims),
        ec_url(INT): m.get("int_ec_signer", intk).sign(int_claims),
        fetch_url(TA, INT): ta_signer.sign(ta_about_int),
        fetch_url(INT, RP): m.get("int_rp_signer", intk).sign(
            int_about_rp, kid=m.get("int_rp_kid")),
        ec_url(RP): m.get("rp_ec", None) or rp.sign(rp_claims),
    }
    return docs, rp_claims


def scenario(expect, m=None):
    docs, _ = build(m)
    return {"anchor": {"entity_id": TA, "jwks": ta.jwks()}, "subject": RP,
            "docs": docs, "expect": expect}


_, rp_claims = build()
rp_header = {"alg": "PS256", "kid": "rp-1", "typ": "entity-statement+jwt"}
rp_pem = rp.priv.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
bad_rp_meta = copy.deepcopy(RP_METADATA)
bad_rp_meta["openid_relying_party"]["token_endpoint_auth_method"] = "client_secret_basic"

scenarios = {
    "ok": scenario("ok"),
    "wrong_trust_anchor": scenario("oidfed.trust_anchor_keys", {"ta_signer": evil_rsa}),
    "expired_statement": scenario("oidfed.expired", {"int_rp_exp": -120}),
    "bad_hop_signature": scenario("jose.signature", {"int_rp_signer": evil_ec}),
    "intermediate_key_not_vouched": scenario(
        "jose.signature", {"int_ec_key": evil_ec, "int_ec_signer": evil_ec,
                           "int_rp_signer": evil_ec}),
    "sub_mismatch": scenario("oidfed.iss_sub_mismatch",
                             {"int_rp_sub": "https://other.example.org"}),
    "unknown_kid": scenario("jose.kid_unknown", {"int_rp_kid": "int-2"}),
    "policy_violation": scenario("oidfed.policy_violation", {"rp_metadata": bad_rp_meta}),
    "policy_conflict": scenario("oidfed.policy", {"int_policy": {
        "openid_relying_party": {"subject_type": {"value": "public"}}}}),
    "policy_crit": scenario("oidfed.policy_crit", {
        "int_policy": {"openid_relying_party": {"contacts": {"regexp": ".*"}}},
        "int_rp_extra": {"metadata_policy_crit": ["regexp"]}}),
    "max_path_length": scenario("oidfed.constraint", {
        "ta_int_extra": {"constraints": {"max_path_length": 0}}}),
    "naming_constraints": scenario("oidfed.constraint", {
        "ta_int_extra": {"constraints": {"naming_constraints": {
            "excluded": ["rp.example.org"]}}}}),
    "alg_none": scenario("jose.alg_none", {"rp_ec": hand_made(
        {"alg": "none", "kid": "rp-1", "typ": "entity-statement+jwt"}, rp_claims)}),
    "hs256_public_key_as_secret": scenario("jose.alg_hmac", {"rp_ec": hand_made(
        {"alg": "HS256", "kid": "rp-1", "typ": "entity-statement+jwt"}, rp_claims,
        secret=rp_pem)}),
    "missing_kid": scenario("jose.kid_missing", {"rp_ec": hand_made(
        {"alg": "PS256", "typ": "entity-statement+jwt"}, rp_claims, sig=b"x" * 256)}),
    "wrong_typ": scenario("jose.typ", {"rp_ec": rp.sign(rp_claims, typ="JWT")}),
    # What spid-cie-oidc 1.6.3 (the SPID/CIE reference implementation) puts in the
    # statements its Trust Anchor issues: the subject's trust marks (which OpenID Federation
    # 1.0 allows in Entity Configurations only), `source_endpoint`, `aud`, and `x5c` in the
    # subject's JWK. Accepted: the extra members are ignored, never used.
    "reference_implementation_shapes": scenario("ok", {
        "ta_int_extra": {"trust_marks": [{"trust_mark_type": TM_INT, "trust_mark_id": TM_INT,
                                           "trust_mark": "x.y.z"}],
                         "source_endpoint": TA + "/fetch", "aud": [RP]},
        "int_rp_extra": {"trust_marks": [], "source_endpoint": INT + "/fetch"}}),
    "duplicate_alg_member": scenario("jose.json_duplicate_key", {"rp_ec": (
        b64(b'{"alg":"PS256","kid":"rp-1","typ":"entity-statement+jwt","alg":"none"}')
        + "." + b64(json.dumps(rp_claims).encode()) + "." + b64(b"x"))}),
}

# Trust marks, checked against the "ok" chain: each entry is (JWT, expected result).
trust_marks = {
    "by_anchor": [trust_mark(ta, TA, TM_RP), "ok"],
    "by_intermediate_with_id": [trust_mark(intk, INT, TM_INT, use_id=True), "ok"],
    "unregistered_type": [trust_mark(ta, TA, TM_UNLISTED), "oidfed.trust_mark_issuer"],
    "issuer_not_accredited": [trust_mark(intk, INT, TM_RP), "oidfed.trust_mark_issuer"],
    "other_subject": [trust_mark(ta, TA, TM_RP, sub="https://other.example.org"),
                      "oidfed.trust_mark"],
    "expired": [trust_mark(ta, TA, TM_RP, exp=-120), "oidfed.trust_mark"],
    "forged_signature": [trust_mark(evil_rsa, TA, TM_RP), "jose.signature"],
    "wrong_typ": [trust_mark(ta, TA, TM_RP, typ="entity-statement+jwt"), "jose.typ"],
    # spid-cie-oidc 1.6.3 issues marks without exp, with trust_mark_id beside trust_mark_type.
    "without_exp": [trust_mark(ta, TA, TM_RP, exp=None, extra={"trust_mark_id": TM_RP}),
                    "oidfed.trust_mark"],
    "type_names_disagree": [trust_mark(ta, TA, TM_RP, extra={"trust_mark_id": TM_INT}),
                            "oidfed.claim"],
}

json.dump({"scenarios": scenarios, "trust_marks": trust_marks}, sys.stdout)
