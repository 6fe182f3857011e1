"""Metadata as plain JSON, counts from the arrays, and no file without a row after any failure."""

import datetime as dt

import joblib
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DataError

from modelstore import services
from modelstore.bundles import InvalidMetadata, write_bundle
from modelstore.models import ModelVersion
from tests import factories

from .test_doors import assert_files_match_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def uploader(client_for):
    # A real token: the upload door authenticates from the headers, before DRF runs.
    return client_for("superuser")


def native_with_metadata(path, **changes):
    written = write_bundle(path, kind="cf", arrays=factories.cf_array_set())
    document = joblib.load(written.path)
    document["metadata"].update(changes)
    joblib.dump(document, path)
    return path


@pytest.mark.parametrize("claimed", [{"n_users": "abc"}, [1, 2], {"n_users": -5, "n_items": 10**30}])
def test_registry_counts_come_from_the_arrays_not_from_what_the_file_claims(tmp_path, settings, claimed):
    path = native_with_metadata(tmp_path / "cf.joblib", counts=claimed)

    version = services.version_register(path=path).version

    assert (version.n_users, version.n_items, version.n_factors) == (60, 25, 6)
    assert version.metadata["counts"]["n_users"] == 60
    assert_files_match_rows(settings)


def test_datetimes_and_numpy_scalars_in_metadata_are_stored_as_json(tmp_path):
    path = native_with_metadata(
        tmp_path / "cf.joblib",
        trained_at=dt.datetime(2026, 1, 2, 3, 4, 5),
        epochs=np.int64(7),
        loss=np.float32(0.5),
    )

    version = services.version_register(path=path).version

    version.refresh_from_db()
    assert version.metadata["trained_at"] == "2026-01-02T03:04:05"
    assert version.metadata["epochs"] == 7 and version.metadata["loss"] == 0.5


def test_our_writer_normalises_metadata_or_refuses_what_the_reader_would(tmp_path):
    written = write_bundle(
        tmp_path / "a.joblib", kind="cf", arrays=factories.cf_array_set(), metadata={"n": np.int32(3)}
    )
    assert type(written.metadata["n"]) is int

    with pytest.raises(InvalidMetadata, match="a set is not a JSON value"):
        write_bundle(tmp_path / "b.joblib", kind="cf", arrays=factories.cf_array_set(), metadata={"s": {1}})
    assert not (tmp_path / "b.joblib").exists()


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"tags": {"a"}}, "a set is not a JSON value"),
        ({"x": float("nan")}, "not a finite number"),
        ({"libraries": {"numpy": "9" * 100}}, "at most 32 characters"),
        ({"note": "a\x00b"}, "NUL"),
    ],
)
def test_bad_metadata_is_a_400_invalid_metadata_with_nothing_stored(
    tmp_path, settings, uploader, changes, words
):
    path = native_with_metadata(tmp_path / "cf.joblib", **changes)

    response = uploader.post(
        "/api/v1/models/", {"file": SimpleUploadedFile("cf.joblib", path.read_bytes())}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_metadata" and words in response.json()["detail"]
    assert_files_match_rows(settings)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "x.csv",
            b"customer_id,item_id,score\nC1,I1,0.5\n",
            "x.csv is a CSV text file, not a joblib or pickle file",
        ),
        ("x.json", b'{"a": 1}', "x.json is a JSON text file"),
        ("x.html", b"<html><body>hi</body></html>", "x.html is an HTML file"),
        ("x.zip", b"PK\x03\x04" + bytes(40), "x.zip is a ZIP archive"),
        ("x.bin", bytes(range(256)) * 4, "x.bin is binary data"),
    ],
)
def test_a_file_that_is_not_a_pickle_is_named_for_what_it_looks_like(
    uploader, settings, name, content, message
):
    response = uploader.post(
        "/api/v1/models/", {"file": SimpleUploadedFile(name, content)}, format="multipart"
    )

    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert_files_match_rows(settings)


def test_a_very_long_unicode_file_name_is_registered_under_a_shortened_name(tmp_path, uploader, settings):
    data = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=factories.cf_array_set()).path.read_bytes()

    response = uploader.post(
        "/api/v1/models/", {"file": SimpleUploadedFile("é" * 200 + ".joblib", data)}, format="multipart"
    )

    assert response.status_code == 202, response.content[:300]
    assert_files_match_rows(settings)


def test_a_very_long_unicode_name_on_a_bad_file_is_a_clean_400(uploader, settings):
    response = uploader.post(
        "/api/v1/models/",
        {"file": SimpleUploadedFile("é" * 200 + ".joblib", b"a,b\n1,2\n")},
        format="multipart",
    )

    assert response.status_code == 400
    assert "is a CSV text file" in response.json()["detail"]
    assert_files_match_rows(settings)


def test_a_row_that_cannot_be_written_leaves_no_stored_file(tmp_path, settings, monkeypatch):
    path = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=factories.cf_array_set()).path

    def refuse(**fields):
        raise DataError("value too long for type character varying(32)")

    monkeypatch.setattr(ModelVersion.objects, "create", refuse)
    with pytest.raises(DataError):
        services.version_register(path=path)

    assert ModelVersion.objects.count() == 0
    assert_files_match_rows(settings)


def test_a_failed_row_keeps_a_file_another_row_uses(tmp_path, settings, monkeypatch):
    path = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=factories.cf_array_set()).path
    first = services.version_register(path=path).version
    ModelVersion.objects.filter(pk=first.pk).update(content_sha256="other")  # same file, another row

    monkeypatch.setattr(
        ModelVersion.objects, "create", lambda **fields: (_ for _ in ()).throw(DataError("x"))
    )
    with pytest.raises(DataError):
        services.version_register(path=path)

    assert (settings.MEDIA_ROOT / first.file.name).is_file()
    assert_files_match_rows(settings)
