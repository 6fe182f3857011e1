"""The red-team run as CI runs it: every hostile family refused or bounded, nothing left behind."""

import subprocess
import sys

import pytest

from tests.conftest import skip_or_fail
from tests.support.processes import ROOT

pytestmark = [pytest.mark.attack, pytest.mark.gunicorn, pytest.mark.postgres, pytest.mark.slow]


def _postgres_reachable():
    import psycopg

    try:
        psycopg.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3
        ).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.mark.timeout(3600)
def test_every_hostile_family_is_refused_or_bounded_within_the_ceilings():
    if not _postgres_reachable():
        skip_or_fail("the red-team run needs PostgreSQL on 127.0.0.1:5432")

    result = subprocess.run(
        [sys.executable, "-m", "bench.redteam"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3500,
        check=False,
    )

    print(result.stdout)
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert result.returncode == 0, "\n".join(failed) or result.stderr[-3000:]
