"""The API keeps its own OpenAPI contract: schemathesis, every check, against a real gunicorn.

The server has an active CF and an active CB version (ids 1 and 2, labels cf-one and cb-one)
and a superuser's token, so every operation, the ``{version}`` ones included, reaches real
rows. Examples per operation and the seed are fixed; the run must find no failure and no 5xx.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import serving

pytestmark = [pytest.mark.schemathesis, pytest.mark.gunicorn, pytest.mark.slow]

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES_PER_OPERATION = 30
SEED = 20261201
UNTHROTTLED = {
    f"HYBRIDREC_THROTTLE_{scope}": "100000/min" for scope in ("RECOMMENDATIONS", "BATCH", "MODELS", "HEALTH")
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("schemathesis"), **UNTHROTTLED) as info:
        yield info


def test_the_api_keeps_its_openapi_contract(server, tmp_path):
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server['url']}/api/schema/?format=json",
        "--header",
        f"Authorization: Token {server['root']['token']}",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "30",
    ]
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - started
    summary = [
        line
        for line in result.stdout.splitlines()
        if re.match(r"\s*\d+ generated|=+ .* in [0-9.]+s =+", line)
    ]
    print(f"\nschemathesis in {seconds:.1f} s: {' / '.join(line.strip() for line in summary)}")

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Test cases:" in result.stdout
    log = (server["db"].parent / "gunicorn.log").read_text()
    assert "Internal Server Error" not in log and "Traceback" not in log, log[-3000:]
