"""Every upload door refuses from the headers alone, on a real gunicorn, through a raw socket.

Each request announces a 500 MB body and sends 1 MB of it. A refusal must come back although
the rest never arrives, with the worker having read less than it was sent and nothing spooled
to the server's temporary folder. A file that passes the limit while it streams is a 413 too.
"""

import contextlib
import http.client
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.gunicorn

ANNOUNCED_BYTES = 500 * 1024 * 1024
SENT_BYTES = 1024 * 1024
LIMIT_BYTES = 2 * 1024 * 1024  # the server's HYBRIDREC_MAX_UPLOAD_BYTES
BOUNDARY = "hybridrec-test-boundary"
CSRF_SECRET = "a" * 32  # an unmasked CSRF secret, sent as the cookie and as X-CSRFToken

DOORS = {
    # door: (path, file field)
    "admin upload": ("/admin/modelstore/modelversion/add/", "file"),
    "admin training": ("/admin/recommendations/train/", "interactions"),
    "api upload": ("/api/v1/models/", "file"),
}


def file_part_head(field, name="model.joblib"):
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def credentials(server, door, who):
    """Return the headers that carry ``who``'s credentials to ``door`` (anonymous: a CSRF cookie only)."""
    cookie = f"csrftoken={CSRF_SECRET}"
    if who == "anonymous":
        return {"Cookie": cookie, "X-CSRFToken": CSRF_SECRET}
    if door == "api upload":
        return {"Authorization": f"Token {server[who]['token']}"}
    return {"Cookie": f"{cookie}; sessionid={server[who]['session']}", "X-CSRFToken": CSRF_SECRET}


def raw_post(server, path, *, content_length, body, headers):
    """Send a POST's headers and ``body`` (perhaps less than ``content_length``); return the answer.

    The body is sent from a thread while this one waits for the answer, so an answer that
    comes before the body was read is seen. Returns ``(status, headers, body, seconds)``,
    the seconds counted from the first byte sent to the answer's status line.
    """
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{server['port']}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {content_length}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    sock = socket.create_connection(("127.0.0.1", server["port"]), timeout=10)

    def send_body():
        # The server may answer and close without reading the rest: that is the point.
        with contextlib.suppress(OSError):
            sock.sendall(body)

    started = time.monotonic()
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    try:
        response = http.client.HTTPResponse(sock)
        response.begin()
        seconds = time.monotonic() - started
        content = response.read()
        return response.status, dict(response.getheaders()), content, seconds
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sender.join(10)
        sock.close()


def assert_nothing_spooled_or_stored(server):
    assert list(server["tmp"].iterdir()) == []
    assert len(list((server["media"] / "bundles").glob("*.joblib"))) == 2  # the two it started with


def announce_500_mb(server, door, who):
    path, field = DOORS[door]
    status, headers, content, seconds = raw_post(
        server,
        path,
        content_length=ANNOUNCED_BYTES,
        body=file_part_head(field) + b"\0" * SENT_BYTES,
        headers=credentials(server, door, who),
    )
    read = int(headers["X-Body-Bytes-Read"])
    print(f"\n{door}, {who}: {status} after {seconds:.3f} s; the application read {read:,} body bytes")
    return status, headers, content, read


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(("who", "api_status"), [("anonymous", 401), ("staff", 403)])
def test_a_client_without_the_permission_is_refused_before_the_body_is_read(
    gunicorn_server, door, who, api_status
):
    status, headers, content, read = announce_500_mb(gunicorn_server, door, who)

    assert status == (api_status if door == "api upload" else 403), content[:300]
    if door == "api upload":
        assert headers["Content-Type"] == "application/json"
        assert b'"code"' in content
    assert read == 0
    assert_nothing_spooled_or_stored(gunicorn_server)


def test_a_session_without_the_permission_is_refused_at_the_api_before_its_csrf_check_reads_the_body(
    gunicorn_server,
):
    path, field = DOORS["api upload"]
    status, headers, content, seconds = raw_post(
        gunicorn_server,
        path,
        content_length=ANNOUNCED_BYTES,
        body=file_part_head(field) + b"\0" * SENT_BYTES,
        headers={"Cookie": f"csrftoken={CSRF_SECRET}; sessionid={gunicorn_server['staff']['session']}"},
    )

    read = int(headers["X-Body-Bytes-Read"])
    print(
        f"\napi upload, staff session: {status} after {seconds:.3f} s; the application read {read:,} body bytes"
    )
    assert status == 403, content[:300]
    assert b'"code":"permission_denied"' in content
    assert read == 0
    assert_nothing_spooled_or_stored(gunicorn_server)


@pytest.mark.parametrize("door", DOORS)
def test_a_body_announced_over_the_limit_is_413_before_it_is_read(gunicorn_server, door):
    status, headers, content, read = announce_500_mb(gunicorn_server, door, "root")

    assert status == 413, content[:300]
    assert b"HYBRIDREC_MAX_UPLOAD_BYTES" in content
    if door == "api upload":
        assert b'"code":"too_large"' in content
    assert read == 0
    assert_nothing_spooled_or_stored(gunicorn_server)


@pytest.mark.parametrize("door", DOORS)
def test_a_file_that_passes_the_limit_while_it_streams_is_413_and_leaves_no_file(gunicorn_server, door):
    path, field = DOORS[door]
    closing = f"\r\n--{BOUNDARY}--\r\n".encode()
    body = file_part_head(field, "big.csv") + b"1" * (LIMIT_BYTES + 16 * 1024) + closing

    status, headers, content, seconds = raw_post(
        gunicorn_server,
        path,
        content_length=len(body),
        body=body,
        headers=credentials(gunicorn_server, door, "root"),
    )

    assert status == 413, content[:500]
    assert b"upload limit" in content
    if door == "api upload":
        assert b'"code":"too_large"' in content
    assert_nothing_spooled_or_stored(gunicorn_server)
