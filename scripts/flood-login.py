#!/usr/bin/env python3
"""GET /saml/login flood for the memory measurement of docs/PERFORMANCE.md (issue 17).

Usage: scripts/flood-login.py PORT IDP_ENTITY_ID REQUESTS THREADS [SECONDS]

Stops after REQUESTS requests, or after SECONDS when given (whichever comes first).

Each request carries the longest `return_to` Varco accepts (1 KiB), so every pending login
stored is as large as a client can make it. Prints the answers by status and the time taken.
Loopback only.
"""
import http.client
import sys
import threading
import time
import urllib.parse

port, idp, total, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
deadline = time.time() + float(sys.argv[5]) if len(sys.argv) > 5 else float("inf")
path = (
    "/saml/login?idp=" + urllib.parse.quote(idp, safe="") + "&return_to=/" + "a" * 1023
)
counts = {}
lock = threading.Lock()


def work(n):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(n):
        if time.time() >= deadline:
            break
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        with lock:
            counts[r.status] = counts.get(r.status, 0) + 1


started = time.time()
workers = [threading.Thread(target=work, args=(total // threads,)) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(dict(sorted(counts.items())), f"{time.time() - started:.1f} s")
