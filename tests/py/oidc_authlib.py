"""An OpenID Connect relying party built on Authlib, driven by tests/tests/oidc_op.rs.

Authlib does the client's half independently of Varco: discovery, the authorization URL with
PKCE (S256), state and nonce, the token request with client_secret_basic or
client_secret_post or private_key_jwt, ID token validation against the provider's JWKS
(signature, iss, aud, exp, nonce, at_hash), UserInfo, and Back-Channel Logout token
validation. The browser part (logging in at the demo IdP) is the Rust test's.

  start   ISSUER CLIENT_ID REDIRECT_URI STATEFILE          -> prints the authorization URL
  finish  ISSUER CLIENT_ID AUTH SECRET REDIRECT_URI STATEFILE CALLBACK_URL -> prints JSON
  logout  ISSUER CLIENT_ID LOGOUT_TOKEN EXPECTED_SID       -> prints the token's claims

  keygen  KEYFILE                                          -> writes a private P-256 JWK,
                                                              prints the public JWKS
  assertion KEYFILE CLIENT_ID TOKEN_ENDPOINT                -> prints a client assertion
  refresh ISSUER CLIENT_ID SECRET REFRESH_TOKEN             -> prints the new token JSON

AUTH is client_secret_basic, client_secret_post or private_key_jwt (SECRET is then the file
of the client's private JWK, written by keygen; Authlib signs it without a `kid`).
"""

import base64
import json
import sys
import time
import warnings

warnings.simplefilter("ignore")

import requests  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.jose import JsonWebKey, jwt  # noqa: E402
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def discover(issuer):
    meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == issuer, meta
    return meta


def keys(meta):
    return JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())


def start(issuer, client_id, redirect_uri, statefile, scope="openid profile email"):
    meta = discover(issuer)
    verifier = generate_token(48)
    nonce = generate_token(20)
    session = OAuth2Session(
        client_id,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    url, state = session.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    with open(statefile, "w") as f:
        json.dump({"state": state, "nonce": nonce, "verifier": verifier}, f)
    print(url)


def finish(issuer, client_id, auth, secret, redirect_uri, statefile, callback):
    meta = discover(issuer)
    with open(statefile) as f:
        saved = json.load(f)
    if auth == "private_key_jwt":
        from joserfc.jwk import ECKey

        with open(secret) as f:
            key = ECKey.import_key(json.load(f))
        session = OAuth2Session(
            client_id,
            key,
            token_endpoint_auth_method=PrivateKeyJWT(meta["token_endpoint"], alg="ES256"),
            redirect_uri=redirect_uri,
            state=saved["state"],
        )
    else:
        session = OAuth2Session(
            client_id,
            secret,
            token_endpoint_auth_method=auth,
            redirect_uri=redirect_uri,
            state=saved["state"],
        )
    # RFC 9207: the authorization response names its issuer.
    assert ("iss=" + requests.utils.quote(issuer, safe="")) in callback, callback
    token = session.fetch_token(
        meta["token_endpoint"],
        authorization_response=callback,
        code_verifier=saved["verifier"],
    )
    claims = jwt.decode(
        token["id_token"],
        keys(meta),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer}},
        claims_params={"nonce": saved["nonce"], "client_id": client_id,
                       "access_token": token["access_token"]},
    )
    claims.validate()
    userinfo = session.get(meta["userinfo_endpoint"], timeout=10)
    assert userinfo.status_code == 200, userinfo.text
    print(json.dumps({
        "id_token": dict(claims),
        "userinfo": userinfo.json(),
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token"),
        "id_token_raw": token["id_token"],
    }))


def full_length(jwk):
    """Whether every coordinate is 32 bytes, as RFC 7518 section 6.2.1.2 requires."""
    pad = lambda v: v + "=" * (-len(v) % 4)  # noqa: E731
    return all(len(base64.urlsafe_b64decode(pad(jwk[c]))) == 32 for c in ("x", "y", "d"))


def keygen(keyfile):
    # Authlib's JWK export drops the leading zero bytes of a coordinate (authlib.common.
    # encoding.int_to_base64), so about one key in 85 comes out shorter than RFC 7518
    # requires, and Varco rightly refuses it ("EC coordinate of the wrong length"). Draw
    # again until the export conforms, so the test does not flake on Authlib's slip.
    while True:
        key = JsonWebKey.generate_key("EC", "P-256", is_private=True)
        if full_length(key.as_dict(is_private=True)):
            break
    with open(keyfile, "w") as f:
        json.dump(key.as_dict(is_private=True), f)
    public = key.as_dict(is_private=False)
    public["kid"] = "authlib-1"
    public["alg"] = "ES256"
    print(json.dumps({"keys": [public]}))


def assertion(keyfile, client_id, token_endpoint):
    """One private_key_jwt client assertion, as Authlib's client signs it."""
    from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
    from joserfc.jwk import ECKey

    with open(keyfile) as f:
        key = ECKey.import_key(json.load(f))
    print(private_key_jwt_sign(key, client_id, token_endpoint, alg="ES256"))


def refresh(issuer, client_id, secret, refresh_token):
    meta = discover(issuer)
    session = OAuth2Session(client_id, secret)
    token = session.refresh_token(meta["token_endpoint"], refresh_token=refresh_token)
    print(json.dumps(dict(token)))


def logout(issuer, client_id, token, expected_sid):
    """Back-Channel Logout 1.0 §2.6, every check a relying party makes."""
    meta = discover(issuer)
    header = json.loads(
        __import__("base64").urlsafe_b64decode(token.split(".")[0] + "==")
    )
    assert header.get("typ") == "logout+jwt", header
    claims = jwt.decode(
        token,
        keys(meta),
        claims_options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
            "iat": {"essential": True},
            "exp": {"essential": True},
            "jti": {"essential": True},
        },
    )
    claims.validate(now=int(time.time()))
    assert BACKCHANNEL_EVENT in claims["events"], claims
    assert claims["events"][BACKCHANNEL_EVENT] == {}, claims
    assert "nonce" not in claims, claims
    assert claims.get("sid") == expected_sid, (claims.get("sid"), expected_sid)
    print(json.dumps(dict(claims)))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"start": start, "finish": finish, "logout": logout, "keygen": keygen, "assertion": assertion,
     "refresh": refresh}[cmd](*args)
