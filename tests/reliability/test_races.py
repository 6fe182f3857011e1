"""Concurrent rollbacks, and an activation racing an experiment's start, run one after another."""

import threading

import pytest
from django.db import connection, connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from modelstore import services as registry
from modelstore.models import ActivationEvent, ModelVersion
from recommendations.experiments import services as experiments
from recommendations.experiments.models import Experiment
from tests import factories
from tests.conftest import skip_or_fail

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 6


def test_concurrent_rollbacks_never_answer_500(register, client_for, run_in_threads):
    if connection.vendor != "postgresql":
        skip_or_fail("row locks need the real PostgreSQL (DATABASE_URL)")
    for seed in range(4):  # cf-0 → cf-1 → cf-2 → cf-3, each activated in turn
        register("cf", factories.cf_array_set(seed=seed), activate=True, label=f"cf-{seed}")
    client_for("superuser")  # makes the superuser and its token
    token = Token.objects.get(user__is_superuser=True).key

    def rollback():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = client.post("/api/v1/models/rollback/", {"kind": "cf"}, format="json")
        return response.status_code, response.json()

    answers = run_in_threads(rollback, THREADS)

    statuses = sorted(status for status, _ in answers)
    assert 500 not in statuses, answers
    rolled_to = [body["label"] for status, body in answers if status == 200]
    refused = [body["code"] for status, body in answers if status != 200]
    # One after the other: cf-3 → cf-2 → cf-1 → cf-0, then nothing earlier to go back to.
    assert rolled_to == ["cf-2", "cf-1", "cf-0"] or sorted(rolled_to) == ["cf-0", "cf-1", "cf-2"], answers
    assert set(refused) <= {"nothing_to_roll_back"}, answers
    assert ModelVersion.objects.get(is_active=True).label == "cf-0"
    assert ActivationEvent.objects.filter(action="rollback").count() == 3


def test_an_activation_and_an_experiment_start_at_once_never_leave_the_control_inactive(register):
    if connection.vendor != "postgresql":
        skip_or_fail("row locks need the real PostgreSQL (DATABASE_URL)")
    control = register("cf", factories.cf_array_set(seed=0), activate=True, label="cf-a")
    candidate = register("cf", factories.cf_array_set(seed=1), label="cf-b")
    other = register("cf", factories.cf_array_set(seed=2), label="cf-c")
    arms = [{"version": control.pk, "share": 0.5}, {"version": candidate.pk, "share": 0.5}]
    outcomes = set()
    for round_number in range(8):
        barrier, done = threading.Barrier(2), {}

        def run(name, call, barrier=barrier, done=done):
            barrier.wait()
            try:
                call()
                done[name] = "done"
            except Exception as exc:  # the refusal each side may meet
                done[name] = getattr(exc, "code", type(exc).__name__)
            finally:
                connections.close_all()

        threads = [
            threading.Thread(
                target=run,
                args=(
                    "start",
                    lambda n=round_number: experiments.experiment_start(kind="cf", name=f"r{n}", arms=arms),
                ),
            ),
            threading.Thread(target=run, args=("activate", lambda: registry.version_activate(version=other))),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

        outcomes.add((done["start"], done["activate"]))
        assert (done["start"], done["activate"]) in {
            ("done", "experiment_running"),
            ("invalid_arms", "done"),
        }, done
        running = Experiment.objects.filter(status="running").first()
        active = ModelVersion.objects.get(kind="cf", is_active=True)
        if running is not None:
            assert running.arms.get(is_control=True).version_id == active.pk
            experiments.experiment_stop(experiment=running, keep_control=True)
        registry.version_activate(version=control)
    print(f"outcomes over 8 rounds: {sorted(outcomes)}")
