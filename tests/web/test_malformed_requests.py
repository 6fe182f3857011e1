"""Malformed requests on a real gunicorn: a 4xx from gunicorn itself, or Django's JSON under /api/.

Gunicorn answers the first kind before Django sees the request (docs/SECURITY.md lists them);
whatever reaches Django under /api/ is answered as ``{"detail", "code"}``.
"""

import http.client
import json
import socket

import pytest

pytestmark = pytest.mark.gunicorn


def send(server, request):
    """Send raw bytes and return ``(status, headers text, body)`` of the answer."""
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=10) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, str(response.headers), response.read()


def host(server):
    return f"Host: 127.0.0.1:{server['port']}\r\n"


@pytest.mark.parametrize(
    ("name", "request_text", "status"),
    [
        (
            "Content-Length not a number",
            "POST /api/v1/recommendations/batch/ HTTP/1.1\r\n{host}Content-Length: abc\r\n\r\n",
            400,
        ),
        (
            "negative Content-Length",
            "POST /api/v1/recommendations/batch/ HTTP/1.1\r\n{host}Content-Length: -1\r\n\r\n",
            400,
        ),
        (
            "two Content-Lengths",
            "POST /api/v1/recommendations/batch/ HTTP/1.1\r\n{host}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}",
            400,
        ),
        (
            "Content-Length and chunked",
            "POST /api/v1/recommendations/batch/ HTTP/1.1\r\n{host}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "request line over 4094 bytes",
            "GET /api/v1/recommendations/" + "x" * 5000 + "/ HTTP/1.1\r\n{host}\r\n",
            414,
        ),
        (
            "header over 8190 bytes",
            "GET /api/v1/health/ HTTP/1.1\r\n{host}X-Big: " + "y" * 9000 + "\r\n\r\n",
            431,
        ),
        ("raw NUL in the path", "GET /api/v1/models/cf\x00x/ HTTP/1.1\r\n{host}\r\n", 400),
    ],
)
def test_gunicorn_refuses_malformed_requests_itself_with_a_4xx(gunicorn_server, name, request_text, status):
    answer, head, _ = send(
        gunicorn_server, request_text.replace("{host}", host(gunicorn_server)).encode("latin-1")
    )

    assert answer == status, (name, head)
    assert "Connection: close" in head


@pytest.mark.parametrize(
    ("request_text", "status", "code"),
    [
        ("GET /api/v1/health/ HTTP/1.1\r\nHost: attacker.example\r\n\r\n", 400, "bad_host"),
        (
            "GET /api/v1/models/cf%00x/ HTTP/1.1\r\n{host}Authorization: Token {token}\r\n\r\n",
            400,
            "invalid",
        ),
        (
            "POST /api/v1/recommendations/batch/ HTTP/1.1\r\n{host}Authorization: Token {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{{",
            413,
            "too_large",
        ),
    ],
)
def test_what_reaches_django_under_the_api_is_answered_in_json(gunicorn_server, request_text, status, code):
    text = request_text.replace("{host}", host(gunicorn_server)).replace(
        "{token}", gunicorn_server["root"]["token"]
    )

    answer, head, body = send(gunicorn_server, text.replace("{{", "{").encode())

    assert answer == status, head
    assert "Content-Type: application/json" in head
    assert json.loads(body)["code"] == code
