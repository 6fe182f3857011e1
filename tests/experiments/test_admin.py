"""The experiments in the admin: start form, the page with arms and results, stop with promotion."""

import pytest

from modelstore.models import ModelVersion
from recommendations.experiments import services
from recommendations.experiments.models import Experiment

pytestmark = pytest.mark.django_db

LIST = "/admin/experiments/experiment/"


@pytest.fixture
def admin(client, superuser):
    client.force_login(superuser)
    return client


def test_start_from_the_admin_then_see_arms_results_and_audit(admin, cf_version, cf_version_two):
    page = admin.get(f"{LIST}start/")
    assert page.status_code == 200 and b"Start an experiment" in page.content

    response = admin.post(
        f"{LIST}start/",
        {
            "kind": "cf",
            "name": "admin split",
            "control_share": "0.6",
            "candidate_1": cf_version_two.pk,
            "share_1": "0.4",
        },
    )

    experiment = Experiment.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"{LIST}{experiment.pk}/change/")
    shown = admin.get(response["Location"]).content.decode()
    assert 'id="experiment-results"' in shown
    assert "cf-two" in shown and "control" in shown
    assert "Started" in shown  # the audit inline
    assert "Stop…" in shown


def test_the_start_form_names_the_control_of_each_kind_under_its_share(admin, cf_version, cf_version_two):
    html = admin.get(f"{LIST}start/").content.decode()

    help_text = html[html.index('id="id_control_share_helptext"') :].split("</div>")[0]
    assert f"Collaborative filtering: “{cf_version.label}” (version {cf_version.pk})" in help_text
    assert "Content-based: none active" in help_text


def test_the_start_form_says_what_is_wrong(admin, cf_version, cf_version_two):
    response = admin.post(
        f"{LIST}start/",
        {
            "kind": "cf",
            "name": "bad",
            "control_share": "0.6",
            "candidate_1": cf_version_two.pk,
            "share_1": "0.6",
        },
    )

    assert response.status_code == 200
    assert "the shares must sum to 1, they sum to 1.2" in response.content.decode()
    assert not Experiment.objects.exists()


def test_stop_page_promotes_a_candidate(admin, cf_version, cf_version_two):
    experiment = services.experiment_start(
        kind="cf",
        name="x",
        arms=[{"version": cf_version.pk, "share": 0.5}, {"version": cf_version_two.pk, "share": 0.5}],
    )
    confirm = admin.get(f"{LIST}{experiment.pk}/stop/").content.decode()
    assert "Stop and promote B (cf-two)" in confirm

    response = admin.post(f"{LIST}{experiment.pk}/stop/", {"promote": cf_version_two.pk, "reason": "B wins"})

    assert response.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.outcome, experiment.reason) == ("promoted", "B wins")
    assert ModelVersion.objects.get(kind="cf", is_active=True) == cf_version_two


def test_starting_and_stopping_take_the_activate_permission(client, cf_version, cf_version_two):
    from tests.support import roles

    experiment = services.experiment_start(
        kind="cf",
        name="x",
        arms=[{"version": cf_version.pk, "share": 0.5}, {"version": cf_version_two.pk, "share": 0.5}],
    )
    client.force_login(roles.person("staff+view_modelversion"))
    assert client.get(LIST).status_code == 200
    assert client.get(f"{LIST}{experiment.pk}/change/").status_code == 200
    assert client.get(f"{LIST}start/").status_code == 403
    assert client.post(f"{LIST}{experiment.pk}/stop/", {"reason": ""}).status_code == 403
    experiment.refresh_from_db()
    assert experiment.status == "running"
