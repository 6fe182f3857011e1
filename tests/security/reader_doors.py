"""What the reader door tests share: the budget they set, queued work run at once, the checks of a refusal."""

import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from recommendations.training import tasks as training_tasks

# Generous for a busy 2-core machine: each refusal measured here takes well under a second
# (docs/SECURITY.md); before the budgets some of these ran for minutes or never ended.
REFUSAL_SECONDS = 10


@pytest.fixture(autouse=True)
def small_budget(settings):
    settings.HYBRIDREC_MAX_BUNDLE_BYTES = 8 * 1024**2


@pytest.fixture(autouse=True)
def queued_at_once(monkeypatch):
    """Run what the doors queue after the commit at once, inside the test's transaction."""
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())
    monkeypatch.setattr(
        training_tasks,
        "start_task",
        lambda task, *args, **kwargs: task.apply(args=args, kwargs=kwargs, throw=True),
    )


def stored_bundles(settings):
    folder = settings.MEDIA_ROOT / "bundles"
    return [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []


def refused_command(*args):
    started = time.perf_counter()
    with pytest.raises(CommandError) as refused:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    seconds = time.perf_counter() - started
    reason = str(refused.value)
    assert reason and "\n" not in reason.strip() and "Traceback" not in reason
    assert seconds < REFUSAL_SECONDS, f"refused after {seconds:.1f} s"
    return reason
