"""With SENTRY_DSN set, a 500 reaches Sentry (a stand-in Sentry on loopback receives the event)."""

import gzip
import http.server
import threading

from tests.support.ops_servers import prepare, server_env
from tests.support.processes import run_python

FORCE_500 = """
import django
django.setup()
import sentry_sdk
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

token = Token.objects.get().key
with connection.cursor() as cursor:
    cursor.execute("DROP TABLE authtoken_token")  # a table the request needs is gone
client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
response = client.get("/api/v1/models/", HTTP_AUTHORIZATION=f"Token {token}")
sentry_sdk.flush(timeout=10)
print(response.status_code, response["X-Request-ID"])
"""


class Collector(http.server.BaseHTTPRequestHandler):
    """Keep the bodies of every POST (Sentry envelopes), answer 200."""

    bodies: list[str] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.bodies.append(body.decode("utf-8", "replace"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_a_500_is_sent_to_sentry_when_sentry_dsn_is_set(tmp_path):
    prepare(tmp_path)
    Collector.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dsn = f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
        status, request_id = run_python(FORCE_500, server_env(tmp_path, SENTRY_DSN=dsn)).split()
    finally:
        server.shutdown()
        server.server_close()

    assert status == "500"
    events = "\n".join(Collector.bodies)
    assert "no such table: authtoken_token" in events
    assert "OperationalError" in events
    assert request_id in events  # tagged with the request id the response and the log carry


def test_nothing_is_sent_without_sentry_dsn(tmp_path):
    prepare(tmp_path)
    script = "import django\ndjango.setup()\nimport sentry_sdk\nprint(sentry_sdk.get_client().is_active())"
    assert run_python(script, server_env(tmp_path)) == "False"
