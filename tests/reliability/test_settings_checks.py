"""Settings that would break requests stop ``manage.py check`` and gunicorn's boot, in one line each."""

import subprocess
import sys

import pytest

from tests.support import processes
from tests.support.ops_servers import boot_gunicorn_expecting_failure, server_env

BAD = [
    ({"HYBRIDREC_MAX_K": "0"}, "HYBRIDREC_MAX_K=0 is out of range: it must be an integer of at least 1"),
    (
        {"HYBRIDREC_DEFAULT_K": "500"},
        "HYBRIDREC_DEFAULT_K=500 is out of range: it must be between 1 and HYBRIDREC_MAX_K (100)",
    ),
    (
        {"HYBRIDREC_HYBRID_WEIGHT": "1.5"},
        "HYBRIDREC_HYBRID_WEIGHT=1.5 is out of range: it must be between 0 and 1",
    ),
    ({"HYBRIDREC_THROTTLE_BATCH": "lots"}, "HYBRIDREC_THROTTLE_BATCH='lots' is out of range"),
    ({"HYBRIDREC_VERSION_CHECK_SECONDS": "0"}, "HYBRIDREC_VERSION_CHECK_SECONDS=0.0 is out of range"),
    ({"HYBRIDREC_MAX_UPLOAD_BYTES": "-1"}, "HYBRIDREC_MAX_UPLOAD_BYTES=-1 is out of range"),
    ({"HYBRIDREC_MAX_K": "lots"}, "HYBRIDREC_MAX_K='lots' is not an integer"),
    ({"HYBRIDREC_HYBRID_WEIGHT": "heavy"}, "HYBRIDREC_HYBRID_WEIGHT='heavy' is not a number"),
]


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=processes.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("variables", "line"), BAD, ids=[next(iter(v)) + "=" + next(iter(v.values())) for v, _ in BAD]
)
def test_manage_check_fails_with_one_line_naming_the_variable(tmp_path, variables, line):
    result = manage(server_env(tmp_path, **variables), "check")

    assert result.returncode == 1
    assert line in result.stderr
    assert "Traceback" not in result.stderr
    assert sum(line in row for row in result.stderr.splitlines()) == 1


def test_manage_check_passes_with_the_defaults(tmp_path):
    result = manage(server_env(tmp_path), "check")
    assert result.returncode == 0, result.stderr


@pytest.mark.gunicorn
@pytest.mark.parametrize(("variables", "line"), [BAD[2], BAD[6]], ids=["out of range", "does not parse"])
def test_gunicorn_refuses_to_boot_with_one_line_naming_the_variable(tmp_path, variables, line):
    code, output = boot_gunicorn_expecting_failure(tmp_path, **variables)

    assert code != 0
    assert line in output
    assert "Traceback" not in output
    assert "Booting worker" not in output


@pytest.mark.parametrize(
    "name",
    [
        "HYBRIDREC_EVENTS_MAX_AGE_SECONDS",
        "HYBRIDREC_ATTRIBUTION_WINDOW",
        "HYBRIDREC_ATTRIBUTION_CLOCK_SKEW_SECONDS",
    ],
)
def test_a_duration_past_what_a_clock_can_subtract_stops_manage_check_in_one_line(tmp_path, name):
    result = manage(server_env(tmp_path, **{name: "90000000000000"}), "check")

    assert result.returncode == 1
    assert f"{name}=90000000000000 must be at most 3153600000 (100 years)." in result.stderr
    assert "Traceback" not in result.stderr
