"""The "bench frontend": the smallest SATOSA frontend that lets a load generator drive a
whole login through SATOSA's SAML2 backend and see the result.

Written for Varco's SATOSA comparison (scripts/compare-satosa.sh); nothing here comes from
SATOSA's own frontends. Two things only:

- ``GET /<backend>/<name>/start``: opens a login for the requester ``bench`` and hands it to
  SATOSA, which routes it to the backend named in the path (the SAML2 backend answers with
  its signed AuthnRequest, a redirect to the IdP, and its state cookie);
- when the backend has validated the IdP's Response and SATOSA has mapped its attributes,
  ``handle_authn_response`` answers 200 with the subject and the internal attributes as
  JSON, so the measured ACS POST is SATOSA's ACS work and nothing else.

A backend error is answered 403 with the error's text: the driver counts it as a failure.
"""
import json
import re

from satosa.frontends.base import FrontendModule
from satosa.internal import InternalData
from satosa.response import Response


class BenchFrontend(FrontendModule):
    """Starts logins and shows their outcome; see the module text."""

    REQUESTER = "bench"

    def __init__(self, auth_req_callback_func, internal_attributes, config, base_url, name):
        super().__init__(auth_req_callback_func, internal_attributes, base_url, name)
        self.config = config or {}

    def register_endpoints(self, backend_names):
        # SATOSA picks the backend from the first path segment, so one start URL per backend.
        return [
            ("^{}/{}/start$".format(re.escape(backend), re.escape(self.name)), self.start)
            for backend in backend_names
        ]

    def start(self, context):
        request = InternalData(requester=self.REQUESTER, requester_name=[])
        return self.auth_req_callback_func(context, request)

    def handle_authn_response(self, context, internal_resp):
        body = {
            "subject_id": internal_resp.subject_id,
            "subject_type": internal_resp.subject_type,
            "issuer": internal_resp.auth_info.issuer,
            "auth_class_ref": internal_resp.auth_info.auth_class_ref,
            "attributes": internal_resp.attributes,
        }
        return Response(json.dumps(body, sort_keys=True), content="application/json")

    def handle_backend_error(self, exception):
        return Response(
            json.dumps({"error": str(exception)}),
            status="403 Forbidden",
            content="application/json",
        )
