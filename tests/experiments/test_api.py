"""The experiments API: start, list, show with results, stop; every refusal a JSON 4xx."""

import pytest

from modelstore.models import ModelVersion
from recommendations.experiments import exposures
from recommendations.experiments.models import Experiment
from recommendations.serving import get_cache
from tests.experiments.conftest import notice_now

pytestmark = pytest.mark.django_db

LIST = "/api/v1/experiments/"


@pytest.fixture
def manager(client_for):
    return client_for("staff+activate_modelversion+view_modelversion")


def body(control, *candidates, shares=None):
    versions = [control, *candidates]
    shares = shares or [1 / len(versions)] * len(versions)
    return {
        "kind": "cf",
        "name": "new ranking",
        "arms": [{"version": v.pk, "share": s} for v, s in zip(versions, shares, strict=True)],
    }


def test_start_show_and_stop_with_promotion(manager, cf_version, cf_version_two):
    started = manager.post(LIST, body(cf_version, cf_version_two, shares=[0.8, 0.2]), format="json")

    assert started.status_code == 201, started.json()
    experiment = started.json()
    assert started["Location"] == f"{LIST}{experiment['id']}/"
    assert [(a["name"], a["version"], a["share"]) for a in experiment["arms"]] == [
        ("control", cf_version.pk, 0.8),
        ("B", cf_version_two.pk, 0.2),
    ]
    assert experiment["status"] == "running"
    assert [r["served"] for r in experiment["results"]["arms"]] == [0, 0]

    notice_now(get_cache())
    for n in range(20):
        manager.get(f"/api/v1/recommendations/C{n:04d}/")
    exposures.buffer().flush()
    shown = manager.get(f"{LIST}{experiment['id']}/").json()
    assert sum(r["served"] for r in shown["results"]["arms"]) == 20

    stopped = manager.post(f"{LIST}{experiment['id']}/stop/", {"promote": cf_version_two.pk}, format="json")
    assert stopped.status_code == 200
    assert (stopped.json()["status"], stopped.json()["outcome"]) == ("stopped", "promoted")
    assert ModelVersion.objects.get(kind="cf", is_active=True) == cf_version_two
    again = manager.post(f"{LIST}{experiment['id']}/stop/", {"keep_control": True}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "experiment_not_running"


def test_the_list_filters_by_kind_and_status(manager, cf_version, cf_version_two):
    manager.post(LIST, body(cf_version, cf_version_two), format="json")

    assert manager.get(LIST, {"status": "running"}).json()["count"] == 1
    assert manager.get(LIST, {"kind": "cb"}).json()["count"] == 0
    assert manager.get(LIST, {"status": "bogus"}).status_code == 400


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda b: b.update(arms=b["arms"][:1]), "invalid"),
        (lambda b: b["arms"][1].update(share=0.1), "invalid_arms"),
        (lambda b: b["arms"][1].update(share="half"), "invalid"),
        (lambda b: b["arms"][1].update(version="2"), "invalid"),
        (lambda b: b["arms"][1].update(version=424242), "invalid_arms"),
        (lambda b: b.update(kind="xx"), "invalid"),
        (lambda b: b.pop("name"), "invalid"),
        (lambda b: b.update(arms="all"), "invalid"),
    ],
)
def test_bad_starts_are_json_400s_and_start_nothing(manager, cf_version, cf_version_two, change, code):
    request = body(cf_version, cf_version_two)
    change(request)

    response = manager.post(LIST, request, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Experiment.objects.exists()


def test_a_second_start_for_the_kind_is_a_409(manager, cf_version, cf_version_two):
    manager.post(LIST, body(cf_version, cf_version_two), format="json")
    response = manager.post(LIST, body(cf_version, cf_version_two), format="json")
    assert response.status_code == 409 and response.json()["code"] == "experiment_running"


def test_bad_stops_are_json_4xx(manager, cf_version, cf_version_two):
    experiment = manager.post(LIST, body(cf_version, cf_version_two), format="json").json()
    stop = f"{LIST}{experiment['id']}/stop/"

    assert manager.post(stop, {}, format="json").status_code == 400
    both = manager.post(stop, {"keep_control": True, "promote": cf_version_two.pk}, format="json")
    assert both.status_code == 400
    control = manager.post(stop, {"promote": cf_version.pk}, format="json")
    assert control.status_code == 400 and "is the control" in control.json()["detail"]
    assert manager.post(f"{LIST}999999/stop/", {"keep_control": True}, format="json").status_code == 404
    assert manager.get(f"{LIST}abc/").status_code == 404
    assert manager.get(f"{LIST}{'9' * 20}/").status_code == 404


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        ("anonymous", 401, 401),
        ("user", 403, 403),
        ("staff+view_modelversion", 200, 403),
        ("staff+activate_modelversion", 403, 201),
    ],
)
def test_permissions(client_for, cf_version, cf_version_two, role, read, write):
    client = client_for(role)
    assert client.get(LIST).status_code == read
    assert client.post(LIST, body(cf_version, cf_version_two), format="json").status_code == write
