#!/usr/bin/env python3
"""Real logins through Varco and the demo IdP, as a browser makes them: the load harnesses'
legitimate users (scripts/load-hostile.sh, scripts/flood-login.sh).

Usage:
  logins.py start  VARCO_PORT IDP_URL K FILE   start K logins (GET /saml/login, each its
                                               own login cookie), keep them in FILE
  logins.py finish VARCO_PORT FILE             complete them: the IdP's page and answer,
                                               then POST /saml/acs; prints the ACS answers
  logins.py steady VARCO_PORT IDP_URL SECONDS RATE
                                               whole logins at RATE per second (one at a
                                               time, paced) for SECONDS: answers and ACS
                                               latency
A login counts as completed when the ACS answers 303 and sets the session cookie.
"""
import html
import http.client
import json
import re
import sys
import time
import urllib.parse


def field(page, name):
    m = re.search(r'name="%s"[^>]*value="([^"]*)"' % name, page)
    return html.unescape(m.group(1)) if m else None


def cookies(r):
    return [h.split(";")[0] for k, h in r.getheaders() if k.lower() == "set-cookie"]


class Client:
    def __init__(self, port):
        self.port = port
        self.c = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.c.request(method, path, body, headers or {})
                r = self.c.getresponse()
                data = r.read()
                return r, data
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = None
                if attempt:
                    raise


def start(varco, idp):
    r, _ = varco.request(
        "GET",
        "/saml/login?idp=" + urllib.parse.quote(idp, safe="") + "&level=2&return_to=%2F",
    )
    if r.status not in (302, 303):
        return {"status": r.status}
    return {"status": r.status, "sso": r.getheader("Location"), "cookie": "; ".join(cookies(r))}


def finish(varco, idp_client, login):
    """The IdP's page and answer, then the ACS: (ACS status, ACS seconds) or (error, None)."""
    sso = urllib.parse.urlsplit(login["sso"])
    r, page = idp_client.request("GET", sso.path + "?" + sso.query)
    state = field(page.decode(), "state")
    if r.status != 200 or state is None:
        return f"idp_{r.status}", None
    body = urllib.parse.urlencode({"state": state, "user": "mario.rossi", "level": "2"})
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r, page = idp_client.request("POST", "/login", body, form)
    text = page.decode()
    resp, relay = field(text, "SAMLResponse"), field(text, "RelayState")
    if resp is None:
        return f"idp_answer_{r.status}", None
    body = urllib.parse.urlencode({"SAMLResponse": resp, "RelayState": relay or ""})
    t0 = time.monotonic()
    r, page = varco.request("POST", "/saml/acs", body, {**form, "Cookie": login["cookie"]})
    took = time.monotonic() - t0
    ok = r.status == 303 and any(c.startswith("varco_session=") for c in cookies(r))
    if ok:
        return "completed", took
    m = re.search(r"(broker|saml|dsig|store)_[a-z_]+", page.decode(errors="replace"))
    return f"{r.status} {m.group(0) if m else ''}".strip(), took


def idp_client_for(login):
    port = urllib.parse.urlsplit(login["sso"]).port
    return Client(port)


def tally(counts, key):
    counts[key] = counts.get(key, 0) + 1


def main():
    mode = sys.argv[1]
    varco = Client(int(sys.argv[2]))
    if mode == "start":
        idp, k, out = sys.argv[3], int(sys.argv[4]), sys.argv[5]
        logins = [start(varco, idp) for _ in range(k)]
        json.dump([l for l in logins if "sso" in l], open(out, "w"))
        counts = {}
        for l in logins:
            tally(counts, l["status"])
        print(f"started {k} logins: /saml/login answers {dict(sorted(counts.items()))}")
    elif mode == "finish":
        logins = json.load(open(sys.argv[3]))
        counts = {}
        idp = idp_client_for(logins[0]) if logins else None
        for l in logins:
            tally(counts, finish(varco, idp, l)[0])
        done = counts.get("completed", 0)
        print(f"finished {len(logins)} logins: {done} completed; outcomes {dict(sorted(counts.items()))}")
    elif mode == "steady":
        idp_url, seconds, rate = sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
        counts, acs = {}, []
        idp = None
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < seconds:
            due = t0 + i / rate
            time.sleep(max(0.0, due - time.monotonic()))
            i += 1
            login = start(varco, idp_url)
            if "sso" not in login:
                tally(counts, f"login {login['status']}")
                continue
            idp = idp or idp_client_for(login)
            outcome, took = finish(varco, idp, login)
            tally(counts, outcome)
            if took is not None:
                acs.append(took)
        acs.sort()
        pct = lambda q: acs[min(len(acs) - 1, int(q * len(acs)))] * 1000 if acs else float("nan")
        print(
            f"legitimate logins: {i} tried, outcomes {dict(sorted(counts.items()))}; "
            f"ACS POST p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {pct(1.0):.1f} ms"
        )
    else:
        sys.exit(__doc__)


main()
