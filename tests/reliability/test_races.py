"""Concurrent rollbacks run one after another: none answers 500 or rolls back to the same version twice."""

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from modelstore.models import ActivationEvent, ModelVersion
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
