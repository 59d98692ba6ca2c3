"""Tokens in every JWS algorithm, signed by PyJWT (with `cryptography`), for jose's allow-list.

Usage: algs.py. Prints {"jwks": {...}, "tokens": {alg: token}}: one key per algorithm family
(RSA 2048, EC P-256, EC P-384, EC P-521), kid = the algorithm name, typ entity-statement+jwt.
"""
import json

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
curves = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
claims = {"iss": "https://a.example", "sub": "https://a.example", "n": 1}
keys, tokens = [], {}
for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]:
    if alg.startswith("ES"):
        priv = ec.generate_private_key(curves[alg])
        jwk = ECAlgorithm.to_jwk(priv.public_key(), as_dict=True)
    else:
        priv = rsa_key
        jwk = RSAAlgorithm.to_jwk(priv.public_key(), as_dict=True)
    jwk["kid"] = alg
    keys.append(jwk)
    tokens[alg] = jwt.encode(claims, priv, algorithm=alg,
                             headers={"kid": alg, "typ": "entity-statement+jwt"})
print(json.dumps({"jwks": {"keys": keys}, "tokens": tokens}))
