"""The admin's training page and the train_and_build task behind it."""

import json
import lzma
import threading

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from modelstore.models import ModelVersion
from recommendations.training import tasks
from recommendations.training.models import TrainingRun
from recommendations.training.options import TrainingOptions

pytestmark = pytest.mark.django_db

TRAIN_URL = "admin:recommendations_train"
RUN_URL = "admin:recommendations_training_run"


@pytest.fixture(autouse=True)
def _train_in_the_test_transaction(request, monkeypatch):
    """Run training inline, inside the test's transaction; ``transactional_db`` tests keep the thread."""
    if "transactional_db" in request.fixturenames:
        return
    monkeypatch.setattr(
        tasks, "start_task", lambda task, *args, **kwargs: task.apply(args=args, kwargs=kwargs, throw=True)
    )


def interactions_csv(n_users=40, n_items=20, seed=3):
    """Return a small generic interactions CSV (bytes): two tastes, January and February 2021."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        offset = 0 if user % 2 == 0 else n_items // 2
        for item in rng.choice(n_items // 2, size=6, replace=False):
            day = pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(rng.integers(0, 59)))
            rows.append((f"c{user:03d}", f"item{offset + item:02d}", 1, day.date().isoformat()))
    frame = pd.DataFrame(rows, columns=["customer_id", "item_id", "weight", "timestamp"])
    return frame.to_csv(index=False).encode()


def items_csv(n_items=20):
    titles = [
        f"{'RED' if i < n_items // 2 else 'BLUE'} {'MUG' if i % 2 else 'BAG'} {i}" for i in range(n_items)
    ]
    return (
        pd.DataFrame({"item_id": [f"item{i:02d}" for i in range(n_items)], "title": titles})
        .to_csv(index=False)
        .encode()
    )


ONLINE_RETAIL = "\n".join(
    ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"]
    + [
        f"{536000 + n},{code},{title},{1 + n % 3},2010-12-{1 + n % 20:02d} 10:00:00,1.0,{17000 + n % 12}.0,UK"
        for n, (code, title) in enumerate(
            [("85123A", "WHITE HANGING HEART T-LIGHT HOLDER"), ("22633", "HAND WARMER UNION JACK"),
             ("21730", "GLASS STAR FROSTED T-LIGHT HOLDER"), ("84029G", "KNITTED UNION FLAG HOT WATER BOTTLE"),
             ("22752", "SET 7 BABUSHKA NESTING BOXES"), ("71053", "WHITE METAL LANTERN")] * 8
        )
    ]
)  # fmt: skip


@pytest.fixture
def staff(client, django_user_model):
    """Return ``login(*codenames)``: log a staff member in with these modelstore permissions."""

    def login(*codenames):
        user = django_user_model.objects.create_user(
            f"staff{django_user_model.objects.count()}", password="pw-staff-1", is_staff=True
        )
        for codename in codenames:
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label="modelstore", codename=codename)
            )
        client.force_login(user)
        return user

    return login


def post(client, *, interactions=None, name="events.csv", items=None, **fields):
    data = {
        "data_format": "generic",
        "factors": "8",
        "iterations": "5",
        "regularization": "1",
        "alpha": "2",
        **fields,
    }
    data["interactions"] = SimpleUploadedFile(
        name, interactions if interactions is not None else interactions_csv()
    )
    if items is not None:
        data["items"] = SimpleUploadedFile("items.csv", items)
    return client.post(reverse(TRAIN_URL), data)


def uploads(settings):
    root = settings.MEDIA_ROOT / "training"
    return sorted(p.name for p in root.rglob("*")) if root.exists() else []


def test_anonymous_goes_to_the_login_page(client):
    response = client.get(reverse(TRAIN_URL))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_staff_without_the_permission_is_refused(client, staff, settings):
    staff("view_modelversion")
    assert client.get(reverse(TRAIN_URL)).status_code == 403
    assert post(client).status_code == 403
    assert ModelVersion.objects.count() == 0 and uploads(settings) == []
    assert "Train from a transactions file" not in client.get(reverse("admin:index")).content.decode()


def test_someone_who_may_add_but_not_list_versions_follows_the_run_page(
    client, staff, django_capture_on_commit_callbacks
):
    staff("add_modelversion")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client)
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(RUN_URL, args=[run.pk])
    page = client.get(response["Location"]).content.decode()
    assert "Training from “events.csv” is queued" in page
    assert f"CF made version {run.outcome['cf']['id']}" in page
    assert f'href="{reverse("admin:modelstore_modelversion_changelist")}" class="button"' not in page


def test_the_form_and_the_index_entry(client, staff):
    staff("add_modelversion")
    body = client.get(reverse(TRAIN_URL)).content.decode()
    for field in (
        "interactions",
        "data_format",
        "items",
        "split_date",
        "factors",
        "iterations",
        "alpha",
        "activate",
    ):
        assert f'name="{field}"' in body, field
    assert 'value="128"' in body  # the default factors
    index = client.get(reverse("admin:index")).content.decode()
    assert "Train from a transactions file" in index and reverse(TRAIN_URL) in index


def test_a_small_csv_trains_and_yields_ready_active_versions(
    client, staff, settings, django_capture_on_commit_callbacks
):
    user = staff("add_modelversion", "view_modelversion")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, items=items_csv(), activate="on", notes="weekly run")

    assert response.status_code == 302
    assert response["Location"] == reverse(RUN_URL, args=[TrainingRun.objects.get().pk])
    versions = {v.kind: v for v in ModelVersion.objects.all()}
    assert set(versions) == {"cf", "cb"}
    for version in versions.values():
        assert version.status == ModelVersion.Status.READY, version.error
        assert version.is_active and version.created_by == user and version.activated_by == user
        assert version.notes.startswith(
            "weekly run\nTrained from events.csv and items.csv (generic; 8 factors"
        )
    assert (versions["cf"].n_users, versions["cf"].n_items, versions["cf"].n_factors) == (40, 20, 8)
    assert versions["cb"].n_items == 20
    run = settings.HYBRIDREC_ARTIFACT_ROOTS[0] / "training" / f"run-{versions['cf'].pk}"
    assert sorted(p.name for p in run.iterdir()) == ["cb", "cf"]
    assert uploads(settings) == []  # the uploads go once the versions are built
    page = client.get(response["Location"]).content.decode()
    assert f"CF made version {versions['cf'].pk}" in page and f"CB made version {versions['cb'].pk}" in page
    assert "Done" in page and 'http-equiv="refresh"' not in page


def test_with_a_split_date_the_new_cf_version_carries_offline_metrics(
    client, staff, django_capture_on_commit_callbacks
):
    staff("add_modelversion")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, items=items_csv(), split_date="2021-02-10")
    cf_version = ModelVersion.objects.get(kind="cf")
    assert cf_version.status == ModelVersion.Status.READY and not cf_version.is_active
    metrics = cf_version.metrics
    assert metrics["test"] == "test.csv" and set(metrics["strategies"]) == {"cf", "cb", "hybrid", "popular"}
    assert metrics["strategies"]["cf"]["ndcg"] > 0


def test_online_retail_upload_builds_cf_and_cb(client, staff, django_capture_on_commit_callbacks):
    staff("add_modelversion")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client,
            interactions=lzma.compress(ONLINE_RETAIL.encode()),
            name="retail.csv.xz",
            data_format="online-retail",
        )
    assert response.status_code == 302
    versions = {v.kind: v for v in ModelVersion.objects.all()}
    assert {kind: v.status for kind, v in versions.items()} == {"cf": "ready", "cb": "ready"}
    assert versions["cf"].n_users == 12 and versions["cb"].n_items == 6


def test_without_items_only_cf_is_built(client, staff, django_capture_on_commit_callbacks):
    staff("add_modelversion")
    with django_capture_on_commit_callbacks(execute=True):
        post(client)
    assert [(v.kind, v.status) for v in ModelVersion.objects.all()] == [("cf", "ready")]


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"interactions": b"customer_id,product\n1,2\n"}, "interactions", "lacks the column(s) item_id"),
        ({"name": "events.xlsx"}, "interactions", "not a CSV file"),
        ({"interactions": b""}, "interactions", "is empty"),
        ({"items": b"item_id,name\nA,Mug\n"}, "items", "lacks the column(s) title"),
        ({"data_format": "online-retail"}, "interactions", "lacks the column(s) InvoiceNo"),
        ({"factors": "0"}, "factors", "greater than or equal to 1"),
        ({"alpha": "0"}, "alpha", "Alpha must be greater than 0"),
        ({"split_date": "next week"}, "split_date", "Enter a valid date"),
    ],
)
def test_bad_input_is_a_form_error_and_stores_nothing(client, staff, settings, kwargs, field, message):
    staff("add_modelversion")
    response = post(client, **kwargs)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert ModelVersion.objects.count() == 0 and uploads(settings) == []


def test_a_training_failure_is_recorded_on_the_rows(
    client, staff, settings, django_capture_on_commit_callbacks
):
    staff("add_modelversion")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, items=items_csv(), split_date="2020-01-01")
    assert response.status_code == 302
    versions = list(ModelVersion.objects.all())
    assert len(versions) == 2
    for version in versions:
        assert version.status == ModelVersion.Status.FAILED and not version.is_active
        assert version.error == "Training failed: No interactions before the split date 2020-01-01."
    assert uploads(settings) == []


def test_the_task_is_idempotent(tmp_path, settings):
    source = tmp_path / "events.csv"
    source.write_bytes(interactions_csv())
    cf_version = tasks.training_queue(
        interactions_file=SimpleUploadedFile("events.csv", source.read_bytes()),
        options=TrainingOptions(factors=8, iterations=3),
    ).cf_version
    interactions_path = next((settings.MEDIA_ROOT / "training").rglob("interactions.csv"))
    first = tasks.train_and_build(cf_version.pk, str(interactions_path), factors=8, iterations=3)
    built = ModelVersion.objects.get(pk=first["cf"])
    assert built.status == ModelVersion.Status.READY and first["cb"] is None
    # A second delivery finds nothing left to build and changes nothing.
    again = tasks.train_and_build(cf_version.pk, str(interactions_path), factors=8, iterations=3)
    assert again == first and ModelVersion.objects.count() == 1
    assert ModelVersion.objects.get(pk=built.pk).verified_at == built.verified_at
    assert tasks.train_and_build(10**9, str(interactions_path)) is None


def test_queueing_waits_for_the_commit(tmp_path, django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks, "start_task", lambda task, *args, **kwargs: queued.append((args, kwargs)))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = tasks.training_queue(
            interactions_file=SimpleUploadedFile("events.csv", interactions_csv()),
            items_file=SimpleUploadedFile("items.csv.gz", b"not used"),
            options=TrainingOptions(split_date="2021-02-01"),
            activate=True,
        )
    assert queued == [] and len(callbacks) == 1
    cf_version, cb_version = run.cf_version, run.cb_version
    assert run.status == TrainingRun.Status.QUEUED and run.steps == 5
    assert cf_version.status == cb_version.status == ModelVersion.Status.BUILDING
    callbacks[0]()
    ((args, kwargs),) = queued
    assert args[0] == cf_version.pk and args[1].endswith("/interactions.csv")
    assert kwargs["cb_version_id"] == cb_version.pk and kwargs["items_path"].endswith("/items.csv.gz")
    assert kwargs["split_date"] == "2021-02-01" and kwargs["activate"] is True
    json.dumps([args, kwargs])  # plain values only: a real broker carries them as JSON


@pytest.fixture
def held_training(monkeypatch):
    """Hold training until ``release`` is set; record the threads that run it."""
    from recommendations.training import pipeline

    release, threads = threading.Event(), []
    real_train, real_start = pipeline.train_models, tasks.start_task

    def train_models(**kwargs):
        assert release.wait(60), "the test never released training"
        return real_train(**kwargs)

    def start_task(task, *args, **kwargs):
        thread = real_start(task, *args, **kwargs)
        threads.append(thread)
        return thread

    monkeypatch.setattr(pipeline, "train_models", train_models)
    monkeypatch.setattr(tasks, "start_task", start_task)
    return release, threads


def test_without_a_broker_training_runs_in_the_background_and_the_page_follows_it(
    client, staff, held_training, transactional_db
):
    release, threads = held_training
    staff("add_modelversion", "view_modelversion")
    response = post(client, items=items_csv())

    # The answer came while training is still held: the run page says so and refreshes itself.
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    page = client.get(response["Location"]).content.decode()
    assert run.status in ("queued", "running") and ("Queued" in page or "Running" in page)
    assert 'http-equiv="refresh"' in page and "<progress" in page
    assert {v.status for v in ModelVersion.objects.all()} == {"building"}

    release.set()
    (thread,) = threads
    thread.join(120)
    assert not thread.is_alive() and thread.name == "hybridrec-recommendations.training.tasks.train_and_build"
    run.refresh_from_db()
    versions = {v.kind: v for v in ModelVersion.objects.all()}
    assert run.status == "done" and run.step == run.steps == 4, run.stage
    assert {kind: v.status for kind, v in versions.items()} == {"cf": "ready", "cb": "ready"}
    page = client.get(response["Location"]).content.decode()
    assert f"CF made version {versions['cf'].pk}" in page and f"CB made version {versions['cb'].pk}" in page
    assert 'http-equiv="refresh"' not in page


def test_training_the_same_content_again_names_the_versions_it_matched(
    client, staff, django_capture_on_commit_callbacks
):
    staff("add_modelversion", "view_modelversion")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, items=items_csv())
    first = {v.kind: v.pk for v in ModelVersion.objects.all()}
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, items=items_csv())

    # Same files, same parameters: the same content, so no new rows and no phantom ids.
    assert {v.kind: v.pk for v in ModelVersion.objects.all()} == first
    run = TrainingRun.objects.first()
    assert run.outcome == {"cf": {"id": first["cf"], "made": False}, "cb": {"id": first["cb"], "made": False}}
    page = client.get(response["Location"]).content.decode()
    assert f"CF matched version {first['cf']}" in page and f"CB matched version {first['cb']}" in page


def test_a_failed_run_says_why(client, staff, django_capture_on_commit_callbacks):
    staff("add_modelversion")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, split_date="2020-01-01")
    run = TrainingRun.objects.get()
    assert run.status == "failed"
    page = client.get(response["Location"]).content.decode()
    assert "Training failed: No interactions before the split date 2020-01-01." in page


def test_a_message_queued_under_the_old_task_name_still_trains(settings):
    from hybridrec.celery import app

    run = tasks.training_queue(
        interactions_file=SimpleUploadedFile("events.csv", interactions_csv()),
        options=TrainingOptions(factors=8, iterations=3),
    )
    interactions_path = next((settings.MEDIA_ROOT / "training").rglob("interactions.csv"))
    old_name = app.tasks["recommendations.tasks.train_and_build"]

    result = old_name.apply(
        args=[run.cf_version.pk, str(interactions_path)],
        kwargs={"factors": 8, "iterations": 3, "run_id": run.pk},
    ).get()

    assert ModelVersion.objects.get(pk=result["cf"]).status == ModelVersion.Status.READY
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.DONE


def test_every_project_admin_site_serves_the_training_pages():
    from django.contrib import admin

    from hybridrec.admin import HybridrecAdminSite

    assert isinstance(admin.site, HybridrecAdminSite)
    other = HybridrecAdminSite(name="other")
    names = {getattr(pattern, "name", None) for pattern in other.get_urls()}
    assert {"recommendations_train", "recommendations_training_run", "index"} <= names
