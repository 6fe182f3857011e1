"""A node whose cached copy of a bundle is bad replaces it; only bad bytes in storage withdraw it."""

import hashlib
import os

import pytest

from modelstore import node_cache, selectors, services
from modelstore.models import ActivationEvent, ModelVersion
from recommendations.serving import reset_cache
from tests import factories

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.multinode,
    pytest.mark.usefixtures("fresh_model_cache"),
]

RECS = "/api/v1/recommendations/{}/"
HEALTH = "/api/v1/health/"


def put_bytes_under(sha256, data, *, rename=False):
    """Make the node cache's file for ``sha256`` hold ``data`` (another bundle's bytes)."""
    path = node_cache.cached_file(sha256)
    if rename:  # as a stray copy would: a new file under the name, the old one still open
        temporary = path.with_suffix(".stray")
        temporary.write_bytes(data)
        os.replace(temporary, path)
    else:
        path.unlink()
        path.write_bytes(data)
    path.chmod(0o444)
    return path


def other_bytes(version):
    return node_cache.cached_file(version.sha256).read_bytes()


def test_a_node_with_a_bad_copy_downloads_it_again_and_serves_the_active_version(
    s3_storage, register, client_for
):
    active = register("cf", factories.cf_array_set(seed=0), activate=True)
    other = register("cf", factories.cf_array_set(seed=1))
    path = put_bytes_under(active.sha256, other_bytes(other))
    before = node_cache.downloads

    api = client_for("user")
    answer = api.get(RECS.format("C0001"))  # a process starting on this node
    health = api.get(HEALTH).json()

    assert answer.status_code == 200, answer.content
    assert answer.json()["model"]["cf"]["sha256"] == active.sha256
    assert health["status"] == "ok", health["reasons"]
    assert health["models"]["cf"]["serving_active"] is True
    row = ModelVersion.objects.get(pk=active.pk)
    assert (row.status, row.is_active, row.error) == (ModelVersion.Status.READY, True, "")
    assert not ActivationEvent.objects.filter(action=ActivationEvent.Action.QUARANTINE).exists()
    assert node_cache.downloads - before == 1
    assert hashlib.sha256(path.read_bytes()).hexdigest() == active.sha256


def test_a_copy_replaced_while_served_is_downloaded_again_and_the_version_stays(
    s3_storage, register, client_for
):
    earlier = register("cf", factories.cf_array_set(seed=2), activate=True)
    active = register("cf", factories.cf_array_set(seed=0), activate=True)
    other = register("cf", factories.cf_array_set(seed=1))
    api = client_for("user")
    assert api.get(RECS.format("C0001")).json()["model"]["cf"]["sha256"] == active.sha256

    put_bytes_under(active.sha256, other_bytes(other), rename=True)
    answers = [api.get(RECS.format("C0001")) for _ in range(3)]  # each request checks first

    assert all(answer.status_code == 200 for answer in answers)
    assert answers[-1].json()["model"]["cf"]["sha256"] == active.sha256
    assert selectors.active_version("cf").pk == active.pk
    assert ModelVersion.objects.get(pk=active.pk).status == ModelVersion.Status.READY
    assert ModelVersion.objects.get(pk=earlier.pk).is_active is False


def test_bad_bytes_in_storage_withdraw_the_version_and_the_last_good_one_serves(
    s3_storage, register, client_for
):
    earlier = register("cf", factories.cf_array_set(seed=2), activate=True)
    active = register("cf", factories.cf_array_set(seed=0), activate=True)
    other = register("cf", factories.cf_array_set(seed=1))
    s3_storage.client().put_object(Bucket=s3_storage.name, Key=active.file.name, Body=other_bytes(other))
    put_bytes_under(active.sha256, other_bytes(other))

    answer = client_for("user").get(RECS.format("C0001"))

    assert answer.status_code == 200, answer.content
    assert answer.json()["model"]["cf"]["sha256"] == earlier.sha256
    row = ModelVersion.objects.get(pk=active.pk)
    assert row.status == ModelVersion.Status.FAILED and not row.is_active
    assert "does not have the registered sha256" in row.error
    assert selectors.active_version("cf").pk == earlier.pk
    assert not node_cache.cached_file(active.sha256).exists()  # the bad copy is not kept


def test_verifying_on_a_node_with_a_bad_copy_leaves_the_version_ready(s3_storage, register):
    version = register("cf", factories.cf_array_set(seed=0))
    other = register("cf", factories.cf_array_set(seed=1))
    put_bytes_under(version.sha256, other_bytes(other))

    verified = services.version_verify(version=version)

    assert verified.status == ModelVersion.Status.READY, verified.error
    assert hashlib.sha256(node_cache.cached_file(version.sha256).read_bytes()).hexdigest() == version.sha256


@pytest.mark.slow
def test_measured_a_bad_copy_costs_one_download_like_a_cold_cache(s3_storage, register, client_for, capsys):
    """Print the first answer's seconds with a good, a missing and a bad cached copy (100k users)."""
    import time

    active = register(
        "cf", factories.cf_array_set(n_users=100_000, n_items=2_000, n_factors=64), activate=True
    )
    other = register("cf", factories.cf_array_set(seed=1))
    api, path = client_for("user"), node_cache.cached_file(active.sha256)

    def first_answer_seconds():
        reset_cache()  # a process starting on this node
        before, started = node_cache.downloads, time.perf_counter()
        answer = api.get(RECS.format("C0001"))
        seconds = time.perf_counter() - started
        assert answer.status_code == 200 and answer.json()["model"]["cf"]["sha256"] == active.sha256
        return seconds, node_cache.downloads - before

    good = first_answer_seconds()
    path.unlink()
    cold = first_answer_seconds()
    put_bytes_under(active.sha256, other_bytes(other))
    bad = first_answer_seconds()

    assert (good[1], cold[1], bad[1]) == (0, 1, 1)
    assert ModelVersion.objects.get(pk=active.pk).status == ModelVersion.Status.READY
    with capsys.disabled():
        print(
            f"\nbundle {path.stat().st_size / 1e6:.1f} MB: first answer with a good copy {good[0]:.3f} s, "
            f"no copy {cold[0]:.3f} s, a bad copy {bad[0]:.3f} s"
        )


@pytest.mark.gunicorn
@pytest.mark.slow
def test_one_nodes_bad_copy_stays_on_that_node(s3_storage, register, tmp_path, capsys):
    """Two gunicorn nodes on one bucket: a stray copy on node A is replaced there; B never notices."""
    import time

    from rest_framework.authtoken.models import Token

    from tests.multinode.test_nodes import downloads
    from tests.support import roles
    from tests.support.celery_worker import database_url
    from tests.support.processes import SHARED_SERVICES, get, gunicorn, server_env, wait_until

    active = register("cf", factories.cf_array_set(seed=0), activate=True)
    other = register("cf", factories.cf_array_set(seed=1))
    token, _ = Token.objects.get_or_create(user=roles.person("superuser"))
    headers = {"Authorization": f"Token {token.key}"}
    database = database_url()

    def env(name):
        (tmp_path / name).mkdir()
        return server_env(
            tmp_path / name,
            without=SHARED_SERVICES,
            DATABASE_URL=database,
            HYBRIDREC_VERSION_CHECK_SECONDS=1,
            **s3_storage.env(),
        )

    def served(node):
        response = get(node.url + RECS.format("C0001"), headers=headers, timeout=10)
        return response.status_code, response.json()["model"]["cf"]["sha256"] if response.ok else None

    with (
        gunicorn(env("a"), tmp_path / "a.log", workers=2, threads=1, ready_path="/api/v1/health/live/") as a,
        gunicorn(env("b"), tmp_path / "b.log", workers=2, threads=1, ready_path="/api/v1/health/live/") as b,
    ):
        wait_until(
            lambda: all(served(node) == (200, active.sha256) for node in (a, b) for _ in range(6)),
            timeout=30,
            interval=0.2,
            message="both nodes serving the active version",
        )
        stray = tmp_path / "a" / "media" / "cache" / f"{active.sha256}.joblib"
        replacement = stray.with_suffix(".stray")
        replacement.write_bytes(other_bytes(other))
        os.replace(replacement, stray)  # node A's copy now holds another bundle's bytes
        answers = []
        deadline = time.monotonic() + 5  # several check intervals of every worker
        while time.monotonic() < deadline:
            answers += [served(a), served(b)]

        with capsys.disabled():
            print(
                f"\n{len(answers)} answers in the 5 s after node A's copy went bad: {answers.count((200, active.sha256))} from the active version"
            )
        assert set(answers) == {(200, active.sha256)}
        assert hashlib.sha256(stray.read_bytes()).hexdigest() == active.sha256
        assert downloads(a.log_tail(10**7), active.sha256) == 2  # the start, then the bad copy
        assert downloads(b.log_tail(10**7), active.sha256) == 1
    row = ModelVersion.objects.get(pk=active.pk)
    assert (row.status, row.is_active) == (ModelVersion.Status.READY, True)
    assert not ActivationEvent.objects.filter(action=ActivationEvent.Action.QUARANTINE).exists()
