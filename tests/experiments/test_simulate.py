"""simulate_experiment against a real gunicorn: a better candidate is called at the planned size, A/A seeds are not.

The server and the command share one plan: click-through 10 % for the control, the smallest
effect worth finding +3 points, alpha 0.05 two-sided, power 0.9, so 2,375 impressions per arm.
The command stops reporting an arm's events once it has them, then reads the experiment's
results through the API. ``test_simulate_tables.py`` runs 100 seeds of each through the same
results code on tables written straight into the database.
"""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from recommendations.experiments import stats
from tests.support import gunicorn as gunicorn_support
from tests.support import processes

pytestmark = [pytest.mark.gunicorn, pytest.mark.slow]

P0, DELTA, POWER, K = 0.10, 0.03, 0.9, 10
PLANNED = stats.sample_size_per_arm(P0, DELTA, power=POWER)

SIMULATOR = """
import django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
user = get_user_model().objects.create_superuser("simulator", "simulator@localhost", None)
print(Token.objects.create(user=user).key)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("simulate")
    env = gunicorn_support.server_env(
        folder,
        HYBRIDREC_EXPERIMENT_FLUSH_SECONDS=0.5,
        HYBRIDREC_EXPERIMENT_BASELINE_RATE=P0,
        HYBRIDREC_EXPERIMENT_MIN_EFFECT=DELTA,
        HYBRIDREC_EXPERIMENT_POWER=POWER,
        HYBRIDREC_THROTTLE_EVENTS="1000000/min",
        HYBRIDREC_THROTTLE_BATCH="1000000/min",
        HYBRIDREC_THROTTLE_MODELS="1000000/min",
    )
    gunicorn_support.prepare(env, folder)
    token = processes.run_python(SIMULATOR, env)
    with gunicorn_support.gunicorn(env, folder / "gunicorn.log", workers=2, threads=2) as url:
        yield url, token


def simulate(server, seed, delta):
    url, token = server
    out = StringIO()
    call_command(
        "simulate_experiment",
        url=url,
        token=token,
        p0=P0,
        delta=delta,
        min_effect=DELTA,
        power=POWER,
        k=K,
        seed=seed,
        stop=True,
        json=True,
        stdout=out,
    )
    return json.loads(out.getvalue())


def test_a_candidate_3_points_better_is_called_at_the_planned_size(server):
    summary = simulate(server, seed=7, delta=DELTA)
    results = summary["results"]
    control, candidate = results["arms"]
    assert summary["planned_impressions_per_arm"] == results["plan"]["impressions_per_arm"] == PLANNED == 2375
    assert results["planned_size_reached"]
    for row in (control, candidate):
        assert PLANNED <= row["impressions"] < PLANNED + K  # read at the planned size, not later
        assert row["served"] >= row["impressions"] / K
    assert candidate["vs_control"]["ctr"]["p_adjusted"] < 0.05
    assert candidate["vs_control"]["ctr"]["significant"] is True
    assert candidate["vs_control"]["ctr"]["difference"] > 0
    assert candidate["ctr"]["low"] <= P0 + DELTA <= candidate["ctr"]["high"]
    print(
        f"seed 7: control {control['ctr']['rate']:.4f}, candidate {candidate['ctr']['rate']:.4f} at "
        f"{candidate['impressions']} impressions per arm, p = {candidate['vs_control']['ctr']['p_adjusted']:.2g}"
    )


def test_a_few_a_a_seeds_through_the_api_call_no_difference_but_by_chance(server):
    called = []
    for seed in (101, 102, 103):
        results = simulate(server, seed=seed, delta=0.0)["results"]
        assert results["planned_size_reached"]
        versus = results["arms"][1]["vs_control"]["ctr"]
        called.append(versus["significant"])
        print(f"A/A seed {seed}: p = {versus['p_adjusted']:.3f}")
    # Each is called with probability 0.05: two or more of three would happen 0.7 % of the time.
    assert sum(called) <= 1, called
