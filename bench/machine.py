"""The facts about the machine a benchmark ran on: CPU, cores, memory, kernel, Python, numpy, BLAS."""

import os
import platform
import re
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """Return the CPU's model name from /proc/cpuinfo (or what platform knows)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def memory_bytes() -> int | None:
    """Return the machine's total memory in bytes (MemTotal), or None when unknown."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def blas() -> str:
    """Return the BLAS numpy uses, with its version and thread count, as threadpoolctl sees it."""
    import numpy as np  # noqa: F401  (loads numpy's BLAS so threadpoolctl can see it)
    from threadpoolctl import threadpool_info

    found = [
        f"{info.get('internal_api')} {info.get('version')} ({info.get('num_threads')} threads)"
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    return ", ".join(found) or "none found"


def machine_facts() -> dict[str, Any]:
    """Return the facts the report prints about the machine (same keys every run)."""
    import numpy as np

    memory = memory_bytes()
    return {
        "CPU": cpu_model(),
        "cores": os.cpu_count(),
        "memory": f"{memory / 2**30:.1f} GiB" if memory else "unknown",
        "kernel": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "numpy": np.__version__,
        "BLAS": blas(),
    }
