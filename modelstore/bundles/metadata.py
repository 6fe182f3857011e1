"""Bundle metadata as plain JSON: converted where that is exact, refused where it is not.

Metadata comes out of a pickle, whose memo lets one list or dict appear many times for two
bytes each: 14 levels of one list used 8 times are 863 bytes of pickle and 8**14 values as
JSON. So the JSON size is bounded before anything is converted, counting each value as often
as the tree uses it but working each one out once.
"""

import datetime as dt
import json
import math
from typing import Any, NoReturn

import numpy as np

from .costs import short_repr
from .exceptions import InvalidMetadata

MAX_DEPTH = 16
MAX_JSON_BYTES = 256 * 1024
MAX_VERSION_LENGTH = 32  # the registry's library version fields


Path = tuple[str | int, ...]


def _spelled(path: Path) -> str:
    """Return ``("a", 0, "b")`` as ``a[0].b`` (written only for an error: paths may be long)."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part[:40]}" if text else part[:40]
    return text or "(top level)"


def _refuse(path: Path, message: str) -> NoReturn:
    raise InvalidMetadata(f"bundle metadata {_spelled(path)}: {message}")


def _text(value: str, path: Path) -> str:
    if "\x00" in value:
        _refuse(path, "text holds a NUL character")
    return value


def _least_json_bytes(value: object, depth: int, known: dict[int, int]) -> int:
    """Return the fewest bytes ``value`` can take as JSON, refusing past ``MAX_JSON_BYTES``.

    ``known`` holds the result for each container already worked out (by ``id``), so a shared
    list costs its bytes at every use but is walked once.
    """
    if isinstance(value, str):
        return len(value) + 2
    if type(value) is int:
        return value.bit_length() * 3 // 10 + 1  # 2**10 > 10**3: at least that many digits
    if not isinstance(value, dict | list | tuple):
        return 1
    if id(value) in known:
        return known[id(value)]
    if depth > MAX_DEPTH:
        _refuse((), f"nests deeper than {MAX_DEPTH} levels")
    total = 2
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        total += 2 + (len(key) + 2 if isinstance(value, dict) and isinstance(key, str) else 0)
        total += _least_json_bytes(item, depth + 1, known)
        if total > MAX_JSON_BYTES:
            _refuse(
                (),
                f"is more than {MAX_JSON_BYTES:,} bytes of JSON, the limit (values used many times count each time)",
            )
    known[id(value)] = total
    return total


def _plain(value: object, path: Path, depth: int) -> Any:
    if depth > MAX_DEPTH:
        _refuse(path, f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, np.generic) and not isinstance(value, np.object_ | np.void):
        value = value.item()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            _refuse(path, f"{value} is not a finite number")
        return float(value)
    if isinstance(value, str):
        return _text(str(value), path)
    if isinstance(value, dict):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                _refuse(path, f"key {type(key).__name__} {short_repr(key)} is not text")
            plain[_text(str(key), path)] = _plain(item, (*path, key), depth + 1)
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, (*path, i), depth + 1) for i, item in enumerate(value)]
    _refuse(path, f"a {type(value).__name__} is not a JSON value (text, number, list or dict)")


def plain_metadata(metadata: object) -> dict[str, Any]:
    """Return ``metadata`` as plain JSON types, or raise ``InvalidMetadata`` saying why not.

    numpy scalars become Python numbers and dates ISO text; sets, bytes, complex numbers,
    NaN and infinity, NUL characters, keys that are not text, nesting deeper than
    ``MAX_DEPTH`` and more than ``MAX_JSON_BYTES`` of JSON are refused. ``libraries`` holds
    versions of at most ``MAX_VERSION_LENGTH`` characters.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        _refuse((), f"is a {type(metadata).__name__}, not a dict")
    _least_json_bytes(metadata, 1, {})
    plain = _plain(metadata, (), 1)
    size = len(json.dumps(plain, ensure_ascii=False).encode())
    if size > MAX_JSON_BYTES:
        _refuse((), f"is {size:,} bytes of JSON, over the limit of {MAX_JSON_BYTES:,}")
    libraries = plain.get("libraries", {})
    if not isinstance(libraries, dict):
        _refuse(("libraries",), "is not a dict of library versions")
    for name, version in libraries.items():
        if version is not None and (not isinstance(version, str) or len(version) > MAX_VERSION_LENGTH):
            _refuse(("libraries", name), f"is not a version of at most {MAX_VERSION_LENGTH} characters")
    return plain
