"""Bundle metadata as plain JSON: converted where that is exact, refused where it is not."""

import datetime as dt
import json
import math
from typing import Any, NoReturn

import numpy as np

from .exceptions import InvalidMetadata

MAX_DEPTH = 16
MAX_JSON_BYTES = 256 * 1024
MAX_VERSION_LENGTH = 32  # the registry's library version fields


def _refuse(path: str, message: str) -> NoReturn:
    raise InvalidMetadata(f"bundle metadata {path or '(top level)'}: {message}")


def _text(value: str, path: str) -> str:
    if "\x00" in value:
        _refuse(path, "text holds a NUL character")
    return value


def _plain(value: object, path: str, depth: int) -> Any:
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
                _refuse(path, f"key {type(key).__name__} {str(key)[:40]!r} is not text")
            plain[_text(str(key), path)] = _plain(item, f"{path}.{key}" if path else key, depth + 1)
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
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
        _refuse("", f"is a {type(metadata).__name__}, not a dict")
    plain = _plain(metadata, "", 1)
    size = len(json.dumps(plain, ensure_ascii=False).encode())
    if size > MAX_JSON_BYTES:
        _refuse("", f"is {size:,} bytes of JSON, over the limit of {MAX_JSON_BYTES:,}")
    libraries = plain.get("libraries", {})
    if not isinstance(libraries, dict):
        _refuse("libraries", "is not a dict of library versions")
    for name, version in libraries.items():
        if version is not None and (not isinstance(version, str) or len(version) > MAX_VERSION_LENGTH):
            _refuse(f"libraries.{name}", f"is not a version of at most {MAX_VERSION_LENGTH} characters")
    return plain
