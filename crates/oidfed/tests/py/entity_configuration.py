"""Independent checks of Varco's Entity Configuration with PyJWT.

  entity_configuration.py rsa-key           prints a new RSA 2048 private key, PKCS#8 DER, hex
  entity_configuration.py verify TOKEN ALG  verifies TOKEN with the key its own jwks names
                                            (self-signed, as an Entity Configuration is) and
                                            prints {"header": ..., "claims": ...}
"""
import json, sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

if sys.argv[1] == "rsa-key":
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    print(der.hex())
elif sys.argv[1] == "verify":
    token, alg = sys.argv[2], sys.argv[3]
    header = jwt.get_unverified_header(token)
    unverified = jwt.decode(token, options={"verify_signature": False})
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(unverified["jwks"]).keys}
    claims = jwt.decode(token, key=keys[header["kid"]], algorithms=[alg],
                        options={"verify_exp": False, "verify_iat": False,
                                 "require": ["iss", "sub", "iat", "exp"]})
    print(json.dumps({"header": header, "claims": claims}))
