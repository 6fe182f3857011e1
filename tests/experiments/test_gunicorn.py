"""A real gunicorn with two workers: an experiment reaches both at once, and a promotion fails nothing.

The workers poll only every 60 s, so only the announcement on Redis (as for an activation) can
make them pick up a start or a stop within the bound. The test's own process computes every
customer's arm and both workers must agree with it.
"""

import json
import time

import pytest
import requests

from recommendations.experiments.assignment import Assignment
from tests.support.celery_worker import broker_url
from tests.support.gunicorn import gunicorn, prepare, python, server_env
from tests.support.load import RecommendationLoad

pytestmark = [pytest.mark.gunicorn, pytest.mark.slow, pytest.mark.redis]

# The target is 1 s; the rest is room for a busy two-core machine. Polling alone would take 60 s.
NOTICE_SECONDS = 8.0
CUSTOMERS = [f"C{i:04d}" for i in range(40)]

START = """
import json, sys, time, django
django.setup()
from recommendations.experiments import services
experiment = services.experiment_start(
    kind="cf", name="live", arms=[{"version": int(sys.argv[1]), "share": 0.5}, {"version": int(sys.argv[2]), "share": 0.5}]
)
print(json.dumps({"id": experiment.pk, "at": time.monotonic()}))
"""

STOP = """
import json, sys, time, django
django.setup()
from recommendations.experiments import services
from recommendations.experiments.models import Experiment
services.experiment_stop(experiment=Experiment.objects.get(pk=int(sys.argv[1])), promote=int(sys.argv[2]))
print(json.dumps({"at": time.monotonic()}))
"""


def workers_serving(url, experiment_id, *, timeout, workers=2):
    """Ask health on fresh connections until ``workers`` pids serve ``experiment_id`` (or none, for None)."""
    seen = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(seen) < workers:
        report = requests.get(f"{url}/api/v1/health/", timeout=5).json()
        served = report["experiments"].get("cf", {}).get("id")
        if served == experiment_id:
            seen.setdefault(report["pid"], time.monotonic())
        else:
            seen.pop(report["pid"], None)
    return seen


@pytest.fixture
def server(tmp_path):
    env = server_env(tmp_path, REDIS_URL=broker_url(), HYBRIDREC_VERSION_CHECK_SECONDS=60)
    prepared = prepare(env, tmp_path)
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=2) as url:
        yield {"url": url, "env": env, **prepared}


def test_both_workers_serve_the_arms_at_once_and_agree_on_every_customer(server):
    url, (control, candidate) = server["url"], server["versions"]
    headers = {"Authorization": f"Token {server['token']}"}

    started = json.loads(python(START, server["env"], str(control), str(candidate)))
    serving = workers_serving(url, started["id"], timeout=NOTICE_SECONDS * 2)

    assert len(serving) == 2, serving
    assert max(serving.values()) - started["at"] <= NOTICE_SECONDS, (serving, started)
    expected = Assignment(started["id"], [0.5, 0.5])
    versions = [control, candidate]
    for customer_id in CUSTOMERS:
        for _ in range(3):  # fresh connections: both workers answer
            answer = requests.get(
                f"{url}/api/v1/recommendations/{customer_id}/", headers=headers, timeout=5
            ).json()
            arm = expected.arm_index(customer_id)
            assert answer["experiment"] == {
                "id": started["id"],
                "arm": ["control", "B"][arm],
                "version": versions[arm],
            }
            assert answer["model"]["cf"]["id"] == versions[arm]


def test_stopping_with_promotion_under_load_fails_no_request(server):
    url, (control, candidate) = server["url"], server["versions"]
    headers = {"Authorization": f"Token {server['token']}"}
    started = json.loads(python(START, server["env"], str(control), str(candidate)))
    assert len(workers_serving(url, started["id"], timeout=NOTICE_SECONDS * 2)) == 2

    with RecommendationLoad(f"{url}/api/v1/recommendations/C0001/?k=5", headers, clients=3) as load:
        assert load.wait_for_answers(after=started["at"], count=50)
        stopped = json.loads(python(STOP, server["env"], str(started["id"]), str(candidate)))
        dropped = workers_serving(url, None, timeout=NOTICE_SECONDS * 2)
        assert len(dropped) == 2, dropped
        assert max(dropped.values()) - stopped["at"] <= NOTICE_SECONDS
        assert load.wait_for_answers(after=max(dropped.values()), count=50)

    assert load.failures == []
    assert set(load.answers_after(max(dropped.values()))) == {candidate}


COUNT = """
import django
django.setup()
from recommendations.experiments.models import Exposure
print(Exposure.objects.count())
"""


def test_a_worker_that_exits_normally_writes_what_it_buffered(tmp_path):
    env = server_env(tmp_path, HYBRIDREC_EXPERIMENT_FLUSH_SECONDS=600)  # only the exit can write
    prepared = prepare(env, tmp_path)
    control, candidate = prepared["versions"]
    headers = {"Authorization": f"Token {prepared['token']}"}
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=2) as url:
        started = json.loads(python(START, env, str(control), str(candidate)))
        assert len(workers_serving(url, started["id"], timeout=10)) == 2
        answers = [
            requests.get(f"{url}/api/v1/recommendations/{customer_id}/", headers=headers, timeout=5).json()
            for customer_id in CUSTOMERS
        ]
        assert all(answer["experiment"]["id"] == started["id"] for answer in answers)
        assert int(python(COUNT, env)) == 0  # buffered, not yet written
    assert int(python(COUNT, env)) == len(CUSTOMERS)  # SIGTERM: each worker wrote its buffer on exit
