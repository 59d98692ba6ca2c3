"""Test-only control endpoints: what an operator would do in the admin pages, as JSON POSTs
from the test harness (crates/testkit/src/spidcie.rs).

Bound to 127.0.0.1 like the rest of the process, and each request must carry the random
token the harness passed at start (`Authorization: Bearer ...`), so another test's process
on the same machine cannot onboard entities into this federation by mistake.
"""

import hmac
import json
import logging
import os

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import federation

log = logging.getLogger("varco_peer")


def _authorized(request) -> bool:
    want = os.environ.get("VARCO_PEER_TOKEN", "")
    got = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return bool(want) and hmac.compare_digest(want.encode(), got.encode())


def _control(handler):
    @csrf_exempt
    @require_POST
    def view(request):
        if not _authorized(request):
            return HttpResponse(status=401)
        try:
            body = json.loads(request.body or b"{}")
            return JsonResponse(handler(body) or {})
        except Exception as e:  # the harness prints the message with the test's failure
            log.exception("control request failed")
            return JsonResponse({"error": f"{type(e).__name__}: {e}"}, status=400)

    return view


@_control
def descendant(body):
    if settings.ROLE != "ta":
        raise ValueError("only a Trust Anchor onboards entities")
    return federation.onboard(
        os.environ["VARCO_PEER_ENTITY_ID"],
        body["sub"],
        body.get("type", "openid_relying_party"),
        jwks=body.get("jwks"),
        metadata_policy=body.get("metadata_policy"),
    )


@_control
def user(body):
    if settings.ROLE not in ("spid-op", "cie-op"):
        raise ValueError("only an OP has users")
    federation.add_user(
        body["username"],
        body["password"],
        body.get("attributes", {}),
        first_name=body.get("attributes", {}).get("given_name"),
        last_name=body.get("attributes", {}).get("family_name"),
        email=body.get("attributes", {}).get("email"),
    )
    return {}


@_control
def trust_marks(body):
    """The trust marks the anchor issued to this entity, into its own configuration."""
    from spid_cie_oidc.entity.models import FederationEntityConfiguration

    conf = FederationEntityConfiguration.objects.get(
        sub=os.environ["VARCO_PEER_ENTITY_ID"], is_active=True
    )
    conf.trust_marks = body["trust_marks"]
    conf.save()
    return {}


@_control
def resolve(body):
    """This entity builds the trust chain of `sub` to its Trust Anchor afresh, with the
    package's own discovery, verification and metadata policy (what an OP does when an
    unknown RP first asks for authorization); the outcome as the package stores it."""
    from spid_cie_oidc.entity.trust_chain_operations import get_or_create_trust_chain

    tc = get_or_create_trust_chain(
        subject=body["sub"],
        trust_anchor=settings.OIDCFED_DEFAULT_TRUST_ANCHOR,
        httpc_params=settings.HTTPC_PARAMS,
        required_trust_marks=settings.OIDCFED_REQUIRED_TRUST_MARKS,
        force=True,
    )
    if tc is None:
        raise ValueError(f"no trust chain for {body['sub']} (disabled)")
    return {
        "status": tc.status,
        "metadata": tc.metadata,
        "exp": tc.exp_as_timestamp,
        "parties_involved": tc.parties_involved,
        "trust_marks": tc.trust_marks,
    }
