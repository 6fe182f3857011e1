"""The benchmark parts, in report order. Each is a module ``bench.parts.<name>`` with
``run(ctx: Context) -> Section``; a part whose module is missing is skipped with a line."""

import importlib
from collections.abc import Callable
from types import ModuleType

from bench.report import Context, Section

PARTS = ("load", "build", "requests", "memory", "swap", "scaling", "quantized", "experiments")

Runner = Callable[[Context], Section]


def part_module(name: str) -> ModuleType | None:
    """Return the module of part ``name``, or None when this checkout has no such module."""
    module_name = f"{__name__}.{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
