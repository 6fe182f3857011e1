"""Reading named arrays out of a bundle's array mapping."""

import numpy as np

from .exceptions import InvalidArrays


def required(arrays, name):
    """Return ``arrays[name]`` as a plain ndarray, or raise InvalidArrays naming it."""
    try:
        value = arrays[name]
    except KeyError:
        raise InvalidArrays(f"missing array {name!r}") from None
    # np.asarray turns a memmap into an ndarray view: no copy, no subclass
    # overhead on every slice.
    return np.asarray(value)


def optional(arrays, name):
    """Return ``arrays[name]`` as a plain ndarray, or None when absent."""
    value = arrays.get(name)
    return None if value is None else np.asarray(value)


def csr(arrays, prefix, parts, n_rows):
    """Return the ``(indptr, indices, ...)`` arrays named ``prefix_part``, or None when absent."""
    found = [optional(arrays, f"{prefix}_{part}") for part in parts]
    if all(value is None for value in found):
        return None
    if any(value is None for value in found):
        names = ", ".join(f"{prefix}_{part}" for part in parts)
        raise InvalidArrays(f"{names} must be given together")
    indptr, *data = found
    if indptr.shape != (n_rows + 1,):
        raise InvalidArrays(f"{prefix}_indptr has shape {indptr.shape}, expected ({n_rows + 1},)")
    for part, value in zip(parts[1:], data, strict=True):
        if value.shape != (int(indptr[-1]),):
            raise InvalidArrays(
                f"{prefix}_{part} has shape {value.shape}, but {prefix}_indptr ends at {int(indptr[-1])}"
            )
    return indptr, *data
