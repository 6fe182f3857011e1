"""Offline evaluation of registered versions on held-out interactions.

For every test customer each strategy recommends ``k`` items, leaving out what the customer
had in training (the CF bundle's interactions); the lists are scored with
``recommendations.training.metrics`` against the customer's held-out items.

What ``evaluate_version`` stores on the CF version (``ModelVersion.metrics``)::

    {"k": 10, "test": "test.csv", "test_sha256": "…", "customers": 1440, "relevant_items": 32800,
     "dropped_unknown_items": 0, "weight": 0.9, "cb_version": {"id": 2, "label": "…"} | None,
     "seconds": 3.1,
     "strategies": {"cf": {"precision", "recall", "ndcg", "map", "coverage", "fallback_share"},
                    "cb": {…}, "hybrid": {…}, "popular": {…}}}

``cb`` and ``hybrid`` are present only when a CB version was evaluated too.
"""

import time
from pathlib import Path

import numpy as np

from modelstore import services, storage
from modelstore.bundles import BundleError, file_sha256, open_bundle
from modelstore.bundles.filebudget import read_csv_frame
from modelstore.metrics import EvaluationResult
from recommendations.engines import CBEngine, CFEngine, HybridEngine
from recommendations.engines.hybrid import DEFAULT_WEIGHT

from .exceptions import one_line
from .metrics import ranking_metrics

STRATEGIES = ("cf", "cb", "hybrid", "popular")
METRICS = ("precision", "recall", "ndcg", "map", "coverage", "fallback_share")


class EvaluationError(ValueError):
    """The test file or the versions cannot be evaluated."""


def read_test_pairs(path, *, limits=None):
    """Return ``(customer_ids, item_ids)`` string arrays from a ``customer_id,item_id`` CSV.

    The file is read within ``limits`` (the registry's bundle limits by default), as every
    training CSV is: its text, lines and columns are bounded before pandas parses it.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"test file {path} does not exist")
    try:
        table = read_csv_frame(
            path, limits or services.bundle_limits(), dtype=str, usecols=["customer_id", "item_id"]
        )
    except BundleError as exc:
        raise EvaluationError(f"{path.name}: {one_line(exc)}") from None
    except pd.errors.EmptyDataError:
        raise EvaluationError(f"{path.name} is empty") from None
    except UnicodeDecodeError:
        raise EvaluationError(f"{path.name} is not a text CSV file") from None
    except ValueError as exc:
        reason = one_line(exc)
        raise EvaluationError(f"{path.name} needs the columns customer_id and item_id ({reason})") from None
    table = table.dropna()
    if table.empty:
        raise EvaluationError(f"{path.name} holds no interactions")
    return table["customer_id"].to_numpy(dtype=str), table["item_id"].to_numpy(dtype=str)


def _strategies(cf, cb, hybrid, weight):
    """Return ``{name: function(customer_id, had, k) -> Recommendations}`` for what can run."""
    functions = {
        "cf": lambda customer, had, k: cf.recommend(customer, k=k),
        "popular": lambda customer, had, k: cf.popular(k=k, exclude=had),
    }
    if cb is not None:

        def content(customer, had, k):
            result = cb.for_items(had, k=k, exclude=had) if len(had) else None
            if result is None or len(result) == 0:
                result = cf.popular(k=k, exclude=had)
                return type(result)(result.item_ids, result.scores, "popular")
            return result

        functions["cb"] = content
        functions["hybrid"] = lambda customer, had, k: hybrid.recommend(customer, k=k, weight=weight)
    return functions


def evaluate_engines(*, cf, cb=None, customer_ids, item_ids, k=10, weight=DEFAULT_WEIGHT):
    """Return ``{"k", "customers", "relevant_items", "dropped_unknown_items", "strategies"}``.

    ``customer_ids`` and ``item_ids`` are the held-out pairs (``<U`` arrays); items outside
    the CF catalogue are dropped (no strategy could recommend them). ``strategies`` maps
    each strategy that can run to its ``METRICS``.
    """
    item_rows, known_item = cf.items.rows(item_ids)
    if not known_item.any():
        raise EvaluationError("no held-out item is in the CF version's catalogue")
    customer_ids, item_rows = customer_ids[known_item], item_rows[known_item]
    customers, inverse = np.unique(customer_ids, return_inverse=True)
    relevant = [set() for _ in customers]
    for index, row in zip(inverse.tolist(), item_rows.tolist(), strict=True):
        relevant[index].add(row)
    hybrid = HybridEngine(cf, cb) if cb is not None else None
    results = {}
    for name, recommend in _strategies(cf, cb, hybrid, weight).items():
        recommended = np.full((len(customers), k), -1, dtype=np.int64)
        fallback = np.zeros(len(customers), dtype=bool)
        for index, customer in enumerate(customers.tolist()):
            had = cf.customer_items(customer) if cf.has_customer(customer) else np.empty(0, dtype=str)
            result = recommend(customer, had, k)
            rows, _ = cf.items.rows(result.item_ids)
            recommended[index, : len(rows)] = rows
            fallback[index] = result.fallback is not None
        metrics = ranking_metrics(recommended, relevant, k, n_items=cf.n_items, fallback=fallback)
        results[name] = {key: float(metrics[key]) for key in METRICS}
    return {
        "k": k,
        "customers": int(len(customers)),
        "relevant_items": int(item_rows.size),
        "dropped_unknown_items": int((~known_item).sum()),
        "strategies": results,
    }


def _engine(version, engine_class):
    if not version.file:
        raise EvaluationError(f"version {version.label} has no stored bundle file ({version.status})")
    path = storage.local_path(version.file.name, version.sha256)
    return engine_class(open_bundle(path, expected_sha256=version.sha256).arrays)


def evaluate_version(*, cf_version, cb_version=None, test_path, k=10, weight=None):
    """Evaluate a CF version (with a CB version for cb and hybrid); store and return the metrics.

    ``weight`` is CF's share of the hybrid blend, HYBRIDREC_HYBRID_WEIGHT when None.
    """
    from django.conf import settings

    if weight is None:
        weight = settings.HYBRIDREC_HYBRID_WEIGHT
    if cf_version.kind != "cf":
        raise EvaluationError(f"version {cf_version.label} is {cf_version.kind}, not cf")
    if cb_version is not None and cb_version.kind != "cb":
        raise EvaluationError(f"version {cb_version.label} is {cb_version.kind}, not cb")
    if not 1 <= k <= 1000:
        raise EvaluationError(f"k={k} is outside 1..1000")
    if not 0.0 <= weight <= 1.0:
        raise EvaluationError(f"weight={weight} is outside [0, 1]")
    started = time.perf_counter()
    customer_ids, item_ids = read_test_pairs(test_path)
    cf = _engine(cf_version, CFEngine)
    cb = _engine(cb_version, CBEngine) if cb_version is not None else None
    metrics = EvaluationResult(
        **evaluate_engines(cf=cf, cb=cb, customer_ids=customer_ids, item_ids=item_ids, k=k, weight=weight),
        test=Path(test_path).name,
        test_sha256=file_sha256(test_path),
        weight=weight,
        cb_version={"id": cb_version.pk, "label": cb_version.label} if cb_version else None,
        seconds=round(time.perf_counter() - started, 2),
    ).to_json()  # the one shape the admin reads (modelstore.metrics)
    services.version_record_metrics(version=cf_version, metrics=metrics)
    return metrics
