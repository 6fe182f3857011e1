"""Every answer names its request; every 500 is logged with its traceback and that name."""

import pytest
import requests

from tests.support.ops_servers import gunicorn, prepare, server_env
from tests.support.processes import run_python

DROP_TOKENS = """
import django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("DROP TABLE authtoken_token")
print("dropped")
"""


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/health/", "/api/v1/models/", "/api/v1/nowhere/", "/admin/login/"])
def test_every_answer_carries_a_request_id(client, path):
    first = client.get(path)
    second = client.get(path)

    ids = [first.headers.get("X-Request-ID"), second.headers.get("X-Request-ID")]
    assert all(ids) and ids[0] != ids[1]


@pytest.mark.django_db
def test_a_sane_incoming_request_id_is_kept_and_anything_else_replaced(client):
    kept = client.get("/api/v1/health/", headers={"X-Request-ID": "lb-7f3a9c21-0001"})
    replaced = client.get("/api/v1/health/", headers={"X-Request-ID": "<script>alert(1)</script>"})

    assert kept.headers["X-Request-ID"] == "lb-7f3a9c21-0001"
    assert replaced.headers["X-Request-ID"] not in ("", "<script>alert(1)</script>")
    assert len(replaced.headers["X-Request-ID"]) == 32


@pytest.mark.gunicorn
@pytest.mark.slow
def test_a_500_under_gunicorn_is_logged_with_its_traceback_and_request_id(tmp_path):
    prepared = prepare(tmp_path)
    with gunicorn(tmp_path, workers=1) as (url, log_path):
        # A table the request needs is gone (the registry is still there): a genuine server error.
        run_python(DROP_TOKENS, server_env(tmp_path))
        response = requests.get(
            f"{url}/api/v1/recommendations/C0001/",
            headers={"Authorization": f"Token {prepared['token']}", "X-Request-ID": "forced-500-0001"},
            timeout=10,
        )
        assert response.status_code == 500
        assert response.headers["X-Request-ID"] == "forced-500-0001"
        assert response.json() == {"detail": "internal server error", "code": "server_error"}
    log = log_path.read_text()
    error_lines = [line for line in log.splitlines() if "ERROR django.request [forced-500-0001]" in line]
    assert error_lines, log[-3000:]
    after = log[log.index(error_lines[0]) :]
    assert "Traceback (most recent call last)" in after
    assert "no such table: authtoken_token" in after
