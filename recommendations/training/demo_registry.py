"""Set up the demo registry: synthetic purchases, two trained CF versions and a CB version, evaluated.

``demo_prepare`` is what ``make demo`` runs (through the ``demo_setup`` command). It makes demo
data, trains a default CF model and a weak one (8 factors, 2 iterations) on the purchases before
``SPLIT_DATE``, plus a CB model from the titles, into the first artifact root; builds and verifies
their bundles; stores each CF version's offline metrics (CF, CB, hybrid and popularity) on the
held-out purchases, so the admin compares them; and activates the default versions only where no version of that kind is active.
It never deactivates a version it did not make, and does nothing when the demo is already set up.
"""

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from modelstore import selectors, services
from modelstore.models import ModelVersion

from .demo import make_demo_artifacts
from .evaluation import evaluate_version
from .exceptions import TrainingError
from .pipeline import train_models

SPLIT_DATE = dt.date(2024, 11, 1)
LABELS = {"cf": "demo-cf", "cb": "demo-cb", "weak": "demo-cf-weak"}
WEAK_PARAMS = {"factors": 8, "iterations": 2}
RUN_FOLDERS = {"default": "demo-default", "weak": "demo-weak"}


@dataclass
class DemoResult:
    """What ``demo_prepare`` did: the versions by role, their metrics, what it activated and left alone."""

    created: bool
    versions: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    activated: list = field(default_factory=list)
    left_active: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
    seconds: float = 0.0


def demo_prepare(*, data_dir, users=20000, items=2000, seed=0, progress=None, user=None):
    """Make the demo data, train, build, evaluate and (where nothing is active) activate; return a DemoResult."""
    say = progress or (lambda message: None)
    started = time.perf_counter()
    existing = {
        role: version
        for role, label in LABELS.items()
        if (version := ModelVersion.objects.filter(label=label).first()) is not None
    }
    if existing:
        return DemoResult(created=False, versions=existing)
    roots = settings.HYBRIDREC_ARTIFACT_ROOTS
    if not roots:
        raise TrainingError("No artifact root to train into (HYBRIDREC_ARTIFACT_ROOTS is empty).")
    runs = Path(roots[0])

    say(f"making demo data: {users} customers, {items} items")
    data = make_demo_artifacts(data_dir, users=users, items=items, seed=seed, seed_folders=False)
    common = {
        "interactions_path": data["interactions_csv"],
        "split_date": SPLIT_DATE,
        "seed": seed,
    }
    say("training the default CF model and a CB model")
    default = train_models(**common, items_path=data["items_csv"], out_dir=runs / RUN_FOLDERS["default"])
    say("training a weak CF model (8 factors, 2 iterations)")
    weak = train_models(**common, **WEAK_PARAMS, out_dir=runs / RUN_FOLDERS["weak"])

    result = DemoResult(created=True, data=data)
    folders = {"cf": default["cf_dir"], "cb": default["cb_dir"], "weak": weak["cf_dir"]}
    for role, folder in folders.items():
        say(f"building and verifying {LABELS[role]}")
        kind = "cb" if role == "cb" else "cf"
        notes = _notes(role)
        version = services.version_build(
            kind=kind, artifacts_path=folder, label=LABELS[role], notes=notes, user=user
        ).version
        result.versions[role] = services.version_verify(version=version)

    for role in ("cf", "weak"):
        say(f"evaluating {LABELS[role]} on purchases from {SPLIT_DATE}")
        # Every strategy (CF, CB and hybrid with demo-cb, popularity), so each column can be compared.
        result.metrics[role] = evaluate_version(
            cf_version=result.versions[role], cb_version=result.versions["cb"], test_path=default["test_path"]
        )

    for role in ("cf", "cb"):
        version = result.versions[role]
        active = selectors.active_version(version.kind)
        if active is None:
            services.version_activate(version=version, user=user)
            result.activated.append(version)
        else:
            result.left_active.append(active)
    result.seconds = time.perf_counter() - started
    return result


def _notes(role):
    if role == "weak":
        return (
            f"Demo: a deliberately weak CF model ({WEAK_PARAMS['factors']} factors, "
            f"{WEAK_PARAMS['iterations']} iterations) to compare with demo-cf."
        )
    return f"Demo: trained with the defaults on synthetic purchases before {SPLIT_DATE}."
