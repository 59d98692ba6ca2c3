"""URLs of one test entity: the package's federation endpoints at the root (a Trust
Anchor's Entity Identifier is the bare origin), the OP under /oidc/op and the RP under
/oidc/rp (where the package's JWKS views expect them), and the test control endpoints."""

from django.conf import settings
from django.urls import path

from spid_cie_oidc.entity.urls import urlpatterns as entity_urls
from spid_cie_oidc.entity.views import entity_configuration, resolve_entity_statement

from . import control

urlpatterns = [
    path("__varco_peer__/descendant", control.descendant),
    path("__varco_peer__/user", control.user),
    path("__varco_peer__/trust_marks", control.trust_marks),
    path("__varco_peer__/resolve", control.resolve),
]
urlpatterns += entity_urls

if settings.ROLE == "ta":
    from spid_cie_oidc.authority.urls import urlpatterns as authority_urls

    urlpatterns += authority_urls
elif settings.ROLE in ("spid-op", "cie-op"):
    from spid_cie_oidc.provider.urls import urlpatterns as provider_urls

    urlpatterns += provider_urls
    urlpatterns += [
        path("oidc/op/.well-known/openid-federation", entity_configuration),
        path("oidc/op/resolve", resolve_entity_statement),
    ]
elif settings.ROLE == "rp":
    from spid_cie_oidc.relying_party.urls import urlpatterns as rp_urls

    urlpatterns += rp_urls
    urlpatterns += [path("oidc/rp/.well-known/openid-federation", entity_configuration)]
