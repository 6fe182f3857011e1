"""Measuring helpers the parts share: page-cache reads, mmap opens, a command's seconds and peak memory."""

import mmap
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

READ_CHUNK = 16 * 1024 * 1024


def files_of(path: Path) -> list[Path]:
    """Return ``path`` itself, or every file under it when it is a folder."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def page_cache_read_seconds(path: Path) -> float:
    """Read every byte of ``path`` (a file or a folder's files) twice; return the second read's seconds.

    The first read puts the bytes in the page cache; the second is what copying them out of it
    costs, the floor of any load that reads the whole file.
    """
    buffer = bytearray(READ_CHUNK)
    seconds = 0.0
    for attempt in range(2):
        started = time.perf_counter()
        for file in files_of(path):
            with open(file, "rb", buffering=0) as handle:
                while handle.readinto(buffer):
                    pass
        if attempt:
            seconds = time.perf_counter() - started
    return seconds


def mmap_open_seconds(path: Path, repeat: int = 5) -> float:
    """Return the median seconds to open and map ``path`` read-only (no page is touched)."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ):
            pass
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


@dataclass(frozen=True)
class Finished:
    """A finished command: wall seconds, its peak resident memory (ru_maxrss), exit code, output."""

    seconds: float
    peak_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str


def run_measured(command: list[str], *, env: dict[str, str], cwd: Path) -> Finished:
    """Run ``command`` in a fresh process; return its wall seconds and its own peak RSS (from wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Finished(seconds, usage.ru_maxrss * 1024, process.returncode, out.read(), err.read())
