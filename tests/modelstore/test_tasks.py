"""Celery tasks: in-process by default, and through a real worker on the real Redis."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from hybridrec.celery import app
from modelstore import services, tasks
from modelstore.models import ModelVersion
from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]


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

    def killed(value, filename, **kwargs):
        Path(filename).write_bytes(b"half a bundle")
        raise KeyboardInterrupt  # the worker dies mid-write

    monkeypatch.setattr(joblib, "dump", killed)
    version = services.version_start_build(kind="cf")
    with pytest.raises(KeyboardInterrupt):
        services.version_build(kind="cf", artifacts_path=cf_folder, version=version)
    assert media_files() == []
    version.refresh_from_db()
    assert not version.file and version.status == "building"


def _broker_url():
    url = os.environ.get("HYBRIDREC_TEST_BROKER_URL")
    if not url:
        skip_or_fail("HYBRIDREC_TEST_BROKER_URL is not set (a Redis for the real-worker test)")
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis at {url} does not answer: {exc}")
    return url


def _database_url():
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        host = settings.get("HOST") or "127.0.0.1"
        port = settings.get("PORT") or 5432
        return f"postgresql://{settings.get('USER') or 'postgres'}@{host}:{port}/{settings['NAME']}"
    if connection.vendor == "sqlite" and not connection.is_in_memory_db():
        return f"sqlite:///{settings['NAME']}"
    skip_or_fail("the worker needs a database it can share: PostgreSQL (DATABASE_URL) or an SQLite file")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_builds_a_bundle_through_redis(cf_folder, settings):
    broker = _broker_url()
    database = _database_url()
    env = {
        **os.environ,
        "CELERY_BROKER_URL": broker,
        "DATABASE_URL": database,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONPATH": str(ROOT),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hybridrec",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    previous = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}
    app.conf.update(broker_url=broker, task_always_eager=False)
    try:
        version = services.version_start_build(kind="cf")
        # An explicit connection: the app's pool may already point at the default broker.
        with app.connection_for_write(broker) as connection_to_broker:
            tasks.build_bundle.apply_async(
                (version.pk, str(cf_folder), None), {"activate": True}, connection=connection_to_broker
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if ModelVersion.objects.filter(kind="cf", is_active=True).exists():
                break
            if worker.poll() is not None:
                break
            time.sleep(0.2)
        built = ModelVersion.objects.filter(kind="cf").first()
        assert built is not None and built.is_active and built.status == "ready", (
            f"worker did not build the bundle; row: {built}"
        )
        assert (settings.MEDIA_ROOT / built.file.name).is_file()
    finally:
        app.conf.update(**previous)
        worker.terminate()
        try:
            output, _ = worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
        print(output)  # shown by pytest when the test fails
