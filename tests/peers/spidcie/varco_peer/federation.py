"""The entities a test federation needs, made with the package's own models.

One function per role writes this process's own Entity Configuration (the row the package
signs and serves at `/.well-known/openid-federation`); `onboard` is what a Trust Anchor's
operator does in the admin pages when an entity joins (a descendant, its keys, its profile,
hence a trust mark); `add_user` is an OP's test user.
"""

import logging
import urllib.request

from django.contrib.auth import get_user_model
from django.db import transaction
from spid_cie_oidc.authority.models import (
    FederationDescendant,
    FederationEntityAssignedProfile,
    FederationEntityProfile,
)
from spid_cie_oidc.entity.jwks import create_jwk, public_jwk_from_private_jwk
from spid_cie_oidc.entity.jwtse import unpad_jwt_head, unpad_jwt_payload, verify_jws
from spid_cie_oidc.entity.models import FederationEntityConfiguration

log = logging.getLogger("varco_peer")

# Signature algorithms the test OPs offer: the ones both sides implement (Varco's jose crate
# has no ES384/ES512, the package no PS*).
SIGNING_ALGS = ["RS256", "RS512", "ES256"]
ENC_ALGS = ["RSA-OAEP", "RSA-OAEP-256"]
ENC_ENCS = ["A128CBC-HS256", "A256CBC-HS512", "A128GCM", "A256GCM"]
SPID_ACRS = [
    "https://www.spid.gov.it/SpidL1",
    "https://www.spid.gov.it/SpidL2",
    "https://www.spid.gov.it/SpidL3",
]


def profile_id(ta: str, entity_type: str) -> str:
    """The trust mark type this Trust Anchor gives every onboarded entity of a type."""
    return f"{ta}/{entity_type}/public"


def _public(private_jwks: list) -> list:
    out = []
    for k in private_jwks:
        pub = public_jwk_from_private_jwk(k)
        if "use" in k:
            pub["use"] = k["use"]
        out.append(pub)
    return out


def _federation_entity(base: str, name: str) -> dict:
    return {
        "organization_name": name,
        "homepage_uri": base,
        "policy_uri": f"{base}/policy",
        "logo_uri": f"{base}/static/logo.svg",
        "contacts": ["ops@example.invalid"],
    }


def _own(sub: str, entity_type: str, authority_hints: list, metadata: dict, **extra):
    """Replaces this process's configuration: fresh keys on every start."""
    with transaction.atomic():
        FederationEntityConfiguration.objects.all().delete()
        jwks_fed = [create_jwk()]
        # The package picks core keys by `use` (and reads `use` on every key: a key without
        # it is a KeyError): signatures with the first, UserInfo encryption with "enc".
        jwks_core = [dict(create_jwk(), use="sig"), dict(create_jwk(), use="enc")]
        for kind, entry in metadata.items():
            if kind != "federation_entity" and "jwks" in entry:
                entry["jwks"] = {"keys": _public(jwks_core)}
        conf = FederationEntityConfiguration.objects.create(
            sub=sub,
            entity_type=entity_type,
            authority_hints=authority_hints,
            jwks_fed=jwks_fed,
            jwks_core=jwks_core,
            metadata=metadata,
            is_active=True,
            **extra,
        )
    return conf


def setup_trust_anchor(ta: str) -> None:
    fe = _federation_entity(ta, "Varco test Trust Anchor")
    fe.update(
        {
            "federation_fetch_endpoint": f"{ta}/fetch",
            "federation_list_endpoint": f"{ta}/list",
            "federation_resolve_endpoint": f"{ta}/resolve",
            "federation_trust_mark_status_endpoint": f"{ta}/trust_mark_status",
        }
    )
    types = ("openid_relying_party", "openid_provider")
    conf = _own(
        ta,
        "federation_entity",
        [],
        {"federation_entity": fe},
        # The anchor issues every trust mark itself.
        trust_mark_issuers={profile_id(ta, t): [ta] for t in types},
        constraints={"max_path_length": 1},
    )
    FederationEntityProfile.objects.all().delete()
    for t in types:
        FederationEntityProfile.objects.create(
            name=f"{t} public"[:33],
            profile_category=t,
            profile_id=profile_id(ta, t),
            trust_mark_template={"organization_type": "public"},
        )
    log.info("trust anchor %s ready (kid %s)", conf.sub, conf.kids)


def setup_provider(op: str, ta: str, profile: str) -> None:
    base = op.rsplit("/oidc/op", 1)[0]
    name = f"Varco test {profile.upper()} OP"
    md = {
        "organization_name": name,
        "issuer": op,
        "authorization_endpoint": f"{op}/authorization",
        "token_endpoint": f"{op}/token",
        "userinfo_endpoint": f"{op}/userinfo",
        "introspection_endpoint": f"{op}/introspection",
        "revocation_endpoint": f"{op}/revocation",
        "jwks_uri": f"{op}/openid_provider/jwks.json",
        "signed_jwks_uri": f"{op}/openid_provider/jwks.jose",
        "jwks": {},
        "scopes_supported": ["openid", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "acr_values_supported": SPID_ACRS,
        "subject_types_supported": ["pairwise", "public"],
        "claims_supported": [
            "given_name",
            "family_name",
            "email",
            "email_verified",
            "birthdate",
            "https://attributes.eid.gov.it/fiscal_number",
        ],
        "claims_parameter_supported": True,
        "request_parameter_supported": True,
        "code_challenge_methods_supported": ["S256"],
        "client_registration_types_supported": ["automatic"],
        "request_authentication_methods_supported": {"ar": ["request_object"]},
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "id_token_signing_alg_values_supported": SIGNING_ALGS,
        "userinfo_signing_alg_values_supported": SIGNING_ALGS,
        "request_object_signing_alg_values_supported": SIGNING_ALGS,
        "id_token_encryption_alg_values_supported": ENC_ALGS,
        "id_token_encryption_enc_values_supported": ENC_ENCS,
        "userinfo_encryption_alg_values_supported": ENC_ALGS,
        "userinfo_encryption_enc_values_supported": ENC_ENCS,
        "request_object_encryption_alg_values_supported": ENC_ALGS,
        "request_object_encryption_enc_values_supported": ENC_ENCS,
        "authorization_response_iss_parameter_supported": True,
    }
    if profile == "cie":
        md["tls_client_certificate_bound_access_tokens"] = False
    fe = _federation_entity(base, name)
    fe["federation_resolve_endpoint"] = f"{op}/resolve"
    conf = _own(op, "openid_provider", [ta], {"federation_entity": fe, "openid_provider": md})
    log.info("%s OP %s ready (kid %s)", profile, conf.sub, conf.kids)


def setup_relying_party(rp: str, ta: str) -> None:
    base = rp.rsplit("/oidc/rp", 1)[0]
    md = {
        "application_type": "web",
        "organization_name": "Varco test reference RP",
        "client_id": rp,
        "client_name": "Varco test reference RP",
        "client_registration_types": ["automatic"],
        "contacts": ["ops@example.invalid"],
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [f"{rp}/callback"],
        "response_types": ["code"],
        "subject_type": "pairwise",
        "id_token_signed_response_alg": "RS256",
        "userinfo_signed_response_alg": "RS256",
        "userinfo_encrypted_response_alg": "RSA-OAEP",
        "userinfo_encrypted_response_enc": "A128CBC-HS256",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {},
    }
    fe = _federation_entity(base, "Varco test reference RP")
    conf = _own(rp, "openid_relying_party", [ta], {"federation_entity": fe, "openid_relying_party": md})
    log.info("RP %s ready (kid %s)", conf.sub, conf.kids)


def _entity_configuration_keys(sub: str) -> list:
    """The Federation Entity Keys an entity publishes, from its self-signed configuration
    (checked with those very keys: what an operator copies from a joining entity)."""
    url = f"{sub.rstrip('/')}/.well-known/openid-federation"
    with urllib.request.urlopen(url, timeout=8) as r:  # noqa: S310 (loopback test URLs)
        jwt = r.read().decode()
    head, payload = unpad_jwt_head(jwt), unpad_jwt_payload(jwt)
    if payload.get("iss") != sub or payload.get("sub") != sub:
        raise ValueError(f"{url}: iss/sub are not {sub}")
    keys = payload.get("jwks", {}).get("keys", [])
    signer = next((k for k in keys if k.get("kid") == head.get("kid")), None)
    if signer is None:
        raise ValueError(f"{url}: no key {head.get('kid')!r} in its jwks")
    verify_jws(jwt, signer)
    return keys


def onboard(ta: str, sub: str, entity_type: str, jwks=None, metadata_policy=None) -> dict:
    """Registers `sub` as a subordinate of this Trust Anchor, with one trust mark."""
    if jwks is None:
        jwks = _entity_configuration_keys(sub)
    elif isinstance(jwks, dict):
        jwks = jwks.get("keys", [])
    # Public parts only, whatever the caller sent.
    jwks = _public(jwks)
    issuer = FederationEntityConfiguration.objects.get(sub=ta, is_active=True)
    with transaction.atomic():
        FederationDescendant.objects.filter(sub=sub).delete()
        desc = FederationDescendant.objects.create(
            sub=sub,
            name=sub[-33:],
            type=entity_type,
            jwks=jwks,
            metadata_policy=metadata_policy or {},
            is_active=True,
        )
        profile = FederationEntityProfile.objects.get(profile_id=profile_id(ta, entity_type))
        FederationEntityAssignedProfile.objects.create(descendant=desc, profile=profile, issuer=issuer)
    return {
        "trust_marks": [
            {"trust_mark_type": m["trust_mark_type"], "trust_mark": m["trust_mark"]}
            for m in desc.trust_marks
        ],
        "statement": desc.entity_statement_as_jws(ta),
    }


def add_user(username: str, password: str, attributes: dict, **fields) -> None:
    User = get_user_model()
    User.objects.filter(username=username).delete()
    user = User.objects.create_user(username=username, password=password, **fields)
    user.attributes = attributes
    user.save()
