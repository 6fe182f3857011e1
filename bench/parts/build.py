"""Build: registering a bundle from the seed layout at scale, through the product's own commands.

Two inputs of the same model: the seed layout's CF artifacts folder, built with
``manage.py bundle_models --cf-only --cf-artifacts DIR``, and the seed bundle, registered with
``manage.py import_bundle FILE --kind cf``. Each command runs in a fresh process on a scratch
database and media folder (migrated first, untimed) and does what a user's run does: read and
convert the input, write the bundle, hash it, store it, verify it. Its wall seconds and its
peak resident memory (``ru_maxrss`` from ``wait4``) are compared with the time to read the
input's bytes from the page cache and the time to load the input with its standard readers
(``np.load``, ``pickle.load`` (the C unpickler), ``scipy.sparse.load_npz``, ``pandas.read_parquet``
for a folder's files; ``joblib.load`` for the seed bundle), both measured just before, and with
the bundle it wrote.

Run alone: ``python -m bench --only build``.
"""

import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from bench.data import SCALES, Scale, dataset, size_bytes
from bench.measure import bench_env, page_cache_read_seconds, run_measured, warm_imports
from bench.report import Chart, Context, Section, Table

ROOT = Path(__file__).resolve().parents[2]
READ_RATIO_TARGET = 2.0
MEMORY_RATIO_TARGET = 1.5
BENCH_MAX_BYTES = 64 * 1024**3
# The last figure of a command's summary line: "built cf version 1 …, uncompressed, 14.1 s".
SERVICE_SECONDS = re.compile(r", ([0-9.]+) s$")

# Load an input with its standard readers in a fresh process (no checks, no conversion); print seconds.
STANDARD_READ = textwrap.dedent(
    """
    import pickle, sys, time
    from pathlib import Path
    import joblib, numpy, pandas, scipy.sparse
    path = Path(sys.argv[1])
    started = time.perf_counter()
    for file in sorted(path.iterdir()) if path.is_dir() else [path]:
        if file.suffix == ".npy":
            numpy.load(file)
        elif file.suffix == ".npz":
            scipy.sparse.load_npz(file)
        elif file.suffix == ".pkl":
            with open(file, "rb") as handle:
                pickle.load(handle)
        elif file.suffix == ".parquet":
            pandas.read_parquet(file)
        elif file.suffix == ".joblib":
            joblib.load(file)
        else:
            file.read_bytes()
    print(time.perf_counter() - started)
    """
)


def standard_read_seconds(path: Path) -> float:
    """Return the seconds to load ``path`` with its standard readers, in a fresh process."""
    finished = subprocess.run(
        [sys.executable, "-c", STANDARD_READ, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"reading {path} with the standard readers failed:\n{finished.stderr[-2000:]}")
    return float(finished.stdout.strip().splitlines()[-1])


# (case, title, form, command arguments after manage.py; {path} is the input)
CASES = (
    (
        "artifacts",
        "artifacts folder → bundle_models",
        "artifacts",
        ["bundle_models", "--cf-only", "--cf-artifacts", "{path}"],
    ),
    (
        "seed-bundle",
        "seed bundle → import_bundle",
        "seed-bundle",
        ["import_bundle", "{path}", "--kind", "cf"],
    ),
)


def run(ctx: Context) -> Section:
    default = ["tiny"] if ctx.quick else ["seed", "10m"]
    to_run = [SCALES[name] for name in ctx.scales_to_run(default)]
    results: dict[str, dict[str, Any]] = ctx.kept_results(default, [scale.name for scale in to_run])
    for scale in to_run:
        scratch = ctx.data_dir / "build-scratch"
        env = _migrated_scratch(scratch)
        results[scale.name] = {}
        for case, _title, form, arguments in CASES:
            path = dataset(scale, form, ctx)
            results[scale.name][case] = build_once(ctx, scale, case, path, arguments, scratch, env)
        shutil.rmtree(scratch, ignore_errors=True)
    scales = [SCALES[name] for name in default if name in results]
    section = Section(
        key="build",
        title="Build: a bundle from the seed layout at scale",
        command="python -m bench --only build" + (" --quick" if ctx.quick else ""),
        intro=__doc__.split("\n\n")[1].replace("\n", " "),
        tables=[_table(scale, results[scale.name]) for scale in scales],
        charts=[_chart(ctx, scales, results)],
        notes=_notes(scales, results),
        data={"results": results},
    )
    return section


def scratch_env(folder: Path) -> dict[str, str]:
    """Return the environment of a command on ``folder``'s own database and media."""
    sys.path.insert(0, str(ROOT))
    from tests.support.processes import SHARED_SERVICES, server_env

    env = server_env(folder, without=SHARED_SERVICES, HYBRIDREC_MAX_BUNDLE_BYTES=BENCH_MAX_BYTES)
    # The byte-code cache and thread settings of every measured process (bench.measure.bench_env),
    # with the product's own BLAS threads.
    cached = bench_env(folder.parent, ROOT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cached["PYTHONPYCACHEPREFIX"]
    return env


def _migrated_scratch(scratch: Path) -> dict[str, str]:
    """Make an empty registry in ``scratch`` (database and media); return its environment."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    env = scratch_env(scratch)
    warm_imports(env, ROOT)
    migrated = run_measured(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v0"], env=env, cwd=ROOT
    )
    if migrated.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{migrated.stderr[-2000:]}")
    return env


def build_once(
    ctx: Context,
    scale: Scale,
    case: str,
    path: Path,
    arguments: list[str],
    scratch: Path,
    env: dict[str, str],
) -> dict[str, Any]:
    """Register ``path`` in the scratch registry with the case's command; return its figures.

    The cases of one scale hold different content (the seed bundle has no interactions), so
    neither is taken for the other as already registered.
    """
    manage = [sys.executable, str(ROOT / "manage.py")]
    read = page_cache_read_seconds(path)
    ctx.log(f"{scale.name} {case}: loading the input with its standard readers")
    standard = standard_read_seconds(path)
    command = [*manage, *(str(path) if part == "{path}" else part for part in arguments)]
    ctx.log(f"{scale.name} {case}: {' '.join(command[1:])}")
    finished = run_measured(command, env=env, cwd=ROOT)
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments[:1])} failed:\n{finished.stderr[-3000:]}")
    bundles = [p for p in (scratch / "media").rglob("*.joblib") if p.is_file() and "cache" not in p.parts]
    output = max(bundles, key=lambda p: p.stat().st_mtime)  # the one this command stored
    summary = finished.stdout.strip().splitlines()[-1] if finished.stdout.strip() else ""
    result: dict[str, Any] = {
        "seconds": finished.seconds,
        "peak_rss_bytes": finished.peak_rss_bytes,
        "read_seconds": read,
        "standard_read_seconds": standard,
        "input_bytes": size_bytes(path),
        "output_bytes": output.stat().st_size,
        "summary": summary,
        "measured_at": time.strftime("%Y-%m-%d", time.gmtime()),
        # What the command itself reports for the service call, without its process's start.
        "service_seconds": float(match.group(1)) if (match := SERVICE_SECONDS.search(summary)) else None,
    }
    ctx.log(
        f"{scale.name} {case}: {finished.seconds:.1f} s, peak {finished.peak_rss_bytes / 1e9:.2f} GB, "
        f"read {read:.2f} s, standard readers {standard:.1f} s, output {result['output_bytes'] / 1e9:.2f} GB"
    )
    output.chmod(0o600)
    output.unlink()  # a 10 M bundle is 5 GB: keep the disk for the next case
    return result


def _table(scale: Scale, results: dict[str, Any]) -> Table:
    rows = []
    for case, title, _, _ in CASES:
        r = results[case]
        rows.append(
            [
                title,
                f"{r['input_bytes'] / 1e6:,.0f}",
                f"{r['read_seconds']:.2f}",
                f"{r['seconds']:.1f}",
                "—" if r.get("service_seconds") is None else f"{r['service_seconds']:.1f}",
                f"{r['seconds'] / r['read_seconds']:.1f}×",
                _standard(r, f"{r.get('standard_read_seconds', 0):.1f}"),
                _standard(r, f"{r['seconds'] / r.get('standard_read_seconds', 1):.1f}×"),
                f"{r['output_bytes'] / 1e6:,.0f}",
                f"{r['peak_rss_bytes'] / 1e6:,.0f}",
                f"{r['peak_rss_bytes'] / r['output_bytes']:.2f}×",
            ]
        )
    return Table(
        title=f"Build at {scale.label}",
        columns=[
            "input → command",
            "input MB",
            "page-cache read s",
            "build s",
            "of which the service s",
            "build × read",
            "standard readers s",
            "build × standard",
            "bundle MB",
            "peak RSS MB",
            "peak × bundle",
        ],
        rows=rows,
        limit=(
            "reading the input's bytes from the page cache (the column beside it) is the floor of any "
            "build; loading it with the standard readers (np.load, pickle.load, load_npz, read_parquet; "
            "joblib.load for the seed bundle), unchecked and unconverted, is what a trusting reader pays; the output bundle's size is the floor of a build that holds the model in memory "
            f"once. Targets: build ≤ {READ_RATIO_TARGET:g}× the read, peak ≤ {MEMORY_RATIO_TARGET:g}× "
            "the bundle."
        ),
        note="One run per row (in a fresh scratch registry); the build includes writing, hashing, "
        f"storing and verifying the bundle, as the command does; measured {rows_measured(results)}.",
    )


def _standard(result: dict[str, Any], text: str) -> str:
    return text if result.get("standard_read_seconds") else "—"


def rows_measured(results: dict[str, Any]) -> str:
    return ", ".join(sorted({r.get("measured_at", "") for r in results.values()}))


def _notes(scales: list[Scale], results: dict[str, Any]) -> list[str]:
    notes = []
    for scale in scales:
        for case, title, _, _ in CASES:
            r = results[scale.name][case]
            time_ratio = r["seconds"] / r["read_seconds"]
            memory_ratio = r["peak_rss_bytes"] / r["output_bytes"]
            standard = (
                f", {r['seconds'] / r['standard_read_seconds']:.1f}× the standard readers"
                if r.get("standard_read_seconds")
                else ""
            )
            notes.append(
                f"{scale.label}, {title}: {time_ratio:.1f}× the read "
                f"({'met' if time_ratio <= READ_RATIO_TARGET else 'NOT met'}){standard}, peak "
                f"{memory_ratio:.2f}× the bundle ({'met' if memory_ratio <= MEMORY_RATIO_TARGET else 'NOT met'})."
            )
    return notes


def _chart(ctx: Context, scales: list[Scale], results: dict[str, Any]) -> Chart:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=90)
    labels = [f"{title}\n{scale.label}" for scale in scales for _, title, _, _ in CASES]
    rows = [results[scale.name][case] for scale in scales for case, _, _, _ in CASES]
    positions = range(len(rows))
    axes[0].barh(positions, [r["seconds"] for r in rows], label="build")
    axes[0].barh(
        positions, [r.get("standard_read_seconds", 0) for r in rows], height=0.6, label="standard readers"
    )
    axes[0].barh(positions, [r["read_seconds"] for r in rows], height=0.3, label="page-cache read")
    axes[0].set_xlabel("seconds")
    axes[1].barh(positions, [r["peak_rss_bytes"] / 1e9 for r in rows], label="peak RSS")
    axes[1].barh(positions, [r["output_bytes"] / 1e9 for r in rows], height=0.4, label="bundle size")
    axes[1].set_xlabel("GB")
    for ax in axes:
        ax.set_yticks(list(positions), labels if ax is axes[0] else [""] * len(rows), fontsize=7)
        ax.invert_yaxis()
        ax.legend(fontsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    name = "build.png"
    fig.savefig(ctx.chart_path(name))
    plt.close(fig)
    return Chart(
        name,
        "Build seconds against loading the input with its standard readers and reading its bytes from the "
        "page cache, peak memory against the bundle size",
    )
