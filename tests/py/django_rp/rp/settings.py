"""Settings of the test relying party: the library's documented configuration, nothing
Varco-specific but the endpoint URLs and the client registration."""

import json
import os

# The test writes the registration to a file and names it first on manage.py's command line.
with open(os.environ["VARCO_RP_CONFIG"]) as f:
    RP = json.load(f)
ISSUER = RP["issuer"]

SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "mozilla_django_oidc",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "rp.urls"
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": RP["db"]}
}
USE_TZ = True
AUTHENTICATION_BACKENDS = ["mozilla_django_oidc.auth.OIDCAuthenticationBackend"]
LOGIN_REDIRECT_URL = "/me"
LOGIN_REDIRECT_URL_FAILURE = "/failed"

OIDC_RP_CLIENT_ID = RP["client_id"]
OIDC_RP_CLIENT_SECRET = RP["client_secret"]
OIDC_OP_AUTHORIZATION_ENDPOINT = ISSUER + "/oidc/authorize"
OIDC_OP_TOKEN_ENDPOINT = ISSUER + "/oidc/token"
OIDC_OP_USER_ENDPOINT = ISSUER + "/oidc/userinfo"
OIDC_OP_JWKS_ENDPOINT = ISSUER + "/oidc/jwks"
OIDC_RP_SIGN_ALGO = "ES256"
OIDC_RP_SCOPES = "openid email profile"
OIDC_USE_PKCE = True
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"mozilla_django_oidc": {"handlers": ["console"], "level": "DEBUG"}},
}
