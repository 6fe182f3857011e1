"""Kill -9 the whole Celery worker mid-verify: with a new worker up, the version still ends ``ready``.

The first worker runs ``tests.support.slow_verify`` (verification waits before its deep check,
so the kill lands mid-verify at any machine speed); the second is the product's own worker with
the embedded beat and the default sweep settings. The message of the killed task is not
redelivered within the test (the visibility timeout is hours): the sweep is what finishes it.
"""

import os
import time

import pytest
from django.conf import settings as django_settings

from modelstore import services
from modelstore.bundles import write_bundle
from modelstore.models import ModelVersion
from tests import factories
from tests.support.celery_worker import Worker, broker_url, database_url, tasks_sent_to
from tests.support.processes import wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RECOVERY_SECONDS = 120


def test_a_version_ends_ready_after_its_worker_is_killed_mid_verify(tmp_path, settings):
    broker = broker_url()
    env = {
        **os.environ,
        "CELERY_BROKER_URL": broker,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "HYBRIDREC_BUNDLE_CACHE_DIR": str(settings.HYBRIDREC_BUNDLE_CACHE_DIR),
        "PYTHONPATH": str(django_settings.BASE_DIR),
        "TEST_VERIFY_SLEEP_SECONDS": "600",
    }
    for name in ("HYBRIDREC_STUCK_VERIFY_SECONDS", "HYBRIDREC_SWEEP_SECONDS", "REDIS_URL"):
        env.pop(name, None)  # the defaults are what is measured
    path = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=factories.cf_array_set(seed=0)).path
    version = services.version_register(path=path, label="cf-killed").version

    doomed = Worker(env, tmp_path / "doomed.log", app_module="tests.support.slow_verify")
    replacement = None
    try:
        doomed.wait_ready()
        with tasks_sent_to(broker):
            services.version_queue_verify(version=version)
        wait_until(
            lambda: ModelVersion.objects.get(pk=version.pk).status == "verifying",
            timeout=90,
            interval=0.2,
            message=f"verification started\n{doomed.output()[-2000:]}",
        )
        doomed.kill_all()
        killed_at = time.monotonic()
        assert ModelVersion.objects.get(pk=version.pk).status == "verifying"

        replacement = Worker(env, tmp_path / "replacement.log", beat_schedule=tmp_path / "beat-schedule")
        replacement.wait_ready()
        up_at = time.monotonic()
        wait_until(
            lambda: ModelVersion.objects.get(pk=version.pk).status == "ready",
            timeout=RECOVERY_SECONDS,
            interval=0.5,
            message=f"ready after the kill\n{replacement.output()[-3000:]}",
        )
        now = time.monotonic()
        print(
            f"ready {now - killed_at:.1f} s after the kill, {now - up_at:.1f} s after the new worker was up"
        )
    finally:
        if replacement is not None:
            replacement.stop()
        if doomed.process.poll() is None:
            doomed.kill_all()
        doomed.log.close()
