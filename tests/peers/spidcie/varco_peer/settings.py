"""Django settings for one spid-cie-oidc entity started by the tests.

The same project plays every role; `serve.py` sets the environment before Django reads this:

- VARCO_PEER_ROLE: `ta` (Trust Anchor), `spid-op`, `cie-op` or `rp` (the reference RP);
- VARCO_PEER_DB: the SQLite file of this instance (one per process: the package keeps a
  single "own" configuration per role in its tables);
- VARCO_PEER_TA: the Trust Anchor's Entity Identifier (every role but `ta`);
- VARCO_PEER_OPS: for `rp`, space-separated `profile=entity_id` pairs (`spid=http://...`);
- VARCO_PEER_REQUIRED_TRUST_MARKS: space-separated trust mark types an OP demands of RPs.

Everything a production deployment would care about (secret key, debug pages, hosts) is set
for a throwaway loopback process, never for a server anyone else reaches.
"""

import os

import aiohttp

ROLE = os.environ.get("VARCO_PEER_ROLE", "ta")
TRUST_ANCHOR = os.environ.get("VARCO_PEER_TA", "")

# A fresh process per test run, on 127.0.0.1 only: the key only signs its own session cookies.
SECRET_KEY = os.environ.get("VARCO_PEER_SECRET", "varco-test-peer-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
APPEND_SLASH = False

# The same apps in every role, so one migrated database file serves as the template for all.
INSTALLED_APPS = [
    "spid_cie_oidc.accounts",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "spid_cie_oidc.entity",
    "spid_cie_oidc.authority",
    "spid_cie_oidc.provider",
    "spid_cie_oidc.relying_party",
    "varco_peer",
]
AUTH_USER_MODEL = "spid_cie_oidc_accounts.User"

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "varco_peer.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
STATIC_URL = "static/"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("VARCO_PEER_DB", ":memory:"),
        # Requests are served by several threads; SQLite serializes writers, wait instead of
        # failing with "database is locked".
        "OPTIONS": {"timeout": 30},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Federation: one Trust Anchor, plain HTTP on loopback, short fetch timeouts.
OIDCFED_DEFAULT_TRUST_ANCHOR = TRUST_ANCHOR
OIDCFED_TRUST_ANCHORS = [TRUST_ANCHOR] if TRUST_ANCHOR else []
OIDCFED_REQUIRED_TRUST_MARKS = os.environ.get("VARCO_PEER_REQUIRED_TRUST_MARKS", "").split()
HTTPC_TIMEOUT = 8
HTTPC_PARAMS = {
    "connection": {"ssl": True},
    "session": {"timeout": aiohttp.ClientTimeout(total=HTTPC_TIMEOUT)},
}

# OP profile: what schemas the authorization request and the metadata follow.
OIDCFED_PROVIDER_PROFILE = "cie" if ROLE == "cie-op" else "spid"
OIDCFED_PROVIDER_SALT = "varco-test-peer"

# Reference RP: the OPs it offers, by profile.
OIDCFED_IDENTITY_PROVIDERS = {"spid": {}, "cie": {}}
for pair in os.environ.get("VARCO_PEER_OPS", "").split():
    profile, _, entity_id = pair.partition("=")
    OIDCFED_IDENTITY_PROVIDERS.setdefault(profile, {})[entity_id] = entity_id
RP_DEFAULT_PROVIDER_PROFILES = "spid"
LOGIN_URL = "/oidc/rp/landing"
LOGIN_REDIRECT_URL = "/oidc/rp/echo_attributes"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "spid_cie_oidc": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "varco_peer": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
