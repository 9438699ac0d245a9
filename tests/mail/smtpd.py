"""An SMTP server for tests/e2e/alerts.rs: PyPI aiosmtpd requiring STARTTLS before
anything else and AUTH (over TLS only) with one user, appending each message it accepts
as a JSON line (envelope, whether it came over TLS and authenticated, the text) to a file.

    smtpd.py CERT KEY PORT USER PASSWORD OUT    (runs until stdin closes)
"""

import json
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

cert, key, port, user, password, out = sys.argv[1:7]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)


class Keep:
    async def handle_DATA(self, server, session, envelope):
        rec = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "auth": bool(session.authenticated),
            "data": envelope.content.decode("utf8", "replace"),
        }
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        return "250 OK"


def check(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    # handled=False: aiosmtpd answers 535 itself (True would mean "already answered").
    return AuthResult(success=ok, handled=False)


c = Controller(
    Keep(),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=ctx,
    require_starttls=True,
    auth_required=True,
    auth_require_tls=True,
    authenticator=check,
)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
