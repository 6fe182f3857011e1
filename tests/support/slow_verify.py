"""The Celery app with verification made slow, so a test can kill a worker mid-verify.

Only tests start a worker with ``-A tests.support.slow_verify``. Once the version is marked
``verifying``, the deep check waits ``TEST_VERIFY_SLEEP_SECONDS`` (default 600) first; the
rest of verification is the product's own code.
"""

import os
import time

from celery.signals import task_prerun

from hybridrec.celery import app

__all__ = ["app"]


@task_prerun.connect
def _slow_down_verification(**kwargs):
    from modelstore.services import verification

    if getattr(verification.verify_bundle, "slowed", False):
        return
    real = verification.verify_bundle

    def slow(bundle, *args, **kw):
        time.sleep(float(os.environ.get("TEST_VERIFY_SLEEP_SECONDS", "600")))
        return real(bundle, *args, **kw)

    slow.slowed = True
    verification.verify_bundle = slow
