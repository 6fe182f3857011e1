"""Before ``migrate``: every command and page says so in one line, never a traceback or a bare 500."""

import subprocess
import sys

import pytest
import requests

from hybridrec.dbstate import NO_TABLES
from modelstore.bundles import write_bundle
from tests import factories
from tests.support import processes
from tests.support.ops_servers import server_env

COMMANDS = [
    ["list_models"],
    ["activate_model", "cf-1"],
    ["rollback_model", "--kind", "cf"],
    ["bundle_models", "--verify"],
    ["import_bundle", "{bundle}"],
    ["evaluate_model", "cf-1", "--test", "missing.csv"],
    ["demo_user"],
    ["createsuperuser", "--noinput", "--username", "root", "--email", "root@example.com"],
    ["changepassword", "root"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_says_to_migrate_in_one_line(tmp_path, command):
    bundle = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=factories.cf_array_set(seed=0)).path
    result = subprocess.run(
        [sys.executable, "manage.py", *(part.format(bundle=bundle) for part in command)],
        env=server_env(tmp_path),
        cwd=processes.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == NO_TABLES, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.gunicorn
@pytest.mark.slow
def test_pages_answer_503_with_the_reason(tmp_path):
    with processes.gunicorn(
        server_env(tmp_path),
        tmp_path / "gunicorn.log",
        workers=1,
        ready_path="/admin/login/",
        ready_statuses=None,
    ) as server:
        url = server.url
        browser = requests.Session()
        browser.get(f"{url}/admin/login/", timeout=10)  # the CSRF cookie
        login = browser.post(
            f"{url}/admin/login/",
            data={"username": "a", "password": "b", "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": f"{url}/admin/login/"},
            timeout=10,
        )
        models = requests.get(f"{url}/api/v1/models/", headers={"Authorization": "Token abc"}, timeout=10)

    assert login.status_code == 503 and login.text == NO_TABLES
    assert models.status_code == 503
    assert models.json() == {"detail": NO_TABLES, "code": "database_not_migrated"}
