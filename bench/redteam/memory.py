"""Peak resident memory of processes during an attempt, from /proc (no sampling gaps).

Writing ``5`` to ``/proc/<pid>/clear_refs`` resets a process's peak (``VmHWM``) to its current
resident size, so the peak read afterwards is the highest the attempt drove it, however briefly.
"""

from pathlib import Path


def _status_kb(pid, name):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise LookupError(f"{name} not in /proc/{pid}/status")


def peak_kb(pid):
    """Return the peak resident kB of a running process, or None when it is gone."""
    try:
        return _status_kb(pid, "VmHWM")
    except (FileNotFoundError, ProcessLookupError):
        return None


def reset_peaks(pids):
    """Reset the peaks of ``pids``; return ``{pid: resident kB now}``, the baseline of the growth."""
    baseline = {}
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            baseline[pid] = _status_kb(pid, "VmRSS")
        except (FileNotFoundError, ProcessLookupError):
            continue
    return baseline


def peak_growth_mb(baseline):
    """Return ``(largest peak growth over the baseline in MB, pids that are gone)``."""
    growth, gone = 0.0, []
    for pid, resident_kb in baseline.items():
        try:
            growth = max(growth, (_status_kb(pid, "VmHWM") - resident_kb) / 1024)
        except (FileNotFoundError, ProcessLookupError):
            gone.append(pid)
    return growth, gone
