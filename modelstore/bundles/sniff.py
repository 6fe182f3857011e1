"""Say what a file that is not a pickle looks like, from its first bytes."""

import os

from .exceptions import IncompatibleBundle
from .limits import decompressor_for


def describe_non_pickle(head: bytes) -> str | None:
    """Return what a file that is not a pickle looks like ("a CSV text file"), or None for a pickle."""
    if not head:
        return "an empty file"
    if head[0] == 0x80 or decompressor_for(head) is not None:
        return None
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "a ZIP archive"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy file"
    if head.startswith(b"PAR1"):
        return "a Parquet file"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    text: str | None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the end of the sample is still text
        text = head[: exc.start].decode("utf-8") if exc.start >= len(head) - 3 else None
    if text is None or any(ch < " " and ch not in "\t\r\n" for ch in text[:512]):
        return "binary data"
    stripped = text.lstrip("\ufeff \t\r\n").lower()
    if stripped.startswith(("<!doctype html", "<html", "<head", "<body")):
        return "an HTML file"
    if stripped.startswith("<"):
        return "an XML or HTML file"
    if stripped.startswith(("{", "[")):
        return "a JSON text file"
    first_line = stripped.split("\n", 1)[0]
    if "," in first_line or ";" in first_line or "\t" in first_line:
        return "a CSV text file"
    return "a text file"


def refuse_non_pickle(path: "str | os.PathLike[str]", name: str | None = None) -> bytes:
    with open(path, "rb") as handle:
        head = handle.read(1024)
    looks_like = describe_non_pickle(head)
    if looks_like is not None:
        name = name or os.path.basename(str(path))
        raise IncompatibleBundle(f"{name} is {looks_like}, not a joblib or pickle file")
    return head
