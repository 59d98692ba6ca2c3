"""Starts one spid-cie-oidc entity on 127.0.0.1 for the tests, then prints `READY <entity id>`
on stdout (the harness's readiness signal: the socket is bound and the entity's own
configuration is written).

    serve.py ROLE PORT ENTITY_ID STATE_DIR TEMPLATE_DIR

ROLE is `ta`, `spid-op`, `cie-op` or `rp` (varco_peer/settings.py lists the environment the
roles read). Stdin must stay open: the process exits when it closes. The database is a copy of a migrated template kept in TEMPLATE_DIR, one per
version of the package and of Django, made once under a file lock: migrating the package's
~60 migrations costs seconds, copying a file does not.
"""

import fcntl
import os
import shutil
import socketserver
import subprocess
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

HERE = os.path.dirname(os.path.abspath(__file__))


class Server(socketserver.ThreadingMixIn, WSGIServer):
    # The OP fetches the RP's (and the anchor's) statements while serving a request; the
    # RP fetches the OP's: never wait on our own single thread.
    daemon_threads = True
    allow_reuse_address = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def database(state_dir: str, template_dir: str) -> str:
    import django
    import spid_cie_oidc

    os.makedirs(template_dir, exist_ok=True)
    version = f"{spid_cie_oidc.__version__}-django{'.'.join(map(str, django.VERSION[:3]))}"
    template = os.path.join(template_dir, f"template-{version}.sqlite3")
    if not os.path.exists(template):
        with open(template + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.path.exists(template):
                fresh = f"{template}.{os.getpid()}"
                subprocess.run([sys.executable, __file__, "--migrate", fresh], check=True)
                os.replace(fresh, template)
    db = os.path.join(state_dir, "db.sqlite3")
    shutil.copyfile(template, db)
    return db


def migrate(db: str) -> None:
    os.environ["VARCO_PEER_DB"] = db
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def main() -> None:
    sys.path.insert(0, HERE)
    os.environ["DJANGO_SETTINGS_MODULE"] = "varco_peer.settings"
    if sys.argv[1] == "--migrate":
        return migrate(sys.argv[2])
    role, port, entity_id, state_dir, template_dir = sys.argv[1:6]
    os.environ["VARCO_PEER_ROLE"] = role
    os.environ["VARCO_PEER_ENTITY_ID"] = entity_id
    os.makedirs(state_dir, exist_ok=True)
    db = database(state_dir, template_dir)

    os.environ["VARCO_PEER_DB"] = db
    import django

    django.setup()

    from django.core.wsgi import get_wsgi_application
    from varco_peer import federation

    ta = os.environ.get("VARCO_PEER_TA", "")
    if role == "ta":
        federation.setup_trust_anchor(entity_id)
    elif role in ("spid-op", "cie-op"):
        federation.setup_provider(entity_id, ta, role.split("-")[0])
    elif role == "rp":
        federation.setup_relying_party(entity_id, ta)
    else:
        raise SystemExit(f"unknown role {role}")

    httpd = make_server(
        "127.0.0.1", int(port), get_wsgi_application(), server_class=Server, handler_class=QuietHandler
    )
    # The harness holds our stdin open for as long as it wants us: end when it closes, so a
    # test process that exits without dropping its handle (a panic, a static) leaves no
    # server behind.
    def watch_stdin():
        sys.stdin.read()
        shutil.rmtree(state_dir, ignore_errors=True)
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"READY {entity_id}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
