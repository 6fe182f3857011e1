"""Formatting shared by the admin and the commands."""

BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


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
