"""The side-by-side facts of a version and the active one, on the activate and roll-back pages."""

from dataclasses import dataclass, field

from ..formatting import human_bytes, vector_word
from ..metrics import version_metrics
from ..models import ModelVersion
from .panels import when


def _facts(version):
    """Return ``{key: (text, number or None)}`` for one version's side of the comparison (or None)."""
    if version is None:
        return None
    metrics = version_metrics(version)
    ndcg = metrics.headline_ndcg(version.kind) if metrics else None
    cf = version.kind == ModelVersion.Kind.CF
    return {
        "label": (version.label, None),
        "status": (version.get_status_display(), None),
        "users": (f"{version.n_users:,}", version.n_users) if cf else ("—", None),
        "items": (f"{version.n_items:,}", version.n_items),
        "recommendations": (f"{version.n_recommendations:,}", version.n_recommendations),
        "factors": (f"{version.n_factors:,}", version.n_factors),
        "factors_dtype": ((version.metadata or {}).get("factors_dtype", "float32") if cf else "—", None),
        "size": (human_bytes(version.size_bytes), version.size_bytes),
        "compression": (version.compression or "none (memory-mapped)", None),
        "layout": (version.source_layout or "—", None),
        "ndcg": (
            f"{ndcg[0]:.4f} ({ndcg[2]}{f' @{ndcg[1]}' if ndcg[1] else ''})" if ndcg else "—",
            ndcg[0] if ndcg else None,
        ),
        "created": (when(version.created_at), None),
        "created_by": (version.created_by.get_username() if version.created_by_id else "—", None),
        "activated": (when(version.activated_at), None),
    }


def _fact_labels(version):
    """Return ``(key, title)`` of the comparison rows; CB rows speak of neighbours and terms or dimensions."""
    if version.kind == ModelVersion.Kind.CF:
        counts = (
            ("users", "Users"),
            ("items", "Items"),
            ("recommendations", "Recommendations"),
            ("factors", "Factors"),
            ("factors_dtype", "Customer factors stored as"),
        )
    else:
        counts = (
            ("items", "Items"),
            ("recommendations", "Precomputed neighbours"),
            ("factors", vector_word(version).capitalize()),
        )
    return (
        ("label", "Label"),
        ("status", "Status"),
        *counts,
        ("size", "Size"),
        ("compression", "Compression"),
        ("layout", "Source layout"),
        ("ndcg", "NDCG"),
        ("created", "Created"),
        ("created_by", "Created by"),
        ("activated", "Last activated"),
    )


def _difference(key, mine, theirs):
    """Return the candidate minus the active value as text ("+120", "−1.2 MiB", "+0.0150 (+12.0 %)"), or ""."""
    if mine is None or theirs is None or mine == theirs:
        return ""
    delta = mine - theirs
    sign = "+" if delta > 0 else "−"
    if key == "size":
        return f"{sign}{human_bytes(abs(delta))}"
    if key == "ndcg":
        share = f" ({sign}{abs(delta) / theirs * 100:.1f} %)" if theirs else ""
        return f"{sign}{abs(delta):.4f}{share}"
    return f"{sign}{abs(delta):,}"


@dataclass
class FactComparison:
    """The side-by-side table: rows that differ, and identical rows (shown folded)."""

    differing: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # title, candidate, active, difference
    identical: list[tuple[str, str]] = field(default_factory=list)  # title, value


def compare_facts(version, other):
    """Compare two versions' facts row by row; without ``other`` every row is listed as differing."""
    mine, theirs = _facts(version), _facts(other)
    comparison = FactComparison()
    for key, title in _fact_labels(version):
        text, number = mine[key]
        if theirs is None:
            comparison.differing.append((title, text, "", ""))
            continue
        their_text, their_number = theirs[key]
        if text == their_text:
            comparison.identical.append((title, text))
        else:
            comparison.differing.append((title, text, their_text, _difference(key, number, their_number)))
    return comparison
