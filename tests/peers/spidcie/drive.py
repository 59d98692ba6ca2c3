"""Plays the user's browser through a spid-cie-oidc OP's pages, without a browser.

    drive.py START_URL USERNAME PASSWORD [STOP_PREFIX]

From START_URL (an OP authorization URL, or an RP page that redirects to one) it follows
redirects with one cookie jar, fills the OP's login form (username, password, the hidden
request object, the CSRF token) and submits its consent form. It stops at the first redirect
whose target starts with STOP_PREFIX (the RP's redirect_uri: that request is the RP's to
make, with its own browser binding), or else at the first page that is neither form; it
prints {"url", "status", "body"} of where it stopped as JSON.

Exits 1, with what the OP answered, when a step fails (wrong password, a refused request).
"""

import json
import sys
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests

MAX_STEPS = 20


class Forms(HTMLParser):
    """Every <form>: its action, method and the name/value of its <input>s."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"action": a.get("action") or "", "method": (a.get("method") or "get").lower(), "inputs": {}}
            )
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value") or ""


def fail(what, resp):
    sys.stderr.write(f"{what}: HTTP {resp.status_code} at {resp.url}\n{resp.text[:4000]}\n")
    sys.exit(1)


def main():
    url, username, password = sys.argv[1:4]
    stop = sys.argv[4] if len(sys.argv) > 4 else None
    s = requests.Session()
    method, data = "get", None
    logged_in = False
    for _ in range(MAX_STEPS):
        resp = s.request(method, url, data=data, allow_redirects=False, timeout=30)
        method, data = "get", None
        if resp.is_redirect:
            target = urljoin(url, resp.headers["Location"])
            if stop and target.startswith(stop):
                print(json.dumps({"url": target, "status": resp.status_code, "body": ""}))
                return
            url = target
            continue
        if resp.status_code != 200:
            fail("unexpected answer", resp)
        parser = Forms()
        parser.feed(resp.text)
        login = next((f for f in parser.forms if "password" in f["inputs"]), None)
        consent = next((f for f in parser.forms if f["action"].endswith("/consent")), None)
        if login is not None:
            if logged_in:
                fail("the OP refused the credentials", resp)
            logged_in = True
            fields = dict(login["inputs"], username=username, password=password)
            url, method, data = urljoin(resp.url, login["action"]), "post", fields
        elif consent is not None:
            url, method, data = urljoin(resp.url, consent["action"]), "post", dict(consent["inputs"])
        else:
            print(json.dumps({"url": resp.url, "status": resp.status_code, "body": resp.text}))
            return
    sys.stderr.write(f"no end after {MAX_STEPS} steps, last URL {url}\n")
    sys.exit(1)


if __name__ == "__main__":
    main()
