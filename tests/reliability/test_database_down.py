"""The database goes away under a running server (a proxy in front of the real PostgreSQL is cut).

Public reads keep being answered from the loaded model; reads that need the database (a token
to look up, the registry) answer 503 ``database_unavailable``, never 500; ready says 503, live
200, the summary ``degraded``. When the database is back, everything answers again.
"""

import os
import time
import uuid
from urllib.parse import urlsplit

import pytest

from tests.conftest import skip_or_fail
from tests.support.gunicorn import gunicorn, prepare, server_env
from tests.support.processes import get, status_of, wait_until
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.gunicorn, pytest.mark.slow]

TIMEOUT = 30


def postgres_server():
    """Return (host, port, user) of the PostgreSQL to use: DATABASE_URL's, else the local default."""
    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url) if url.startswith("postgres") else urlsplit("postgresql://postgres@127.0.0.1:5432/")
    return parts.hostname or "127.0.0.1", parts.port or 5432, parts.username or "postgres"


@pytest.fixture
def database():
    """Create a throwaway database on the real PostgreSQL; yield (host, port, user, name); drop it."""
    psycopg = pytest.importorskip("psycopg")
    host, port, user = postgres_server()
    try:
        admin = psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True)
    except psycopg.OperationalError as exc:
        skip_or_fail(f"PostgreSQL is not reachable at {host}:{port}: {exc}")
    name = f"hybridrec_dbdown_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield host, port, user, name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def proxy(database):
    host, port, _, _ = database
    proxy = TcpProxy(host, port)
    yield proxy
    proxy.close()


def test_public_reads_keep_being_served_and_the_rest_answers_503_while_the_database_is_down(
    tmp_path, database, proxy
):
    _, _, user, name = database
    env = server_env(
        tmp_path,
        DATABASE_URL=f"postgresql://{user}@127.0.0.1:{proxy.port}/{name}",
        HYBRIDREC_PUBLIC_API="true",
    )
    prepared = prepare(env, tmp_path)
    first = prepared["versions"][0]
    token = {"Authorization": f"Token {prepared['token']}"}
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=2) as url:
        recs = f"{url}/api/v1/recommendations/C0001/?k=5"
        assert get(recs, headers=token).status_code == 200

        proxy.cut()
        wait_until(lambda: status_of(f"{url}/api/v1/health/ready/") == 503, timeout=TIMEOUT)

        for _ in range(20):  # new connections: both workers answer
            public = get(recs)
            assert public.status_code == 200, public.text
            assert public.json()["model"]["cf"]["id"] == first
            with_token = get(recs, headers=token)
            assert with_token.status_code == 503, with_token.text
            assert with_token.json()["code"] == "database_unavailable"
        for path in ("/api/v1/models/", f"/api/v1/models/{first}/"):
            response = get(url + path, headers=token)
            assert (response.status_code, response.json()["code"]) == (503, "database_unavailable"), path
        ready = get(f"{url}/api/v1/health/ready/").json()
        assert ready["reasons"] == ["the database cannot be reached"]
        assert get(f"{url}/api/v1/health/live/").status_code == 200
        summary = get(f"{url}/api/v1/health/")
        assert summary.status_code == 200
        assert (summary.json()["status"], summary.json()["database"]) == ("degraded", "unavailable")
        assert name not in summary.text and "connection" not in summary.text.lower()
        as_staff = get(f"{url}/api/v1/health/", headers={"Authorization": f"Token {prepared['staff_token']}"})
        assert as_staff.status_code == 200  # the token cannot be checked: the public answer
        assert "load_seconds" not in as_staff.json()["models"]["cf"]

        proxy.restore()
        restored = time.monotonic()

        def all_ready():
            return all(status_of(f"{url}/api/v1/health/ready/") == 200 for _ in range(10))

        wait_until(all_ready, timeout=TIMEOUT, message="ready again")
        print(f"ready again {time.monotonic() - restored:.2f} s after the database came back")
        assert get(recs, headers=token).status_code == 200

        def all_ok():  # each worker's next version check (within a second) clears its note
            return all(get(f"{url}/api/v1/health/").json()["status"] == "ok" for _ in range(10))

        wait_until(all_ok, timeout=TIMEOUT, message="health ok again")
