"""Times pysaml2 validating the Responses `varco-loadgen fixtures` wrote (docs/PERFORMANCE.md).

    python pysaml2-validate.py DIR BACKEND [LIMIT]

BACKEND is pysaml2's `crypto_backend`: `xmlsec1` (its default: the xmlsec1 program, run for
each signature) or `XMLSecurity` (pyXMLSecurity: lxml for XML and C14N, RSA in Python; note
that it imports as `xmlsec` but is not python-xmlsec). pysaml2 7.5.5 has no backend on the
python-xmlsec bindings (libxmlsec1 in process, what pip `xmlsec` installs), so BACKEND
`python-xmlsec` plugs in one written here (`PythonXmlsec`, the xmlsec1 command's checks done
through the bindings) as the fastest pysaml2 one could deploy. Each Response goes
through `Saml2Client.parse_authn_request_response` exactly as a pysaml2 SP (SATOSA's SAML
backend) receives it: base64 decode, parse, verify the Response and Assertion signatures
against the IdP's metadata, check Destination, Recipient, Audience, the time conditions and
InResponseTo against the outstanding request. The SP configuration is the one Varco has in
that run (entityID, ACS URL); the IdP metadata is the demo IdP's. Prints the median and the
mean time per Response and a machine-readable line `pysaml2_<backend>_us_per_response=…`.
Exits 1 if any Response is refused: a comparison is only fair if both sides accept them.
"""

import os
import statistics
import sys
import time

from saml2 import BINDING_HTTP_POST
from saml2.client import Saml2Client
from saml2.config import SPConfig


def python_xmlsec_backend():
    """A pysaml2 CryptoBackend verifying with python-xmlsec, in process."""
    import xmlsec
    from lxml import etree
    from saml2.sigver import CryptoBackend

    parser = etree.XMLParser(resolve_entities=False, no_network=True)

    class PythonXmlsec(CryptoBackend):
        @property
        def version(self):
            return xmlsec.__version__

        def validate_signature(self, signedtext, cert_file, cert_type, node_name, node_id):
            if isinstance(signedtext, str):
                signedtext = signedtext.encode("utf-8")
            root = etree.fromstring(signedtext, parser)
            xmlsec.tree.add_ids(root, ["ID"])
            node = root if root.get("ID") == node_id else None
            if node is None:
                found = root.xpath("//*[@ID=$id]", id=node_id)
                if len(found) != 1:
                    return False
                node = found[0]
            signature = xmlsec.tree.find_child(node, xmlsec.constants.NodeSignature)
            if signature is None:
                return False
            ctx = xmlsec.SignatureContext()
            ctx.key = xmlsec.Key.from_file(cert_file, xmlsec.constants.KeyDataFormatCertPem)
            ctx.set_enabled_key_data([xmlsec.constants.KeyDataX509])
            try:
                ctx.verify(signature)
            except xmlsec.Error:
                return False
            return True

    return PythonXmlsec()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    root, backend = sys.argv[1], sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    env = dict(
        line.split("=", 1)
        for line in open(os.path.join(root, "sp.env")).read().splitlines()
        if "=" in line
    )
    conf = {
        "entityid": env["SP_ENTITY_ID"],
        "service": {
            "sp": {
                "endpoints": {
                    "assertion_consumer_service": [(env["ACS_URL"], BINDING_HTTP_POST)]
                },
                "allow_unsolicited": False,
                "want_response_signed": True,
                "want_assertions_signed": True,
                "authn_requests_signed": False,
            }
        },
        "metadata": {"local": [os.path.join(root, "idp-metadata.xml")]},
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "crypto_backend": "xmlsec1" if backend == "python-xmlsec" else backend,
        "accepted_time_diff": 60,
    }
    client = Saml2Client(config=SPConfig().load(conf))
    if backend == "python-xmlsec":
        client.sec.crypto = python_xmlsec_backend()
    fixtures = []
    for line in open(os.path.join(root, "manifest.tsv")).read().splitlines():
        if not line:
            continue
        name, request_id = line.split("\t", 1)
        fixtures.append((open(os.path.join(root, name)).read().strip(), request_id))
    if limit:
        fixtures = fixtures[:limit]

    times = []
    for b64, request_id in fixtures:
        t0 = time.perf_counter()
        resp = client.parse_authn_request_response(
            b64, BINDING_HTTP_POST, outstanding={request_id: "/"}
        )
        ok = resp is not None and resp.assertion is not None and resp.in_response_to == request_id
        times.append(time.perf_counter() - t0)
        if not ok:
            sys.exit(f"pysaml2 ({backend}) refused a Response answering {request_id}")

    median = statistics.median(times) * 1e6
    mean = statistics.fmean(times) * 1e6
    print(
        f"pysaml2 7.5.5 parse_authn_request_response, crypto_backend={backend}, "
        f"{len(times)} Responses: median {median:.0f} µs per Response, mean {mean:.0f} µs"
    )
    print(f"pysaml2_{backend.replace('-', '_')}_us_per_response={median:.2f}")


if __name__ == "__main__":
    main()
