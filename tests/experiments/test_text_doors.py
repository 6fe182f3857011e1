"""Text the JSON doors take lands in columns: what PostgreSQL cannot store is a 400, never a 500."""

import json

import pytest

from recommendations.experiments.models import Experiment

pytestmark = pytest.mark.django_db

UNSTORABLE = ["a\x00b", "a\ud800b", "\udfff"]


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("text", UNSTORABLE)
def test_an_experiment_name_or_stop_reason_the_database_cannot_store_is_a_400(
    client_for, cf_version, cf_version_two, text
):
    root = client_for("superuser")
    arms = [{"version": cf_version.pk, "share": 0.5}, {"version": cf_version_two.pk, "share": 0.5}]
    refused = post(root, "/api/v1/experiments/", {"kind": "cf", "name": text, "arms": arms})
    assert refused.status_code == 400 and "name" in refused.json()["errors"]
    assert Experiment.objects.count() == 0
    started = post(root, "/api/v1/experiments/", {"kind": "cf", "name": "fine", "arms": arms})
    assert started.status_code == 201
    stop = f"/api/v1/experiments/{started.json()['id']}/stop/"
    refused = post(root, stop, {"keep_control": True, "reason": text})
    assert refused.status_code == 400 and "reason" in refused.json()["errors"]
    assert Experiment.objects.get().status == "running"


@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize("field", ["customer_ids", "exclude"])
def test_batch_ids_the_database_cannot_store_are_a_400(client_for, cf_version, text, field):
    body = {"customer_ids": ["C0001"], field: [text]}
    answer = post(client_for("user"), "/api/v1/recommendations/batch/", body)
    assert answer.status_code == 400
    assert field in answer.json()["errors"]
