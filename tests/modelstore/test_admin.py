"""The admin: upload, build, verify, activate, roll back and delete model versions, and who may."""

import io
import os
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser
from django.test import Client
from django.urls import reverse

from modelstore import services
from modelstore.bundles import write_bundle
from modelstore.models import ActivationEvent, ModelVersion
from modelstore.upload import SizeLimitUploadHandler
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _run_queued_tasks(monkeypatch):
    """Run what the admin queues "after commit" at once: each test runs inside a transaction."""
    from django.db import transaction

    def on_commit(func, using=None, robust=False):
        func()

    monkeypatch.setattr(transaction, "on_commit", on_commit)


CHANGELIST = reverse("admin:modelstore_modelversion_changelist")
UPLOAD = reverse("admin:modelstore_modelversion_add")
BUILD = reverse("admin:modelstore_modelversion_build")
AUDIT = reverse("admin:modelstore_activationevent_changelist")


def change_url(version):
    return reverse("admin:modelstore_modelversion_change", args=[version.pk])


def activate_url(version):
    return reverse("admin:modelstore_modelversion_activate", args=[version.pk])


def rollback_url(kind):
    return reverse("admin:modelstore_modelversion_rollback", args=[kind])


def messages_of(response):
    return [str(message) for message in response.context["messages"]] if response.context else []


def make_user(username, *perms, superuser=False, staff=True):
    user = User.objects.create_user(username, password="pw", is_staff=staff, is_superuser=superuser)
    for codename in perms:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="modelstore", codename=codename)
        )
    return user


@pytest.fixture
def superuser():
    return make_user("root", superuser=True)


@pytest.fixture
def admin(client, superuser):
    client.force_login(superuser)
    return client


def native_file(tmp_path, kind="cf", *, seed=0, compress=None, name=None):
    arrays = factories.cf_array_set(seed=seed) if kind == "cf" else factories.cb_array_set(seed=seed)
    path = tmp_path / (name or f"{kind}-{seed}.joblib")
    write_bundle(path, kind=kind, arrays=arrays, compress=compress)
    return path


def upload(client, path, **data):
    with open(path, "rb") as handle:
        return client.post(UPLOAD, {"file": handle, "kind": "", "label": "", "notes": "", **data})


def form_errors(response):
    form = response.context["form"]
    return {name: " ".join(str(e) for e in errors) for name, errors in form.errors.items()}


# --- upload -----------------------------------------------------------------------------------


def test_the_upload_page_shows_the_form_and_the_limit(admin, settings):
    settings.HYBRIDREC_MAX_UPLOAD_BYTES = 5 * 1024**2

    response = admin.get(UPLOAD)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'type="file"' in body and 'enctype="multipart/form-data"' in body
    assert "At most 5 MiB" in body


@pytest.mark.parametrize(
    ("kind", "compress", "layout"),
    [("cf", None, "native"), ("cf", "lz4", "native"), ("cb", "gzip", "native"), ("cb", None, "native")],
)
def test_upload_registers_and_verifies_a_native_bundle(admin, superuser, tmp_path, kind, compress, layout):
    path = native_file(tmp_path, kind, compress=compress)

    response = upload(admin, path, notes="from the nightly run", label=f"{kind}-nightly")

    version = ModelVersion.objects.get()
    assert response.status_code == 302 and response.url == change_url(version)
    assert version.kind == kind and version.label == f"{kind}-nightly"
    assert version.status == ModelVersion.Status.READY  # verified by the in-process task
    assert version.source_layout == layout
    assert version.compression == (compress or "")
    assert version.notes == "from the nightly run"
    assert version.created_by == superuser
    assert LogEntry.objects.filter(object_id=str(version.pk)).exists()


@pytest.mark.parametrize("compress", [0, ("gzip", 3), ("lz4", 3)])
def test_upload_converts_a_seed_bundle(admin, tmp_path, compress):
    path = factories.write_seed_bundle(tmp_path / "seed.joblib", compress=compress)

    response = upload(admin, path, kind="cf")

    version = ModelVersion.objects.get()
    assert response.status_code == 302
    assert version.source_layout == "seed-bundle"
    assert version.status == ModelVersion.Status.READY
    assert version.uploaded_sha256 != version.sha256
    assert (version.n_users, version.n_items, version.n_factors) == (60, 25, 6)


def test_uploading_the_same_content_again_points_at_the_existing_version(admin, tmp_path):
    path = native_file(tmp_path)
    upload(admin, path)

    response = upload(admin, path, label="again")

    version = ModelVersion.objects.get()
    assert response.url == change_url(version)
    follow = admin.get(response.url)
    assert any(
        "already registered" in m and "The label you gave was not applied" in m for m in messages_of(follow)
    )
    assert version.label != "again"


def assert_refused(response, media_files, field, text, status=200):
    assert response.status_code == status
    assert text in form_errors(response)[field]
    assert text in response.content.decode()
    assert ModelVersion.objects.count() == 0
    assert media_files() == []


def test_a_file_over_the_limit_is_refused_while_it_streams(admin, tmp_path, settings, media_files):
    settings.HYBRIDREC_MAX_UPLOAD_BYTES = 1024
    path = native_file(tmp_path)
    assert path.stat().st_size > 1024

    response = upload(admin, path, notes="too big")

    assert_refused(response, media_files, "file", "larger than the upload limit of 1 KiB", status=413)
    assert "HYBRIDREC_MAX_UPLOAD_BYTES" in form_errors(response)["file"]
    assert response.context["form"]["notes"].value() == "too big"  # the rest of the form survived


def test_the_limit_handler_passes_on_no_byte_past_the_limit():
    class Recorder(FileUploadHandler):
        received = 0

        def receive_data_chunk(self, raw_data, start):
            Recorder.received += len(raw_data)
            return raw_data

        def file_complete(self, file_size):
            return SimpleUploadedFile("x", b"")

    body, content_type = _multipart({"notes": "after"}, file_bytes=os.urandom(300_000))
    limit = SizeLimitUploadHandler(limit_bytes=100_000)
    parser = MultiPartParser(
        {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body))},
        io.BytesIO(body),
        [limit, Recorder()],
    )

    post, files = parser.parse()

    assert "file" not in files
    assert post["notes"] == "after"
    assert Recorder.received <= 100_000
    assert limit.refused == {"file": ("big.joblib", limit.refused["file"][1])}


def _multipart(fields, *, file_bytes):
    boundary = "BoUnDaRy"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.joblib"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + file_bytes
        + b"\r\n"
    ]
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_an_unsafe_file_is_refused_and_nothing_runs(admin, tmp_path, media_files):
    import joblib

    marker = tmp_path / "ran"
    path = tmp_path / "evil.joblib"
    joblib.dump({"recs_df": factories.Payload(marker)}, path)

    response = upload(admin, path)

    assert_refused(response, media_files, "file", "not on the allow-list")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (b"this is not a pickle at all", "evil.joblib is a text file, not a joblib or pickle file"),
        (b"\x80\x04]\x94(K\x01K", "cannot read evil.joblib: it is damaged"),
        (b"", "“evil.joblib” is empty"),
    ],
)
def test_a_damaged_or_empty_file_is_refused(admin, tmp_path, media_files, content, text):
    path = tmp_path / "evil.joblib"
    path.write_bytes(content)

    response = upload(admin, path)

    assert response.status_code == 200
    assert text in form_errors(response)["file"]
    assert ModelVersion.objects.count() == 0
    assert media_files() == []


def test_the_wrong_kind_is_refused(admin, tmp_path, media_files):
    response = upload(admin, native_file(tmp_path, "cf"), kind="cb")

    assert_refused(response, media_files, "file", "holds a cf bundle, not cb")


def test_a_missing_file_is_refused(admin):
    response = admin.post(UPLOAD, {"kind": "cf"})

    assert "Choose a bundle file" in form_errors(response)["file"]


def test_a_taken_label_is_refused(admin, tmp_path, register, media_files):
    register("cf", factories.cf_array_set(seed=1), label="cf-prod")
    before = media_files()

    response = upload(admin, native_file(tmp_path, seed=2), label="cf-prod")

    assert response.status_code == 200
    assert "already exists" in str(response.context["form"].non_field_errors())
    assert ModelVersion.objects.count() == 1
    assert media_files() == before


def test_upload_checks_the_csrf_token(superuser, tmp_path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)

    response = upload(client, native_file(tmp_path))

    assert response.status_code == 403
    assert ModelVersion.objects.count() == 0


# --- build ------------------------------------------------------------------------------------


def test_the_build_page_offers_the_folders_under_the_roots(admin, cf_folder, cb_folder):
    response = admin.get(BUILD)

    form = response.context["form"]
    assert (str(cf_folder.resolve()), "run1/cf") in form.fields["cf_folder"].choices
    assert (str(cb_folder.resolve()), "run1/cb") in form.fields["cb_folder"].choices
    assert all(value != str(cb_folder.resolve()) for value, _ in form.fields["cf_folder"].choices)


def test_build_from_a_chosen_folder_and_activate_when_ready(admin, superuser, cf_folder):
    response = admin.post(
        BUILD,
        {
            "cf_folder": str(cf_folder.resolve()),
            "compression": "lz4",
            "level": 1,
            "activate": "on",
            "notes": "n",
        },
    )

    assert response.status_code == 302 and response.url == CHANGELIST
    version = ModelVersion.objects.get()
    assert version.kind == "cf"
    assert version.status == ModelVersion.Status.READY
    assert version.compression == "lz4"
    assert version.source_layout == "cf-artifacts"
    assert version.is_active and version.activated_by == superuser
    assert ActivationEvent.objects.filter(to_version=version).exists()


def test_build_both_kinds_from_typed_paths(admin, cf_folder, cb_folder, tmp_path):
    response = admin.post(
        BUILD,
        {"cf_path": "run1/cf", "cb_path": str(cb_folder), "compression": "none", "level": 3},
    )

    assert response.status_code == 302
    versions = {v.kind: v for v in ModelVersion.objects.all()}
    assert set(versions) == {"cf", "cb"}
    assert all(v.status == ModelVersion.Status.READY and not v.is_active for v in versions.values())
    assert versions["cf"].compression == ""


def test_build_with_int8_customer_factors(admin, cf_folder):
    response = admin.post(
        BUILD,
        {"cf_folder": str(cf_folder.resolve()), "compression": "none", "level": 3, "factors_dtype": "int8"},
    )

    assert response.status_code == 302
    version = ModelVersion.objects.get()
    assert version.status == ModelVersion.Status.READY
    assert version.metadata["factors_dtype"] == "int8"
    page = admin.get(reverse("admin:modelstore_modelversion_activate", args=[version.pk])).content.decode()
    assert re.search(r"<th scope=\"row\">Customer factors stored as</th><td>int8</td>", page)


def test_build_refuses_an_unknown_factor_storage(admin, cf_folder):
    errors = build_errors(admin, cf_folder=str(cf_folder.resolve()), factors_dtype="int4")

    assert "int4 is not one of the available choices" in str(errors["factors_dtype"])


def build_errors(client, **data):
    response = client.post(BUILD, {"compression": "none", "level": 3, **data})
    assert response.status_code == 200, "the form should have been refused"
    assert ModelVersion.objects.count() == 0
    return form_errors(response)


def test_build_refuses_paths_outside_the_roots(admin, tmp_path, cf_folder):
    elsewhere = factories.write_cf_folder(tmp_path / "elsewhere" / "cf")
    (tmp_path / "artifacts" / "link").symlink_to(elsewhere, target_is_directory=True)

    assert "outside the artifact folders" in build_errors(admin, cf_path="../elsewhere/cf")["cf_path"]
    assert "outside the artifact folders" in build_errors(admin, cf_path=str(elsewhere))["cf_path"]
    assert "outside the artifact folders" in build_errors(admin, cf_path="link")["cf_path"]
    assert "outside the artifact folders" in build_errors(admin, cf_path="/etc")["cf_path"]
    assert "not one of the available choices" in build_errors(admin, cf_folder=str(elsewhere))["cf_folder"]


def test_build_refuses_a_folder_holding_a_link_out_of_the_roots(admin, tmp_path, cf_folder):
    secret = tmp_path / "secret.csv"
    secret.write_text("item_id,title\nI000,secret\n")
    (cf_folder / "items.csv").symlink_to(secret)

    assert "links outside the artifact folders" in build_errors(admin, cf_path="run1/cf")["cf_path"]


def test_build_needs_a_folder(admin, cf_folder, cb_folder):
    response = admin.post(BUILD, {"compression": "none", "level": 3})
    assert "Choose a CF folder, a CB folder, or both" in str(response.context["form"].non_field_errors())
    assert "is not a folder" in build_errors(admin, cf_path="run1/nothing-here")["cf_path"]
    assert "not both" in build_errors(admin, cf_folder=str(cf_folder.resolve()), cf_path="run1/cb")["cf_path"]


def test_a_failed_build_shows_its_error_on_the_row(admin, tmp_path):
    broken = tmp_path / "artifacts" / "broken"
    broken.mkdir()
    (broken / "user_factors.npy").write_bytes(b"not numpy")

    admin.post(BUILD, {"cf_folder": str(broken.resolve()), "compression": "none", "level": 3})

    version = ModelVersion.objects.get()
    assert version.status == ModelVersion.Status.FAILED and version.error
    body = admin.get(CHANGELIST).content.decode()
    assert "hr-status-failed" in body and version.error[:40] in body


# --- the list and the version page ------------------------------------------------------------


def test_the_list_shows_status_badges_sizes_counts_and_metrics(admin, superuser, register):
    old = register("cf", factories.cf_array_set(seed=1), label="cf-old", activate=True, user=superuser)
    new = register("cf", factories.cf_array_set(seed=2), label="cf-new")
    ModelVersion.objects.filter(pk=new.pk).update(
        metrics={"test": "test.csv", "k": 10, "strategies": {"cf": {"ndcg": 0.1234, "precision": 0.05}}}
    )

    response = admin.get(CHANGELIST)

    body = response.content.decode()
    assert body.index("cf-new") < body.index("cf-old")  # newest first
    assert body.count('class="hr-badge-active"') == 1
    assert "hr-status-ready" in body
    assert "0.1234" in body and "cf strategy, k = 10" in body
    assert f"{old.size_bytes / 1024:.1f} KiB" in body
    assert "by root" in body
    assert "60 users · 25 items · 150 recommendations · 6 factors" in body
    assert "Roll back" not in body  # nothing was active before cf-old
    assert '<meta http-equiv="refresh"' not in body


def test_the_list_filters_and_searches(admin, register):
    cf = register("cf", factories.cf_array_set(seed=1), label="cf-one")
    register("cb", factories.cb_array_set(seed=1), label="cb-one")
    ModelVersion.objects.filter(pk=cf.pk).update(notes="trained on the spring data")

    def labels(**query):
        return {v.label for v in admin.get(CHANGELIST, query).context["cl"].result_list}

    assert labels(kind__exact="cb") == {"cb-one"}
    assert labels(status__exact="ready") == {"cf-one", "cb-one"}
    assert labels(active="yes") == set()
    assert labels(active="no") == {"cf-one", "cb-one"}
    assert labels(q=cf.sha256[:10]) == {"cf-one"}
    assert labels(q="spring") == {"cf-one"}


def test_a_page_with_work_in_progress_refreshes_itself(admin, tmp_path):
    version = services.version_register(path=native_file(tmp_path)).version  # pending, not queued

    assert '<meta http-equiv="refresh" content="3">' in admin.get(CHANGELIST).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in admin.get(change_url(version)).content.decode()

    services.version_verify(version=version)
    assert "http-equiv" not in admin.get(CHANGELIST).content.decode()
    assert "http-equiv" not in admin.get(change_url(version)).content.decode()


def test_a_version_page_says_whether_it_is_active(admin, register):
    idle = register("cf", factories.cf_array_set(), label="cf-idle")
    active = register("cf", factories.cf_array_set(seed=3), label="cf-live", activate=True)

    def active_row(version):
        html = admin.get(change_url(version)).content.decode()
        row = re.search(r'field-active_state.*?<div class="readonly">(.*?)</div>', html, flags=re.S)
        return row.group(1).strip()

    assert active_row(idle) == "no"
    assert "active" in active_row(active)


def test_short_labels_stay_on_one_line_in_the_list_and_long_ones_may_wrap(admin, register):
    register("cf", factories.cf_array_set(), label="demo-cf-weak")
    register("cf", factories.cf_array_set(seed=3), label="a-label-far-too-long-for-the-column-to-hold")

    html = admin.get(reverse("admin:modelstore_modelversion_changelist")).content.decode()

    assert '<span class="hr-label">demo-cf-weak</span>' in html
    assert '<span class="hr-label-long">a-label-far-too-long-for-the-column-to-hold</span>' in html


def test_the_version_page_is_read_only_but_label_and_notes(admin, register):
    version = register("cf", factories.cf_array_set(), label="cf-a")
    ModelVersion.objects.filter(pk=version.pk).update(
        metrics={"test": "t.csv", "k": 10, "strategies": {"cf": {"ndcg": 0.3}}}
    )

    response = admin.get(change_url(version))

    body = response.content.decode()
    form = response.context["adminform"].form
    assert set(form.fields) == {"label", "notes"}
    assert version.sha256 in body and version.content_sha256 in body
    assert version.numpy_version in body
    assert '<pre class="hr-json">' in body and "&quot;content_sha256&quot;" in body  # pretty JSON
    assert 'class="hr-metrics"' in body and "0.3000" in body and "measured at k = 10 · on t.csv" in body
    assert reverse("admin:modelstore_modelversion_download", args=[version.pk]) in body
    assert "Activate…" in body

    response = admin.post(
        change_url(version), {"label": "cf-renamed", "notes": "hello", "status": "failed", "sha256": "0" * 64}
    )

    assert response.status_code == 302
    version.refresh_from_db()
    assert (version.label, version.notes, version.status) == ("cf-renamed", "hello", "ready")
    assert version.sha256 != "0" * 64


def test_editing_keeps_a_status_changed_meanwhile(admin, register):
    version = register("cf", factories.cf_array_set())
    page = admin.get(change_url(version))
    assert page.status_code == 200
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.VERIFYING)

    admin.post(change_url(version), {"label": version.label, "notes": "edited"})

    version.refresh_from_db()
    assert version.status == ModelVersion.Status.VERIFYING and version.notes == "edited"


def test_a_label_must_stay_unique_per_kind(admin, register):
    register("cf", factories.cf_array_set(seed=1), label="taken")
    version = register("cf", factories.cf_array_set(seed=2), label="free")

    response = admin.post(change_url(version), {"label": "taken", "notes": ""})

    assert response.status_code == 200
    assert "labelled “taken”" in str(response.context["adminform"].form.errors)


def test_download_sends_the_stored_file(admin, register, settings, client):
    version = register("cf", factories.cf_array_set())
    url = reverse("admin:modelstore_modelversion_download", args=[version.pk])

    response = admin.get(url)

    assert response.status_code == 200
    assert f'filename="{version.label}.joblib"' in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == (settings.MEDIA_ROOT / version.file.name).read_bytes()
    client.logout()
    assert client.get(url).status_code == 302


# --- actions ----------------------------------------------------------------------------------


def action(client, name, *versions, **extra):
    return client.post(
        CHANGELIST, {"action": name, "_selected_action": [v.pk for v in versions], "index": 0, **extra}
    )


def test_verify_selected_marks_a_changed_file_failed(admin, register, settings):
    good = register("cf", factories.cf_array_set(seed=1))
    bad = register("cb", factories.cb_array_set(seed=1))
    with open(settings.MEDIA_ROOT / bad.file.name, "ab") as handle:
        handle.write(b"tampered")

    response = action(admin, "verify_selected", good, bad)

    assert response.status_code == 302
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.status == ModelVersion.Status.READY
    assert bad.status == ModelVersion.Status.FAILED and "sha256" in bad.error
    body = admin.get(CHANGELIST).content.decode()
    assert "hr-status-failed" in body and "has sha256" in body


def test_activate_needs_exactly_one_version(admin, register):
    a = register("cf", factories.cf_array_set(seed=1))
    b = register("cf", factories.cf_array_set(seed=2))

    response = action(admin, "activate_selected", a, b)

    assert ModelVersion.objects.filter(is_active=True).count() == 0
    assert "Select exactly one version to activate." in messages_of(admin.get(CHANGELIST))
    assert response.status_code == 302

    response = action(admin, "activate_selected", a)
    assert response.status_code == 302 and response.url == activate_url(a)


def test_the_confirmation_compares_with_the_active_version_and_warns(admin, superuser, register):
    active = register("cf", factories.cf_array_set(seed=1), label="cf-live", activate=True)
    candidate = register("cf", factories.cf_array_set(seed=2, n_users=70), label="cf-next")
    common = {"test": "test.csv", "test_sha256": "abc", "k": 10}
    ModelVersion.objects.filter(pk=active.pk).update(
        metrics={**common, "strategies": {"cf": {"ndcg": 0.30, "precision": 0.10}}}
    )
    ModelVersion.objects.filter(pk=candidate.pk).update(
        metrics={**common, "strategies": {"cf": {"ndcg": 0.25, "precision": 0.12}}}
    )

    response = admin.get(activate_url(candidate))

    body = response.content.decode()
    assert response.status_code == 200
    assert "cf-live" in body and "cf-next" in body
    assert "70" in body and "60" in body  # users side by side
    assert "worse than the active version on" in body and "cf ndcg 0.2500 (active 0.3000)" in body
    assert "precision 0.1200" not in body.split("worse than")[1].split("</li>")[0]
    assert 'class="hr-worse"' in body

    response = admin.post(activate_url(candidate))

    assert response.status_code == 302
    candidate.refresh_from_db()
    assert candidate.is_active and candidate.activated_by == superuser
    event = ActivationEvent.objects.get(to_version=candidate)
    assert (event.action, event.from_version_id, event.user) == ("activate", active.pk, superuser)


def test_metrics_from_other_test_data_are_not_compared(admin, register):
    active = register("cf", factories.cf_array_set(seed=1), activate=True)
    candidate = register("cf", factories.cf_array_set(seed=2))
    ModelVersion.objects.filter(pk=active.pk).update(
        metrics={"test": "a.csv", "strategies": {"cf": {"ndcg": 0.3}}}
    )
    ModelVersion.objects.filter(pk=candidate.pk).update(
        metrics={"test": "b.csv", "strategies": {"cf": {"ndcg": 0.1}}}
    )

    body = admin.get(activate_url(candidate)).content.decode()

    assert "not measured on the same test data" in body
    assert "worse than" not in body


def test_a_version_that_is_not_ready_cannot_be_activated(admin, tmp_path):
    version = services.version_register(path=native_file(tmp_path)).version

    page = admin.get(activate_url(version)).content.decode()
    assert "only a ready version can be activated" in page
    assert 'name="_activate"' not in page

    response = admin.post(activate_url(version), follow=True)

    version.refresh_from_db()
    assert not version.is_active
    assert any("Not activated" in m for m in messages_of(response))


def test_roll_back_per_kind(admin, superuser, register):
    first = register("cf", factories.cf_array_set(seed=1), label="cf-first", activate=True)
    second = register("cf", factories.cf_array_set(seed=2), label="cf-second")
    services.version_activate(version=second, user=superuser)

    body = admin.get(CHANGELIST).content.decode()
    assert "Roll back CF to cf-first" in body
    assert "Roll back CB" not in body

    # The button leads to a confirmation page first; looking at it changes nothing.
    page = admin.get(rollback_url("cf")).content.decode()
    assert "Roll CF back to cf-first?" in page and 'value="Roll back to cf-first"' in page
    assert "Active now" in page and "cf-second" in page and "Difference" in page
    second.refresh_from_db()
    assert second.is_active and ActivationEvent.objects.count() == 2

    response = admin.post(rollback_url("cf"), follow=True)

    first.refresh_from_db()
    assert first.is_active
    assert any("Rolled cf back from “cf-second” to “cf-first”" in m for m in messages_of(response))
    event = ActivationEvent.objects.first()
    assert (event.action, event.from_label, event.to_label, event.user) == (
        "rollback",
        "cf-second",
        "cf-first",
        superuser,
    )


def test_roll_back_with_nothing_to_go_back_to(admin, register):
    register("cb", factories.cb_array_set(), activate=True)

    response = admin.post(rollback_url("cb"), follow=True)

    assert any("Not rolled back" in m for m in messages_of(response))
    assert admin.post(rollback_url("xx")).status_code == 404


def test_the_active_version_cannot_be_deleted(admin, register, settings):
    active = register("cf", factories.cf_array_set(seed=1), activate=True)
    other = register("cf", factories.cf_array_set(seed=2))
    delete_url = reverse("admin:modelstore_modelversion_delete", args=[active.pk])

    response = admin.post(delete_url, {"post": "yes"}, follow=True)
    assert any("cannot be deleted" in m for m in messages_of(response))

    response = action(admin, "delete_selected", active, other, post="yes")
    assert response.status_code == 302
    assert any("Nothing was deleted" in m for m in messages_of(admin.get(CHANGELIST)))

    assert ModelVersion.objects.count() == 2
    assert (settings.MEDIA_ROOT / active.file.name).is_file()
    assert (
        reverse("admin:modelstore_modelversion_delete", args=[active.pk])
        not in admin.get(change_url(active)).content.decode()
    )


def test_deleting_removes_the_file(admin, register, settings):
    a = register("cf", factories.cf_array_set(seed=1))
    b = register("cf", factories.cf_array_set(seed=2))
    c = register("cb", factories.cb_array_set(seed=2))

    confirmation = action(admin, "delete_selected", a, b)
    assert confirmation.status_code == 200 and b"Are you sure" in confirmation.content
    assert ModelVersion.objects.count() == 3

    action(admin, "delete_selected", a, b, post="yes")
    admin.post(reverse("admin:modelstore_modelversion_delete", args=[c.pk]), {"post": "yes"})

    assert ModelVersion.objects.count() == 0
    for version in (a, b, c):
        assert not (settings.MEDIA_ROOT / version.file.name).exists()


def test_deleting_keeps_a_file_another_version_uses(admin, register, settings):
    a = register("cf", factories.cf_array_set(seed=1))
    twin = ModelVersion.objects.create(kind="cb", label="twin", file=a.file.name, sha256=a.sha256)

    admin.post(reverse("admin:modelstore_modelversion_delete", args=[a.pk]), {"post": "yes"})

    assert not ModelVersion.objects.filter(pk=a.pk).exists()
    assert (settings.MEDIA_ROOT / twin.file.name).is_file()


def test_the_audit_list_is_read_only(admin, superuser, register):
    first = register("cf", factories.cf_array_set(seed=1), label="cf-1", activate=True, user=superuser)
    second = register("cf", factories.cf_array_set(seed=2), label="cf-2")
    services.version_activate(version=second, user=superuser)
    services.version_rollback(kind="cf", user=superuser)
    event = ActivationEvent.objects.first()

    body = admin.get(AUDIT).content.decode()

    assert ActivationEvent.objects.count() == 3
    assert body.count("root") >= 3 and "Roll back" in body
    assert change_url(first) in body and change_url(second) in body
    assert admin.get(reverse("admin:modelstore_activationevent_add")).status_code == 403
    page = admin.get(reverse("admin:modelstore_activationevent_change", args=[event.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin.post(reverse("admin:modelstore_activationevent_delete", args=[event.pk])).status_code == 403


# --- who may do what --------------------------------------------------------------------------

VIEWER = ("view_modelversion",)
EDITOR = ("view_modelversion", "add_modelversion", "change_modelversion", "delete_modelversion")
ACTIVATOR = ("view_modelversion", "activate_modelversion")


@pytest.fixture
def as_user(client):
    def login(who):
        if who == "anonymous":
            return client
        users = {
            "staff": lambda: make_user("staff"),
            "viewer": lambda: make_user("viewer", *VIEWER),
            "editor": lambda: make_user("editor", *EDITOR),
            "activator": lambda: make_user("activator", *ACTIVATOR),
            "superuser": lambda: make_user("boss", superuser=True),
        }
        client.force_login(users[who]())
        return client

    return login


def _status(response):
    if response.status_code == 302 and "/login/" in response.url:
        return "login"
    return response.status_code


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (
            "anonymous",
            {"list": "login", "upload": "login", "build": "login", "activate": "login", "audit": "login"},
        ),
        ("staff", {"list": 403, "upload": 403, "build": 403, "activate": 403, "audit": 403}),
        ("viewer", {"list": 200, "upload": 403, "build": 403, "activate": 403, "audit": 200}),
        ("editor", {"list": 200, "upload": 200, "build": 200, "activate": 403, "audit": 200}),
        ("activator", {"list": 200, "upload": 403, "build": 403, "activate": 200, "audit": 200}),
        ("superuser", {"list": 200, "upload": 200, "build": 200, "activate": 200, "audit": 200}),
    ],
)
def test_permission_matrix_for_pages(as_user, register, who, expected):
    version = register("cf", factories.cf_array_set())
    client = as_user(who)

    seen = {
        "list": _status(client.get(CHANGELIST)),
        "upload": _status(client.get(UPLOAD)),
        "build": _status(client.get(BUILD)),
        "activate": _status(client.get(activate_url(version))),
        "audit": _status(client.get(AUDIT)),
    }

    assert seen == expected


@pytest.mark.parametrize(
    ("who", "may_activate"),
    [
        ("anonymous", False),
        ("staff", False),
        ("viewer", False),
        ("editor", False),
        ("activator", True),
        ("superuser", True),
    ],
)
def test_permission_matrix_for_activation_and_rollback(as_user, register, who, may_activate):
    first = register("cf", factories.cf_array_set(seed=1), activate=True)
    second = register("cf", factories.cf_array_set(seed=2))
    client = as_user(who)

    client.post(activate_url(second))
    second.refresh_from_db()
    assert second.is_active is may_activate

    if may_activate:
        client.post(rollback_url("cf"))
    else:
        services.version_activate(version=second)
        assert _status(client.post(rollback_url("cf"))) in ("login", 403)
    first.refresh_from_db()
    assert first.is_active is may_activate


@pytest.mark.parametrize(("who", "offered"), [("viewer", False), ("editor", False), ("activator", True)])
def test_the_activate_action_and_buttons_need_the_permission(as_user, register, superuser, who, offered):
    first = register("cf", factories.cf_array_set(seed=1), activate=True)
    second = register("cf", factories.cf_array_set(seed=2))
    services.version_activate(version=second, user=superuser)
    client = as_user(who)

    response = client.get(CHANGELIST)
    actions = (
        [name for name, _ in response.context["action_form"].fields["action"].choices]
        if response.context.get("action_form")
        else []
    )
    assert ("activate_selected" in actions) is offered
    assert ("Roll back CF" in response.content.decode()) is offered
    assert ("Activate…" in client.get(change_url(first)).content.decode()) is offered
    response = action(client, "activate_selected", first)
    first.refresh_from_db()
    assert not first.is_active


def test_a_viewer_cannot_upload(as_user, tmp_path, media_files):
    client = as_user("viewer")

    response = upload(client, native_file(tmp_path))

    assert response.status_code == 403
    assert ModelVersion.objects.count() == 0 and media_files() == []


def test_anonymous_uploads_are_refused_with_403(client, tmp_path, media_files):
    response = upload(client, native_file(tmp_path))

    assert response.status_code == 403  # refused from the headers: there is no session to log in again
    assert ModelVersion.objects.count() == 0 and media_files() == []


def test_metrics_as_the_evaluation_records_them_are_compared(admin, register):
    active = register("cf", factories.cf_array_set(seed=1), activate=True)
    candidate = register("cf", factories.cf_array_set(seed=2))
    recorded = {"k": 10, "customers": 40, "relevant_items": 90, "test": "test.csv", "weight": 0.7}
    services.version_record_metrics(
        version=active, metrics={**recorded, "strategies": {"cf": {"ndcg": 0.2}, "hybrid": {"ndcg": 0.25}}}
    )
    services.version_record_metrics(
        version=candidate, metrics={**recorded, "strategies": {"cf": {"ndcg": 0.3}, "hybrid": {"ndcg": 0.2}}}
    )

    body = admin.get(activate_url(candidate)).content.decode()

    assert "test.csv · 40 customers · 90 held-out items" in body
    assert "hybrid ndcg 0.2000 (active 0.2500)" in body

    services.version_record_metrics(
        version=candidate, metrics={**recorded, "customers": 41, "strategies": {"cf": {"ndcg": 0.1}}}
    )
    body = admin.get(activate_url(candidate)).content.decode()
    assert "not measured on the same test data" in body and "worse than" not in body

    services.version_record_metrics(version=candidate, metrics={})
    assert "No offline metrics for" in admin.get(activate_url(candidate)).content.decode()


def test_the_upload_page_states_the_default_limit_in_binary_units_as_the_readme_does(admin, settings):
    settings.HYBRIDREC_MAX_UPLOAD_BYTES = 2147483648
    body = admin.get(UPLOAD).content.decode()
    assert "At most 2 GiB." in body and "2.1 GB" not in body
    readme = (settings.BASE_DIR / "README.md").read_text()
    assert "`2147483648` (2 GiB)" in readme


# --- what the version page shows ---------------------------------------------------------------

STRATEGY_METRICS = {"k": 10, "test": "test.csv", "test_sha256": "ab" * 32, "customers": 40}


def with_metrics(version, **ndcg):
    strategies = {name: {"ndcg": value, "precision": 0.05} for name, value in ndcg.items()}
    ModelVersion.objects.filter(pk=version.pk).update(metrics={**STRATEGY_METRICS, "strategies": strategies})
    version.refresh_from_db()
    return version


def test_the_version_page_charts_its_metrics_beside_the_active_versions(admin, register):
    with_metrics(register("cf", factories.cf_array_set(seed=1), label="cf-live", activate=True), cf=0.2)
    candidate = with_metrics(
        register("cf", factories.cf_array_set(seed=2), label="cf-next"), cf=0.3, popular=0.1
    )

    body = admin.get(change_url(candidate)).content.decode()

    charts = body[body.index('<div class="hr-charts">') :]
    svg = charts[: charts.index("</div>")]
    assert 'class="hr-bar-this"' in svg and 'class="hr-bar-active"' in svg
    assert "cf-next: cf ndcg 0.3000" in svg and "cf-live: cf ndcg 0.2000" in svg
    assert "cf-next: popular ndcg 0.1000" in svg
    widths = {float(w) for w in re.findall(r'<rect class="hr-bar-\w+" x="\d+" y="\d+" width="([\d.]+)"', svg)}
    assert max(widths) == 300 and 200 in widths  # 0.3 is the longest bar; 0.2 is two thirds of it
    # Captions name the test file, not its hash.
    table = body[body.index('<table class="hr-metrics">') : body.index("</table>", body.index("hr-metrics"))]
    caption = re.search(r"<caption[^>]*>(.*?)</caption>", table).group(1)
    assert caption == "measured at k = 10 · on test.csv · 40 customers"


def test_the_version_page_shows_the_activation_timeline(admin, register, superuser):
    first = register("cf", factories.cf_array_set(seed=1), label="cf-one", activate=True, user=superuser)
    second = register("cf", factories.cf_array_set(seed=2), label="cf-two")
    services.version_activate(version=second, user=superuser)
    services.version_rollback(kind="cf")  # no user: the command line

    body = admin.get(change_url(second)).content.decode()
    timeline = body[body.index('<ol class="hr-timeline">') : body.index("</ol>", body.index("hr-timeline"))]
    entries = re.findall(r"<li[^>]*>(.*?)</li>", timeline, flags=re.S)
    texts = [" ".join(re.sub(r"<[^>]+>", " ", entry).split()) for entry in entries]
    assert len(texts) == 3
    assert "Roll back cf-two → cf-one by command line" in texts[0]
    assert "Activate cf-one → cf-two by root" in texts[1]
    assert "Activate — → cf-one by root" in texts[2]
    assert first.label in body


def test_a_cb_version_speaks_of_terms_not_factors_or_recommendations(admin, register):
    version = register("cb", factories.cb_array_set(), label="cb-tfidf")
    ModelVersion.objects.filter(pk=version.pk).update(metadata={"params": {"algorithm": "tfidf"}})
    version.refresh_from_db()

    row = admin.get(CHANGELIST).content.decode()
    page = admin.get(change_url(version)).content.decode()
    for body in (row, page):
        assert f"{version.n_items} items · {version.n_factors} terms" in body or (
            f"{version.n_items} items, {version.n_factors} terms" in body
        )
        assert "factors" not in re.sub(r"<[^>]+>", "", body.split("hr-json")[0]).lower().replace(
            "n_factors", ""
        )
        assert "0 recommendations" not in body


def test_the_compare_table_has_a_difference_column_and_folds_identical_rows(admin, register):
    with_metrics(register("cf", factories.cf_array_set(seed=1), label="cf-live", activate=True), cf=0.2)
    candidate = with_metrics(
        register("cf", factories.cf_array_set(seed=2, n_users=70), label="cf-next"), cf=0.25
    )

    body = admin.get(reverse("admin:modelstore_modelversion_activate", args=[candidate.pk])).content.decode()

    facts = body[body.index('class="hr-compare hr-facts"') : body.index("</table>", body.index("hr-facts"))]
    assert '<th scope="col">Difference</th>' in facts
    assert re.search(
        r"<th scope=\"row\">Users</th><td>70</td><td>60</td><td class=\"hr-diff\">\+10</td>", facts
    )
    assert "Compression" not in facts and "Source layout" not in facts  # identical: folded below
    folded = body[body.index('<details class="hr-compare hr-same">') :]
    assert "identical rows" in folded and "compression" in folded.split("</summary>")[0]
    metrics = body[body.index("hr-metrics-compare") :]
    assert "+0.0500 (+25.0 %)" in metrics
    assert "1 identical metric" in metrics  # precision is 0.05 on both sides


def test_registry_actions_reach_the_admin_log(
    admin, superuser, register, cf_folder, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(
            BUILD, {"cf_folder": str(cf_folder.resolve()), "compression": "none", "level": "3", "notes": ""}
        )
    built = ModelVersion.objects.get()
    admin.post(reverse("admin:modelstore_modelversion_activate", args=[built.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(CHANGELIST, {"action": "verify_selected", "_selected_action": [built.pk]})
    other = register("cf", factories.cf_array_set(seed=9), label="cf-other", user=superuser, activate=True)
    services.version_activate(version=other, user=superuser)
    admin.post(rollback_url("cf"))

    messages = [entry.get_change_message() for entry in LogEntry.objects.order_by("pk")]
    assert messages[0].startswith("Build queued from cf")
    assert "Activated." in messages and "Verification queued." in messages
    assert "Registered from upload-0.joblib." in messages
    assert f"Rolled back to this version (was {other.label})." in messages
    history = admin.get(reverse("admin:modelstore_modelversion_history", args=[built.pk])).content.decode()
    assert "Build queued from cf" in history and "Activated." in history
    assert "Rolled back to this version" in history
    recent = admin.get(reverse("admin:index")).content.decode()
    assert recent.count(f"{built.label} (") >= 1 and "Recent actions" in recent
