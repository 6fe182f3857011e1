"""simulate_experiment refuses what it cannot run with one clear line, before or without a server."""

import pytest
from django.core.management import CommandError, call_command

from tests.support.processes import free_port


def test_an_a_a_run_needs_an_effect_to_plan_for():
    with pytest.raises(CommandError, match="--min-effect"):
        call_command("simulate_experiment", url="http://127.0.0.1:1", token="t", delta=0.0)


def test_a_server_that_does_not_answer_is_named():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match=r"GET /api/v1/experiments/5/: .*(refused|Failed)"):
        call_command("simulate_experiment", url=url, token="t", experiment=5)
