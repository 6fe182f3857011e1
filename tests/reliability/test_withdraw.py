"""In one process: a served file that changes or vanishes, a start on a bad file, the registry's withdrawal.

These exercise the same code as the gunicorn tests, without a server, so each case is cheap.
"""

import os
import stat
from pathlib import Path

import pytest
from django.db import OperationalError

from modelstore import selectors, services
from modelstore.models import ActivationEvent, ModelVersion
from recommendations.serving import get_cache, reset_cache
from tests import factories

pytestmark = pytest.mark.django_db

HEALTH = "/api/v1/health/"


def file_of(settings, version):
    return Path(settings.MEDIA_ROOT) / version.file.name


def check_now(cache):
    cache._next_check = 0.0
    return cache.get("cf")


@pytest.fixture
def second_active(cf_version, cf_version_two):
    """Return (first, second): first was active before, second is active now."""
    services.version_activate(version=cf_version_two)
    return cf_version, cf_version_two


def test_stored_bundle_files_are_read_only(settings, cf_version):
    mode = file_of(settings, cf_version).stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_a_served_file_that_vanishes_is_replaced_by_the_last_good_version_at_the_next_check(
    settings, second_active
):
    first, second = second_active
    cache = get_cache()
    assert cache.get("cf").target.version_id == second.pk

    file_of(settings, second).unlink()

    assert check_now(cache).target.version_id == first.pk
    second.refresh_from_db()
    assert (second.status, second.is_active) == ("failed", False)
    assert "was deleted" in second.error
    event = ActivationEvent.objects.first()
    assert (event.action, event.user_id, event.to_label) == ("quarantine", None, "cf-one")
    health = cache.health()
    assert health["status"] == "degraded"
    assert health["reasons"] == [
        "cf version cf-two was withdrawn by the system: its file was deleted; cf-one serves"
    ]


def test_a_served_file_changed_in_place_stops_being_served_at_the_next_check(settings, second_active):
    first, second = second_active
    cache = get_cache()
    cache.get("cf")
    path = file_of(settings, second)
    path.chmod(0o644)
    with open(path, "r+b") as handle:  # same size, other bytes: what a bad copy does
        handle.seek(path.stat().st_size // 2)
        handle.write(b"\xff" * 16)

    assert check_now(cache).target.version_id == first.pk
    second.refresh_from_db()
    assert second.status == "failed"
    assert "changed on disk" in second.error


def test_the_next_request_does_not_read_a_truncated_file_whatever_the_check_interval(settings, second_active):
    settings.HYBRIDREC_VERSION_CHECK_SECONDS = 3600
    first, second = second_active
    cache = get_cache()
    assert cache.get("cf").target.version_id == second.pk
    path = file_of(settings, second)
    path.chmod(0o644)
    os.truncate(path, 0)  # reading its pages now would kill the process with SIGBUS

    model = cache.get("cf")

    assert model.target.version_id == first.pk
    assert model.engine.recommend("C0001", 5)
    second.refresh_from_db()
    assert second.status == "failed"


def test_a_touched_file_with_the_same_content_is_served_again(settings, second_active):
    first, second = second_active
    cache = get_cache()
    cache.get("cf")
    path = file_of(settings, second)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

    check_now(cache)  # stops serving it, re-hashes it: the content is the same
    assert check_now(cache).target.version_id == second.pk
    second.refresh_from_db()
    assert (second.status, second.is_active) == ("ready", True)
    assert not ActivationEvent.objects.filter(action="quarantine").exists()
    assert cache.health()["status"] == "ok"


def test_a_process_starting_while_the_active_file_is_bad_serves_the_last_good_version(
    settings, second_active
):
    first, second = second_active
    path = file_of(settings, second)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    reset_cache()

    model = get_cache().get("cf")

    assert model.target.version_id == first.pk
    second.refresh_from_db()
    assert (second.status, second.is_active) == ("failed", False)
    assert ModelVersion.objects.get(kind="cf", is_active=True) == first


def test_without_the_database_a_changed_file_still_stops_being_served(
    monkeypatch, settings, cf_version, cf_version_two
):
    cache = get_cache()
    cache.get("cf")
    services.version_activate(version=cf_version_two)
    assert check_now(cache).target.version_id == cf_version_two.pk  # cf-one stays in memory

    def unreachable(*args, **kwargs):
        raise OperationalError("the database is down")

    for name in ("serving_signature", "last_good_versions"):
        monkeypatch.setattr(selectors, name, unreachable)
    monkeypatch.setattr(services, "version_quarantine", unreachable)
    file_of(settings, cf_version_two).unlink()

    assert check_now(cache).target.version_id == cf_version.pk
    health = cache.health()
    assert health["models"]["cf"]["fault"]["id"] == cf_version_two.pk
    assert "cf version cf-two stopped being served: its file was deleted; cf-one serves" in health["reasons"]


# --- the registry's side ------------------------------------------------------------------


def test_quarantine_of_the_active_version_rolls_back_to_the_most_recently_active_ready_one(
    register, second_active
):
    first, second = second_active
    third = register("cf", factories.cf_array_set(seed=2), label="cf-three")
    services.version_activate(version=third)

    event = services.version_quarantine(version=third, reason="its file was deleted")

    assert (event.action, event.from_version, event.to_version, event.reason) == (
        "quarantine",
        third,
        second,
        "its file was deleted",
    )
    assert services.version_quarantine(version=third, reason="again") is None  # another process, later
    assert ActivationEvent.objects.filter(action="quarantine").count() == 1


def test_quarantine_with_nothing_to_go_back_to_leaves_no_active_version(cf_version):
    event = services.version_quarantine(version=cf_version, reason="its file was deleted")

    assert (event.from_version, event.to_version) == (cf_version, None)
    assert not ModelVersion.objects.filter(is_active=True).exists()


def test_quarantine_of_an_inactive_version_only_marks_it_failed(second_active):
    first, second = second_active
    assert services.version_quarantine(version=first, reason="its file changed") is None
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.error, second.is_active) == ("failed", "its file changed", True)


# --- the database, seen from the API --------------------------------------------------------


def test_reads_that_need_the_database_answer_503_database_unavailable(monkeypatch, client_for, cf_version):
    from modelstore import selectors

    api = client_for("staff+view_modelversion")

    def unreachable(*args, **kwargs):
        raise OperationalError('connection to server at "db.internal" failed')

    monkeypatch.setattr(selectors, "version_list", unreachable)
    response = api.get("/api/v1/models/")

    assert response.status_code == 503
    assert response.json() == {
        "detail": "the database cannot be reached; try again shortly",
        "code": "database_unavailable",
    }
