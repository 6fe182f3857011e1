"""Names for the types the bundle API takes and returns."""

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

# Where a bundle or folder is: a str or any os.PathLike.
PathLike = str | os.PathLike[str]
# A bundle's arrays by name (see layout.py for the names each kind holds).
ArraySet = dict[str, np.ndarray]
# Anything numpy turns into an array: a list, an ndarray, a pandas column.
ArrayInput = npt.ArrayLike
# JSON-compatible metadata: str keys, plain values.
Metadata = dict[str, Any]
# ``progress(done_bytes, total_bytes)``.
Progress = Callable[[int, int], object]
