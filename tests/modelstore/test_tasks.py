"""Celery tasks: in-process by default, and through a real worker on the real Redis."""

import os
from pathlib import Path

import pytest

from modelstore import services, tasks
from modelstore.models import ModelVersion
from tests.support.celery_worker import Worker, broker_url, database_url, tasks_sent_to
from tests.support.processes import ROOT, wait_until


@pytest.mark.django_db
def test_build_task_runs_in_process_without_a_broker(cf_folder):
    version = services.version_start_build(kind="cf")
    built_id = tasks.build_bundle.delay(version.pk, str(cf_folder), None, activate=True).get()

    built = ModelVersion.objects.get(pk=built_id)
    assert built.status == "ready" and built.is_active


@pytest.mark.django_db
def test_build_task_records_failures_on_the_row(tmp_path):
    version = services.version_start_build(kind="cb")
    tasks.build_bundle.delay(version.pk, str(tmp_path / "missing"), None)
    version.refresh_from_db()
    assert version.status == "failed" and "does not exist" in version.error


@pytest.mark.django_db
def test_build_task_is_idempotent(cf_folder):
    first = services.version_start_build(kind="cf")
    first_id = tasks.build_bundle.delay(first.pk, str(cf_folder), None).get()
    again = services.version_start_build(kind="cf")
    again_id = tasks.build_bundle.delay(again.pk, str(cf_folder), None).get()

    assert again_id == first_id
    assert ModelVersion.objects.count() == 1
    assert tasks.build_bundle.delay(first_id, str(cf_folder), None).get() == first_id  # redelivered


@pytest.mark.django_db
def test_a_killed_build_leaves_no_half_file(cf_folder, monkeypatch, media_files):
    import joblib

    def killed(value, target, **kwargs):
        if hasattr(target, "write"):  # write_bundle hands joblib an open (hashing) file
            target.write(b"half a bundle")
        else:
            Path(target).write_bytes(b"half a bundle")
        raise KeyboardInterrupt  # the worker dies mid-write

    monkeypatch.setattr(joblib, "dump", killed)
    version = services.version_start_build(kind="cf")
    with pytest.raises(KeyboardInterrupt):
        services.version_build(kind="cf", artifacts_path=cf_folder, version=version)
    assert media_files() == []
    version.refresh_from_db()
    assert not version.file and version.status == "building"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_builds_a_bundle_through_redis(cf_folder, settings, tmp_path):
    broker = broker_url(flush=False)
    env = {
        **os.environ,
        "CELERY_BROKER_URL": broker,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONPATH": str(ROOT),
    }
    worker = Worker(env, tmp_path / "worker.log", pool="solo")
    try:
        worker.wait_ready()
        version = services.version_start_build(kind="cf")
        with tasks_sent_to(broker):
            tasks.build_bundle.delay(version.pk, str(cf_folder), None, activate=True)

        def built():
            assert worker.process.poll() is None, worker.output()[-3000:]
            return ModelVersion.objects.filter(kind="cf", is_active=True).first()

        built = wait_until(built, timeout=90, interval=0.2, message="the worker building the bundle")
        assert built.status == "ready", f"worker did not build the bundle; row: {built}"
        assert (settings.MEDIA_ROOT / built.file.name).is_file()
    finally:
        worker.stop()
        print(worker.output())  # shown by pytest when the test fails
