"""The demo: data a factor model learns and popularity cannot, a registry that keeps the user's work,
a login that stays the same, and training into the artifact roots."""

import datetime as dt
import io
import re
import stat

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from modelstore.bundles.layout import cb_arrays
from modelstore.models import ModelVersion
from recommendations.training.demo import make_demo_artifacts
from recommendations.training.demo_registry import LABELS, demo_prepare
from recommendations.training.pipeline import train_models
from tests import factories

SMALL = {"users": 3000, "items": 300}


def test_cf_beats_popularity_clearly_on_demo_data(tmp_path):
    data = make_demo_artifacts(tmp_path / "data", factors=16, seed=7, **SMALL)
    summary = train_models(
        interactions_path=data["interactions_csv"],
        out_dir=tmp_path / "run",
        split_date=dt.date(2024, 11, 1),
        factors=32,
        iterations=10,
    )
    ndcg = {name: summary["metrics"][name]["ndcg"] for name in ("cf", "popularity")}
    assert ndcg["cf"] >= 1.4 * ndcg["popularity"], ndcg


def test_demo_titles_follow_tastes(tmp_path):
    """Items bought by the same customers share words in their titles more often than random pairs."""
    import numpy as np
    import pandas as pd

    data = make_demo_artifacts(tmp_path / "data", factors=8, seed=3, users=2000, items=200)
    events = pd.read_csv(data["interactions_csv"], dtype=str)
    titles = pd.read_csv(data["items_csv"], dtype=str).set_index("item_id")["title"]
    words = {item: set(title.split()) for item, title in titles.items()}
    rng = np.random.default_rng(0)
    baskets = [group.tolist() for _, group in events.groupby("customer_id")["item_id"] if len(group) >= 2]
    together = [
        len(words[a] & words[b]) > 0 for a, b in (rng.choice(basket, 2, replace=False) for basket in baskets)
    ]
    items = titles.index.to_numpy()
    random_pairs = [len(words[a] & words[b]) > 0 for a, b in rng.choice(items, (len(together), 2))]
    assert np.mean(together) > 1.4 * np.mean(random_pairs)


@pytest.mark.django_db
def test_demo_prepare_evaluates_two_cf_versions_and_activates_the_default(tmp_path, settings):
    result = demo_prepare(data_dir=tmp_path / "data", users=1500, items=150)

    versions = {v.label: v for v in ModelVersion.objects.all()}
    assert set(versions) == set(LABELS.values())
    assert all(v.status == ModelVersion.Status.READY for v in versions.values())
    assert {v.label for v in ModelVersion.objects.filter(is_active=True)} == {"demo-cf", "demo-cb"}
    assert versions["demo-cf"].n_factors > versions["demo-cf-weak"].n_factors == 8
    for label in ("demo-cf", "demo-cf-weak"):
        strategies = versions[label].metrics["strategies"]
        assert set(strategies) == {"cf", "cb", "hybrid", "popular"}  # every column of the admin's table
        assert all(strategies[name]["ndcg"] > 0 for name in strategies)
    # Trained under the artifact root, so the admin's Build page lists the runs.
    root = settings.HYBRIDREC_ARTIFACT_ROOTS[0]
    assert (root / "demo-default" / "cf").is_dir() and (root / "demo-weak" / "cf").is_dir()
    assert result.activated and not result.left_active


@pytest.mark.django_db
def test_demo_never_replaces_the_users_active_versions(tmp_path, register):
    mine = register("cf", factories.cf_array_set(), activate=True, label="my-cf")
    out = io.StringIO()

    call_command("demo_setup", str(tmp_path / "data"), "--users", "1500", "--items", "150", stdout=out)

    mine.refresh_from_db()
    assert mine.is_active
    assert ModelVersion.objects.get(label="demo-cb").is_active  # no CB was active: the demo's is
    assert not ModelVersion.objects.get(label="demo-cf").is_active
    assert "Left cf version my-cf active" in out.getvalue()
    assert "demo-cf-weak" in out.getvalue() and "cf/popular" in out.getvalue()


@pytest.mark.django_db
def test_the_demo_versions_are_made_and_activated_by_the_demo_user_who_then_gets_a_password(tmp_path):
    call_command(
        "demo_setup", str(tmp_path / "data"), "--users", "1500", "--items", "150", stdout=io.StringIO()
    )

    demo = get_user_model().objects.get(username="demo")
    active = ModelVersion.objects.get(label="demo-cf")
    assert active.activated_by == demo and active.created_by == demo
    assert not demo.has_usable_password()  # nobody can log in with it before demo_user

    out = io.StringIO()
    call_command("demo_user", "--password-file", str(tmp_path / "pw"), stdout=out)

    password = (tmp_path / "pw").read_text().strip()
    assert admin_line(out.getvalue()).endswith(f"password {password}")
    assert get_user_model().objects.get(username="demo").check_password(password)


@pytest.mark.django_db
def test_running_the_demo_again_changes_nothing(tmp_path, register):
    call_command(
        "demo_setup", str(tmp_path / "data"), "--users", "1500", "--items", "150", stdout=io.StringIO()
    )
    demo_cf = ModelVersion.objects.get(label="demo-cf")
    mine = register("cf", factories.cf_array_set(), activate=True, label="my-cf")
    out = io.StringIO()

    call_command("demo_setup", str(tmp_path / "data"), "--users", "1500", "--items", "150", stdout=out)

    assert "already set up" in out.getvalue()
    assert ModelVersion.objects.get(pk=mine.pk).is_active
    assert ModelVersion.objects.filter(kind="cf").count() == 3
    assert not ModelVersion.objects.get(pk=demo_cf.pk).is_active


def admin_line(output):
    return next(line for line in output.splitlines() if line.startswith("admin:"))


@pytest.fixture
def demo_cf(register):
    return register("cf", factories.cf_array_set(), activate=True, label="demo-cf")


@pytest.mark.django_db
def test_demo_password_is_stable_until_reset(tmp_path, demo_cf):
    password_file = tmp_path / "demo" / "admin-password"

    def run(*extra):
        out = io.StringIO()
        call_command("demo_user", "--password-file", str(password_file), *extra, stdout=out)
        return admin_line(out.getvalue())

    first = run()
    password = password_file.read_text().strip()
    assert first.endswith(f"password {password}")
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    user = get_user_model().objects.get(username="demo")
    assert user.is_superuser and user.check_password(password)

    assert run() == first  # the same password, shown again
    assert get_user_model().objects.get(username="demo").check_password(password)

    reset = run("--reset-password")
    new_password = password_file.read_text().strip()
    assert new_password != password and reset.endswith(f"password {new_password} (new)")
    assert get_user_model().objects.get(username="demo").check_password(new_password)


@pytest.mark.django_db
def test_every_printed_curl_line_answers_with_a_cf_model_of_another_catalogue(tmp_path, demo_cf, register):
    own_items = cb_arrays(item_ids=[f"SKU-{i}" for i in range(12)], item_vectors=np.eye(12, 4) + 0.1)
    register("cb", own_items, activate=True, label="demo-cb")  # knows none of the CF items
    out = io.StringIO()

    call_command("demo_user", "--password-file", str(tmp_path / "pw"), "--base-url", "http://x", stdout=out)

    lines = [line for line in out.getvalue().splitlines() if line.startswith("curl")]
    assert len(lines) == 3
    client = Client()
    for line in lines:
        token = re.search(r"Token (\w+)", line).group(1)
        path = re.search(r"'http://x(/[^']+)'", line).group(1)
        assert client.get(path, HTTP_AUTHORIZATION=f"Token {token}").status_code == 200, line


@pytest.mark.django_db
def test_without_a_cb_version_the_demo_says_why_it_prints_no_similar_items_line(tmp_path, demo_cf):
    out = io.StringIO()

    call_command("demo_user", "--password-file", str(tmp_path / "pw"), stdout=out)

    assert [line for line in out.getvalue().splitlines() if line.startswith("curl")][1:] == []
    assert "no active CB version" in out.getvalue()


@pytest.mark.django_db
def test_demo_user_keeps_a_password_the_user_changed(tmp_path, demo_cf):
    password_file = tmp_path / "admin-password"
    call_command("demo_user", "--password-file", str(password_file), stdout=io.StringIO())
    user = get_user_model().objects.get(username="demo")
    user.set_password("my-own-password-123")
    user.save()
    out = io.StringIO()

    call_command("demo_user", "--password-file", str(password_file), stdout=out)

    assert "password unchanged" in admin_line(out.getvalue())
    assert get_user_model().objects.get(username="demo").check_password("my-own-password-123")


@pytest.mark.django_db
def test_train_models_writes_under_the_first_artifact_root_by_default(tmp_path, settings):
    data = make_demo_artifacts(tmp_path / "data", users=300, items=60, factors=8)
    out = io.StringIO()

    call_command(
        "train_models", "--interactions", str(data["interactions_csv"]), "--factors", "4",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip

    runs = list(settings.HYBRIDREC_ARTIFACT_ROOTS[0].glob("interactions-*"))
    assert len(runs) == 1 and (runs[0] / "cf" / "user_factors.npy").is_file()
    assert out.getvalue().rstrip().endswith(str(runs[0]))


def test_demo_csvs_are_the_same_with_or_without_seed_folders(tmp_path):
    sizes = {"users": 300, "items": 60, "factors": 8, "seed": 5}
    with_folders = make_demo_artifacts(tmp_path / "full", **sizes)
    csvs_only = make_demo_artifacts(tmp_path / "csvs", seed_folders=False, **sizes)

    assert with_folders["cf_dir"].is_dir() and csvs_only["cf_dir"] is None
    assert sorted(p.name for p in (tmp_path / "csvs").iterdir()) == ["interactions.csv", "items.csv"]
    for name in ("interactions_csv", "items_csv"):
        assert with_folders[name].read_bytes() == csvs_only[name].read_bytes()
