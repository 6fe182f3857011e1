"""Offline metrics of a version: the stored shape, reading it back, and comparing two versions.

The evaluation (``recommendations.training.evaluation``) builds an ``EvaluationResult`` and stores
``to_json()`` on the CF version (``ModelVersion.metrics``)::

    {"k": 10, "test": "test.csv", "test_sha256": "…", "customers": 1440, "relevant_items": 32800,
     "dropped_unknown_items": 0, "weight": 0.9, "cb_version": {"id": 2, "label": "…"} | None,
     "seconds": 3.1, "strategies": {"cf": {"ndcg": 0.12, "precision": …}, "hybrid": {…}, …}}

The admin reads it back with ``EvaluationResult.from_json`` and compares two versions with
``compare_metrics``. A stored value that is not this shape reads as "no metrics".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import ModelVersion

# Metrics where a smaller value is the better one; every other number counts as "higher is better".
LOWER_IS_BETTER = frozenset({"fallback_share"})
METRIC_ORDER = ("ndcg", "map", "precision", "recall", "pooled_recall", "coverage", "fallback_share")


def metric_sort_key(metric: str) -> tuple[int, str]:
    """Return a sort key putting the usual ranking metrics first, NDCG leading."""
    return (METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER), metric)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class EvaluationResult:
    """What one offline evaluation measured: per strategy, per metric, at ``k`` on one test file."""

    k: int | None
    strategies: dict[str, dict[str, float]]
    test: str = ""
    test_sha256: str = ""
    customers: int | None = None
    relevant_items: int | None = None
    dropped_unknown_items: int = 0
    weight: float | None = None
    cb_version: dict[str, Any] | None = None
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the dict stored on ``ModelVersion.metrics``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> EvaluationResult | None:
        """Return the stored metrics, or None when there are none (or they are not this shape)."""
        if not isinstance(data, dict) or not isinstance(data.get("strategies"), dict):
            return None
        strategies = {
            str(name): {metric: float(value) for metric, value in values.items() if _number(value)}
            for name, values in data["strategies"].items()
            if isinstance(values, dict)
        }
        strategies = {name: values for name, values in strategies.items() if values}
        if not strategies:
            return None

        def whole(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return cls(
            k=whole("k"),
            strategies=strategies,
            test=data["test"] if isinstance(data.get("test"), str) else "",
            test_sha256=data["test_sha256"] if isinstance(data.get("test_sha256"), str) else "",
            customers=whole("customers"),
            relevant_items=whole("relevant_items"),
            dropped_unknown_items=whole("dropped_unknown_items") or 0,
            weight=float(data["weight"]) if _number(data.get("weight")) else None,
            cb_version=data["cb_version"] if isinstance(data.get("cb_version"), dict) else None,
            seconds=float(data["seconds"]) if _number(data.get("seconds")) else None,
        )

    def _counts(self) -> list[str]:
        counts = ((self.customers, "customers"), (self.relevant_items, "held-out items"))
        return [f"{value:,} {text}" for value, text in counts if value is not None]

    @property
    def test_data(self) -> str | None:
        """Return what the metrics were measured on (the test file's hash, else its name, and counts).

        Two versions' metrics are comparable when these are equal.
        """
        name = self.test_sha256 or self.test
        return " · ".join([name, *self._counts()]) if name else None

    @property
    def test_description(self) -> str | None:
        """Return the test file's name and what was evaluated ("test.csv · 1,440 customers"), or None."""
        if not self.test:
            return None
        return " · ".join([self.test.replace("\\", "/").rsplit("/", 1)[-1], *self._counts()])

    def metric_names(self) -> list[str]:
        """Return every metric measured for some strategy, in display order."""
        return sorted({m for values in self.strategies.values() for m in values}, key=metric_sort_key)

    def headline_ndcg(self, kind: str) -> tuple[float, int | None, str] | None:
        """Return ``(value, k, strategy)`` of the NDCG to show for a version of ``kind``, or None."""
        for name in (kind, "hybrid", *sorted(self.strategies)):
            if "ndcg" in self.strategies.get(name, {}):
                return self.strategies[name]["ndcg"], self.k, name
        return None


def version_metrics(version: ModelVersion) -> EvaluationResult | None:
    """Return a version's stored offline metrics, or None."""
    return EvaluationResult.from_json(version.metrics)


@dataclass
class MetricsComparison:
    """Candidate and active metrics side by side, when they were measured on the same data."""

    comparable: bool
    reason: str = ""
    test_data: str = ""
    k: int | None = None
    # (strategy, metric, candidate, active, worse, difference)
    rows: list[tuple[str, str, float, float, bool, str]] = field(default_factory=list)
    same: list[tuple[str, str, float]] = field(default_factory=list)  # equal on both sides
    worse: list[str] = field(default_factory=list)  # "cf ndcg 0.1200 (active 0.1500)"


def compare_metrics(candidate: ModelVersion, active: ModelVersion | None) -> MetricsComparison:
    """Compare two versions' offline metrics; ``comparable`` only for the same test data and k."""
    if active is None:
        return MetricsComparison(False, "There is no active version to compare with.")
    mine, theirs = version_metrics(candidate), version_metrics(active)
    if mine is None or theirs is None:
        missing = [v.label for v, m in ((candidate, mine), (active, theirs)) if m is None]
        return MetricsComparison(False, f"No offline metrics for {' and '.join(missing)}.")
    if mine.test_data is None or mine.test_data != theirs.test_data:
        return MetricsComparison(False, "The metrics were not measured on the same test data.")
    if mine.k != theirs.k:
        return MetricsComparison(
            False, f"The metrics were measured at different k ({mine.k} and {theirs.k})."
        )
    comparison = MetricsComparison(True, test_data=mine.test_description or mine.test_data, k=mine.k)
    for strategy in sorted(set(mine.strategies) & set(theirs.strategies)):
        ours, others = mine.strategies[strategy], theirs.strategies[strategy]
        for metric in sorted(set(ours) & set(others), key=metric_sort_key):
            new, old = ours[metric], others[metric]
            if f"{new:.4f}" == f"{old:.4f}":
                comparison.same.append((strategy, metric, new))
                continue
            worse = new > old if metric in LOWER_IS_BETTER else new < old
            share = f" ({(new - old) / old * 100:+.1f} %)" if old else ""
            difference = f"{new - old:+.4f}{share}".replace("-", "−")
            comparison.rows.append((strategy, metric, new, old, worse, difference))
            if worse:
                comparison.worse.append(f"{strategy} {metric} {new:.4f} (active {old:.4f})")
    if not comparison.rows and not comparison.same:
        return MetricsComparison(False, "The two versions share no strategy and metric to compare.")
    return comparison
