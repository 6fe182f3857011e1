"""Red-team run: every hostile family through every door it applies to, on a real gunicorn over PostgreSQL.

    make attack                                   # every family (a few minutes on two cores)
    .venv/bin/python -m bench.redteam --only memo # the families whose name contains "memo"

Prints one line per family: the doors and what each answered, the slowest answer in ms, the
largest peak RSS growth of a gunicorn worker in MB (for a command: its time and peak above its
run on a good input), and the rows and files left behind. Exits 1 when a family was not refused
(or its counts not bounded), took longer than ``--max-ms``, grew a process by more than
``--max-mb``, or left a row or a file.
"""

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from bench.redteam import counting, doors, families, memory  # noqa: E402
from bench.redteam import stand as stands  # noqa: E402


@dataclass
class Line:
    """The printed result of one family."""

    family: str
    outcomes: list = field(default_factory=list)
    ms: float = 0.0
    mb: float = 0.0
    rows: int = 0
    files: int = 0
    problems: list = field(default_factory=list)

    def text(self):
        verdict = "FAILED" if self.problems else "ok"
        why = f" — {'; '.join(self.problems)}" if self.problems else ""
        return (
            f"{verdict:6} {self.family}: {', '.join(self.outcomes)}; {self.ms:.0f} ms; +{self.mb:.1f} MB; "
            f"rows {self.rows}, files {self.files}{why}"
        )


def attempt(ctx, door, call, baselines):
    """Make one attempt; return ``(answer, ms, MB, rows left, files left)``, restarting a hung server."""
    running = ctx.stand
    since, before = running.high_water(), running.files()
    peaks = memory.reset_peaks(running.workers())
    started = time.perf_counter()
    try:
        answer = call()
    except Exception as exc:  # one family's surprise must not hide the other families' lines
        answer = doors.Answer(door, False, f"runner error: {type(exc).__name__}: {str(exc)[:120]}", hung=True)
    ms = (time.perf_counter() - started) * 1000
    growth, gone = memory.peak_growth_mb(peaks)
    if door in baselines:
        # A command's own start (Django, pandas) is not the attack's doing: count what it added.
        good = baselines[door]
        ms = max(0.0, ms - good.ms)
        growth = max(0.0, (answer.peak_mb or 0.0) - good.mb)
    if gone:
        answer.outcome += f" (worker {', '.join(map(str, gone))} died: its peak is not known)"
        answer.refused = False
    if answer.hung or gone:
        running.restart()  # a worker still busy with the attack would slow every later family
    return answer, ms, growth, running.left_rows(since), len(running.files() - before)


@dataclass
class Baseline:
    """A command's time and peak on a good input: what its attempts are measured above."""

    ms: float
    mb: float


def good_run(call):
    started = time.perf_counter()
    answer = call()
    if answer.refused or answer.hung:
        raise SystemExit(f"red team: a good input was not built: {answer.door} {answer.outcome}")
    return Baseline((time.perf_counter() - started) * 1000, answer.peak_mb or 0.0)


def run_family(ctx, family, baselines, limits):
    line = Line(family.name)
    for door, call in family.attempts(ctx):
        answer, ms, mb, rows, files = attempt(ctx, door, call, baselines)
        line.outcomes.append(f"{door} {answer.outcome}")
        line.ms, line.mb = max(line.ms, ms), max(line.mb, mb)
        line.rows, line.files = line.rows + rows, line.files + files
        if not answer.refused:
            line.problems.append(f"{door} not refused")
        if ms > limits.max_ms:
            line.problems.append(f"{door} took {ms:.0f} ms (> {limits.max_ms:g})")
        if mb > limits.max_mb:
            line.problems.append(f"{door} grew {mb:.0f} MB (> {limits.max_mb:g})")
    if line.rows or line.files:
        line.problems.append("left rows or files")
    if ctx.marker.exists():
        line.problems.append("the marker file exists: something ran")
    return line


def run_counting(ctx, experiment, name, family, limits):
    line = Line(name)
    peaks = memory.reset_peaks(ctx.stand.workers())
    since, before = ctx.stand.high_water(), ctx.stand.files()
    outcome = experiment.run(family)
    line.mb, gone = memory.peak_growth_mb(peaks)
    line.outcomes.append(("bounded: " if outcome.bounded else "NOT bounded: ") + outcome.note)
    line.ms = outcome.slowest_ms
    line.rows, line.files = ctx.stand.left_rows(since), len(ctx.stand.files() - before)
    if not outcome.bounded:
        line.problems.append("counts not bounded")
    if gone:
        line.problems.append("a worker died")
    if line.ms > limits.max_ms:
        line.problems.append(f"slowest request {line.ms:.0f} ms (> {limits.max_ms:g})")
    if line.mb > limits.max_mb:
        line.problems.append(f"grew {line.mb:.0f} MB (> {limits.max_mb:g})")
    if line.rows or line.files:
        line.problems.append("left rows or files")
    return line


def summarise_corpus(lines):
    """Fold the corpus kinds' lines into one, naming the kinds that failed."""
    line = Line(f"corpus: {len(lines)} kinds of tests/security/hostile.py")
    failed = [each for each in lines if each.problems]
    line.outcomes.append("every kind refused at API upload and admin upload" if not failed else "")
    line.ms = max((each.ms for each in lines), default=0.0)
    line.mb = max((each.mb for each in lines), default=0.0)
    line.rows, line.files = sum(each.rows for each in lines), sum(each.files for each in lines)
    if failed:
        line.outcomes = [f"{len(failed)} kinds failed (above)"]
        line.problems.append(", ".join(each.family.removeprefix("corpus: ") for each in failed))
    return line


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="run only the families whose name contains this text")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds an attempt may take before it hung"
    )
    parser.add_argument("--max-ms", type=float, default=5000.0, help="the slowest refusal allowed")
    parser.add_argument("--max-mb", type=float, default=200.0, help="the largest peak RSS growth allowed")
    limits = parser.parse_args(argv)
    only = limits.only.lower()
    lines = []

    def report(line):
        lines.append(line)
        print(line.text(), flush=True)

    with tempfile.TemporaryDirectory(prefix="hybridrec-redteam-") as folder:
        scratch = Path(folder) / "scratch"
        scratch.mkdir()
        with stands.stand(Path(folder) / "stand") as running:
            print(
                f"red team: gunicorn {running.url} ({stands.WORKERS} workers), database {running.database}",
                flush=True,
            )
            ctx = families.Context(running, doors.AdminSession(running), limits.timeout, scratch)
            baselines = {door: good_run(call) for door, call in families.good_inputs(ctx).items()}
            for family in families.FAMILIES:
                if only in family.name.lower():
                    report(run_family(ctx, family, baselines, limits))
            corpus = [
                run_family(ctx, family, baselines, limits)
                for family in families.corpus_families(ctx)
                if only in "corpus" or only in family.name.lower()
            ]
            for line in corpus:
                if line.problems:
                    print(line.text(), flush=True)
            if corpus:
                report(summarise_corpus(corpus))
            chosen = [(name, family) for name, family in counting.FAMILIES if only in name.lower()]
            if chosen:
                experiment = counting.Experiment(running)
                for name, family in chosen:
                    report(run_counting(ctx, experiment, name, family, limits))
    failed = [line for line in lines if line.problems]
    print(
        f"red team: {len(lines) - len(failed)} of {len(lines)} families refused or bounded within "
        f"{limits.max_ms:g} ms and {limits.max_mb:g} MB, nothing left behind"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
