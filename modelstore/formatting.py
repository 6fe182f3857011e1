"""Formatting shared by the admin and the commands."""

BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def one_line(exc):
    """Return the first line of an error's text, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def human_bytes(size):
    """Return a size in binary units, as the README gives them (``2 GiB``, ``245.1 MiB``)."""
    if size is None:
        return "—"
    value = float(size)
    for unit in BINARY_UNITS:
        if value < 1024 or unit == BINARY_UNITS[-1]:
            break
        value /= 1024
    if unit == "B":
        return f"{value:.0f} B"
    text = f"{value:.1f}"
    return f"{text.removesuffix('.0')} {unit}"


def vector_word(version):
    """Return what a CB version's vector columns are: "terms" for plain TF-IDF, else "dimensions"."""
    stack = [version.metadata] if isinstance(version.metadata, dict) else []
    while stack:
        node = stack.pop()
        if node.get("algorithm") == "tfidf":
            return "terms"
        stack.extend(value for value in node.values() if isinstance(value, dict))
    return "dimensions"


def version_contents(version):
    """Return a version's counts as phrases: users, items, recommendations and factors (CF) or
    items, terms or dimensions, and precomputed neighbours (CB)."""
    if version.kind == "cb":
        parts = [f"{version.n_items:,} items", f"{version.n_factors:,} {vector_word(version)}"]
        if version.n_recommendations and version.n_items:
            parts.append(f"{version.n_recommendations // version.n_items:,} neighbours per item")
        return parts
    return [
        f"{version.n_users:,} users",
        f"{version.n_items:,} items",
        f"{version.n_recommendations:,} recommendations",
        f"{version.n_factors:,} factors",
    ]
