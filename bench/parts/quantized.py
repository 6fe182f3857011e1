"""Smaller customer factors (float16, int8 with a scale per row): what they cost in ranking
quality, and serving 100 M customers from a memory-mapped int8 bundle on a 24 GB machine.

    python -m bench --only quantized
    python -m bench.parts.quantized build BUNDLE --users N [--items M]      # the int8 bundle alone
    python -m bench.parts.quantized probe BUNDLE --users N [--cold] [--advise-random]  # one server

Quality: train once with ``train_models`` (Online Retail when present, and the demo data), write
the CF bundle three ways with ``write_artifacts_bundle(factors_dtype=…)`` (what
``bundle_models --out --factors-dtype`` does), and score each with ``evaluate_engines``, the
function ``evaluate_model`` stores. Precomputed lists are ranked from the float32 factors when
the bundle is built, so they are served unchanged; the table scores the engines with the lists
left out, so every answer is ranked from the stored factors (a customer without a list, a
topped-up list).

Scale: the 100 M bundle is assembled a million customers at a time into memory maps (float32
factors exist one chunk at a time, quantised with ``layout.quantise_rows``) and written with
``write_bundle``; ids are zero-padded 8-digit numbers in shuffled row order, made digit by digit
with numpy. Nothing holds a Python object per customer.
"""

import argparse
import json
import mmap
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.report import Context, Section, Table
from tests.support.data import ONLINE_RETAIL_FILE

ROOT = Path(__file__).resolve().parents[2]
ONLINE_RETAIL = ONLINE_RETAIL_FILE
DTYPES = ("float32", "float16", "int8")
FULL_USERS = 100_000_000
QUICK_USERS = 200_000
FULL_ITEMS, QUICK_ITEMS = 100_000, 2_000
FACTORS = 64
RECS_PER_USER = 10
CHUNK_USERS = 1_000_000
PROBE_CUSTOMERS, QUICK_PROBE_CUSTOMERS = 2_000, 300
# What the build needs on disk besides the bundle: the parts it writes before ``write_bundle``.
DISK_MARGIN_BYTES = 3 * 1024**3
GIB = 1024**3


def run(ctx: Context) -> Section:
    quality = Table(
        title="Ranking quality by customer-factor storage (k = 10, answers ranked from the stored factors)",
        columns=[
            "data",
            "factors",
            "NDCG@10",
            "change",
            "precision@10",
            "change",
            "customer factors",
            "bundle",
        ],
        rows=[],
        limit="the float32 model itself: int8 rounds each factor to within half a step of max|x| / 127 of its row",
        note="",
    )
    notes = []
    for name, trained in _trained_models(ctx):
        rows, served_same = _quality_rows(name, trained, ctx)
        quality.rows += rows
        notes.append(
            f"{name}: served with the precomputed lists, NDCG@10 is "
            + ("identical for all three storages" if served_same else "NOT identical across storages")
            + " (the lists are ranked from float32 factors at build time)."
        )
    scale = _scale_section(ctx)
    return Section(
        key="quantized",
        title="Smaller factors and 100 M customers",
        command="python -m bench --only quantized",
        intro=__doc__.split("\n\n", 1)[0].replace("\n", " "),
        tables=[quality, *scale.tables],
        notes=notes + scale.notes,
        data=scale.data,
    )


# --- quality ---------------------------------------------------------------------------------


def _setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hybridrec.settings")
    django.setup()


def _trained_models(ctx: Context):
    """Yield ``(data name, train_models summary)``: the demo data, and Online Retail when present."""
    _setup_django()
    from recommendations.training.demo import make_demo_artifacts
    from recommendations.training.demo_registry import SPLIT_DATE
    from recommendations.training.pipeline import train_models

    work = ctx.data_dir / "quantized-quality"
    shutil.rmtree(work, ignore_errors=True)
    users, items = (1_500, 300) if ctx.quick else (10_000, 2_000)
    ctx.log(f"demo data: {users:,} customers, {items:,} items; training")
    demo = make_demo_artifacts(work / "demo-data", users=users, items=items, seed=0, seed_folders=False)
    yield (
        f"demo ({users:,} × {items:,})",
        train_models(
            interactions_path=demo["interactions_csv"], split_date=SPLIT_DATE, seed=0, out_dir=work / "demo"
        ),
    )
    if ctx.quick or not ONLINE_RETAIL.is_file():
        return
    ctx.log("Online Retail: training (split 2011-11-01)")
    yield (
        "Online Retail",
        train_models(
            interactions_path=ONLINE_RETAIL,
            data_format="online-retail",
            split_date="2011-11-01",
            out_dir=work / "or",
        ),
    )


def _quality_rows(name, trained, ctx):
    """Return the table rows of one trained model written three ways, and whether served answers agree."""
    from modelstore.bundles import open_bundle, write_artifacts_bundle
    from recommendations.engines import CFEngine
    from recommendations.training.evaluation import evaluate_engines, read_test_pairs

    customers, items = read_test_pairs(trained["test_path"])
    folder = Path(trained["cf_dir"])
    results = {}
    for dtype in DTYPES:
        written = write_artifacts_bundle(
            folder.parent / f"cf-{dtype}.joblib", kind="cf", artifacts_path=folder, factors_dtype=dtype
        )
        arrays = open_bundle(written.path).arrays
        ranked = CFEngine({key: value for key, value in arrays.items() if not key.startswith("recs_")})
        factor_metrics = evaluate_engines(cf=ranked, customer_ids=customers, item_ids=items)["strategies"][
            "cf"
        ]
        served = evaluate_engines(cf=CFEngine(arrays), customer_ids=customers, item_ids=items)["strategies"][
            "cf"
        ]
        factor_bytes = arrays["user_factors"].nbytes + arrays.get("user_factors_scale", np.empty(0)).nbytes
        results[dtype] = (factor_metrics, served, factor_bytes, written.size_bytes)
        ctx.log(f"  {name} {dtype}: ndcg {factor_metrics['ndcg']:.5f}")
    base = results["float32"][0]
    rows = []
    for dtype, (metrics, _, factor_bytes, size) in results.items():
        rows.append(
            [
                name,
                dtype,
                f"{metrics['ndcg']:.4f}",
                _change(metrics["ndcg"], base["ndcg"]),
                f"{metrics['precision']:.4f}",
                _change(metrics["precision"], base["precision"]),
                _bytes(factor_bytes),
                _bytes(size),
            ]
        )
    served_same = all(results[dtype][1] == results["float32"][1] for dtype in DTYPES)
    return rows, served_same


def _change(value, base):
    return "—" if value == base else f"{(value - base) / base * 100:+.2f} %"


def _bytes(size):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


# --- 100 M customers ---------------------------------------------------------------------------


def _bundle_bytes(users, items):
    """Return the expected bundle size and the parts written before it (bytes)."""
    ids = 2 * users * 8 * 4  # user_ids and user_ids_sorted, <U8
    factors = users * (FACTORS + 4)  # int8 rows and their float32 scales
    recs = users * 8 + users * RECS_PER_USER * 8  # indptr, indices + scores
    small = users * 8 + items * (FACTORS * 4 + 3 * 32 + 12)
    parts = ids + users * FACTORS + users * RECS_PER_USER * 8
    return ids + factors + recs + small, parts


def _choose_users(ctx):
    """Return the most customers (100 M, or fewer when the disk is short) this run can build."""
    if ctx.quick:
        return QUICK_USERS
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(ctx.data_dir).free
    for users in (FULL_USERS, 70_000_000, 50_000_000, 30_000_000, 10_000_000):
        bundle, parts = _bundle_bytes(users, FULL_ITEMS)
        if bundle + parts + DISK_MARGIN_BYTES <= free:
            return users
    raise RuntimeError(f"only {free / GIB:.1f} GiB free in {ctx.data_dir}: not enough for 10 M customers")


def _scale_section(ctx: Context) -> Section:
    users = _choose_users(ctx)
    items = QUICK_ITEMS if ctx.quick else FULL_ITEMS
    folder = ctx.data_dir / f"quantized-{users}x{items}x{FACTORS}-int8"
    path = folder / "cf-int8.joblib"
    shutil.rmtree(folder, ignore_errors=True)
    try:
        build = _build_in_subprocess(path, users, items, ctx)
        size = path.stat().st_size
        verified = _verify_in_subprocess(path, ctx)
        probes = _probes(path, users, ctx)
        limit_line = _page_limits(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # 20+ GB at full size: every run builds its own
    table = _scale_table(users, items, size, build, probes, verified)
    table.limit = limit_line
    notes = [
        f"{users:,} customers × {FACTORS} factors as float32 would be {users * FACTORS * 4 / 1e9:.1f} GB; "
        f"as int8 with scales {users * (FACTORS + 4) / 1e9:.1f} GB. The bundle also holds the ids "
        f"(two <U8 arrays, {2 * users * 32 / 1e9:.1f} GB) and {RECS_PER_USER} precomputed items per "
        "customer; no interactions (nothing is left out as already bought at this size).",
        "Precomputed lists here are synthetic (spread item rows with descending scores): ranking every "
        f"customer against {items:,} items at the measured on-the-fly p50 would take "
        f"{users * probes['default']['fly']['p50_ms'] / 3.6e6:,.1f} CPU hours.",
        "Cold: the bundle's pages are dropped from the page cache (posix_fadvise DONTNEED) before a "
        "fresh process opens it; warm: the same customers asked again in that process.",
    ]
    if not ctx.quick and users < FULL_USERS:
        notes.append(f"Disk allowed {users:,} customers, not 100 M; sizes grow linearly with customers.")
    data = {
        "users": users,
        "items": items,
        "bundle_bytes": size,
        "build": build,
        "verify": verified,
        "probes": probes,
    }
    return Section(key="quantized", title="", command="", intro="", tables=[table], notes=notes, data=data)


def _build_in_subprocess(path, users, items, ctx):
    """Build the bundle in a fresh process (its peak memory is its own) and return its figures."""
    ctx.log(f"building {users:,} × {items:,} × {FACTORS} int8 at {path}")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.parts.quantized",
            "build",
            str(path),
            "--users",
            str(users),
            "--items",
            str(items),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"building the bundle failed:\n{out.stderr[-3000:]}")
    for line in out.stderr.splitlines():
        ctx.log(f"  {line}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _verify_in_subprocess(path, ctx):
    """Verify the bundle as the registry does (``verify_bundle``: arrays, ids, content hash) in a fresh process."""
    ctx.log("verifying it as the registry does")
    command = [sys.executable, "-m", "bench.parts.quantized", "verify", str(path), "--users", "0"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"verifying the bundle failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _probes(path, users, ctx):
    """Return the serving figures of two fresh processes on cold pages (then warm): with the
    kernel's read-ahead (MADV_NORMAL), and with MADV_RANDOM on the arrays indexed by customer."""
    customers = QUICK_PROBE_CUSTOMERS if ctx.quick else PROBE_CUSTOMERS
    results = {}
    for name, extra in (("default", []), ("random", ["--advise-random"])):
        ctx.log(
            f"serving {customers:,} customers from a fresh process ({name} read-ahead), cold pages then warm"
        )
        command = [sys.executable, "-m", "bench.parts.quantized", "probe", str(path), "--users", str(users)]
        command += ["--customers", str(customers), "--cold", *extra]
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"the serving probe failed:\n{out.stderr[-3000:]}")
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def _scale_table(users, items, size, build, probes, verified=None):
    d, r = probes["default"], probes["random"]

    def pair(read, text):
        a, b = read(d), read(r)
        return [text(a), text(b), f"{b / a:.2f}×" if a else "—"]

    def ms(value):
        return f"{value:.3f} ms" if value < 1 else f"{value:.1f} ms"

    rows = [
        ["bundle size", _bytes(size), "", ""],
        ["float32 customer factors alone would be", _bytes(users * FACTORS * 4), "", ""],
        [
            "build: seconds (generate, quantise, write_bundle with its two hashes)",
            f"{build['seconds']:.0f} s",
            "",
            "",
        ],
        ["build: of which write_bundle", f"{build['write_seconds']:.0f} s", "", ""],
        ["build: peak anonymous memory (sampled RssAnon)", _bytes(build["peak_anonymous_bytes"]), "", ""],
        *(
            [
                ["verify_bundle (as the registry verifies): seconds", f"{verified['seconds']:.0f} s", "", ""],
                ["verify_bundle: peak anonymous memory", _bytes(verified["peak_anonymous_bytes"]), "", ""],
            ]
            if verified
            else []
        ),
        [
            "fresh process to first answer (imports, open, engine, one answer; cold)",
            *pair(lambda p: p["first_answer_seconds"] * 1000, lambda v: f"{v:.0f} ms"),
        ],
        ["of which open_bundle + CFEngine", *pair(lambda p: p["open_seconds"] * 1000, ms)],
        ["precomputed k=10, cold pages: p50", *pair(lambda p: p["cold"]["p50_ms"], ms)],
        ["precomputed k=10, cold pages: p99", *pair(lambda p: p["cold"]["p99_ms"], ms)],
        ["precomputed k=10, warm pages: p50", *pair(lambda p: p["warm"]["p50_ms"], ms)],
        ["precomputed k=10, warm pages: p99", *pair(lambda p: p["warm"]["p99_ms"], ms)],
        [f"on the fly k=20 (over {items:,} items), warm: p99", *pair(lambda p: p["fly"]["p99_ms"], ms)],
        [
            "numpy baseline (item_factors @ row + argpartition), warm: p99",
            *pair(lambda p: p["numpy_p99_ms"], ms),
        ],
        ["serving process RSS", *pair(lambda p: p["rss_bytes"], _bytes)],
        ["serving process PSS", *pair(lambda p: p["pss_bytes"], _bytes)],
        ["of which the bundle's mapped pages (RSS)", *pair(lambda p: p["bundle_rss_bytes"], _bytes)],
    ]
    return Table(
        title=(
            f"{users:,} customers × {items:,} items × {FACTORS} factors, int8, memory-mapped: "
            f"{d['customers']:,} random customers, each asked three times by a fresh process"
        ),
        columns=[
            "measure",
            "kernel read-ahead (MADV_NORMAL)",
            "MADV_RANDOM on customer arrays (CFEngine's choice from 1 GiB)",
            "ratio",
        ],
        rows=rows,
        limit="",
        note=(
            f"On the fly, p99 is {d['fly']['p99_ms'] / d['numpy_p99_ms']:.2f}× the plain numpy product of the "
            f"same size (read-ahead column); cold p99 is {d['cold']['p99_ms'] / d['warm']['p99_ms']:.0f}× warm."
        ),
    )


def _page_limits(path, samples=200):
    """Return the limit line: a random 4 KiB read of the bundle from disk (cold) and from the page cache."""
    rng = np.random.default_rng(5)
    size = path.stat().st_size
    offsets = (rng.integers(0, size // 4096, samples) * 4096).tolist()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        cold = _timed_reads(fd, offsets)
        warm = _timed_reads(fd, offsets)
    finally:
        os.close(fd)
    return (
        f"a random 4 KiB read of the bundle: {np.percentile(cold, 50) * 1e3:.2f} ms from disk (p50; "
        f"p99 {np.percentile(cold, 99) * 1e3:.2f} ms), {np.percentile(warm, 50) * 1e6:.1f} µs from the page "
        "cache; a cold request touches a few tens of pages (id search, order, factor row, its list)"
    )


def _timed_reads(fd, offsets):
    seconds = []
    for offset in offsets:
        started = time.perf_counter()
        os.pread(fd, 4096, offset)
        seconds.append(time.perf_counter() - started)
    return np.array(seconds)


# --- the two subprocesses: build, probe ----------------------------------------------------------


def build_bundle(path: Path, users: int, items: int) -> dict:
    """Write an int8 CF bundle of ``users`` × ``items`` × 64 to ``path``, a chunk of customers at a time."""
    from modelstore.bundles import write_bundle
    from modelstore.bundles.layout import INT8, quantise_rows

    started = time.perf_counter()
    parts = path.parent / "parts"
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)

    def out(name, shape, dtype):
        return np.lib.format.open_memmap(parts / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)

    rng = np.random.default_rng(23)
    numbers = rng.permutation(users).astype(np.int64)  # the id number of each row
    order = np.empty(users, dtype=np.int64)
    order[numbers] = np.arange(users, dtype=np.int64)  # ids sorted are 0..n-1: their rows
    width = len(str(users - 1))
    user_ids = out("user_ids", (users,), f"<U{width}")
    user_ids_sorted = out("user_ids_sorted", (users,), f"<U{width}")
    factors = out("user_factors", (users, FACTORS), "int8")
    scale = np.empty(users, dtype=np.float32)
    recs_indices = out("recs_indices", (users * RECS_PER_USER,), "int32")
    recs_scores = out("recs_scores", (users * RECS_PER_USER,), "float32")
    for start in range(0, users, CHUNK_USERS):
        stop = min(start + CHUNK_USERS, users)
        user_ids[start:stop] = fixed_digits(numbers[start:stop], width)
        user_ids_sorted[start:stop] = fixed_digits(np.arange(start, stop), width)
        block = rng.standard_normal((stop - start, FACTORS), dtype=np.float32) * np.float32(0.3)
        factors[start:stop], scale[start:stop] = quantise_rows(block, INT8)
        first = rng.integers(0, items, size=(stop - start, 1))
        recs_indices[start * RECS_PER_USER : stop * RECS_PER_USER] = (
            (first + np.arange(RECS_PER_USER) * 97) % items
        ).reshape(-1)
        scores = -np.sort(-rng.random((stop - start, RECS_PER_USER), dtype=np.float32), axis=1)
        recs_scores[start * RECS_PER_USER : stop * RECS_PER_USER] = scores.reshape(-1)
        print(
            f"generated {stop:,} of {users:,} customers, {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    del numbers
    item_ids = fixed_digits(np.arange(items), len(str(items)) + 1)  # sorted: row order
    arrays = {
        "user_ids": user_ids,
        "user_ids_sorted": user_ids_sorted,
        "user_ids_order": order,
        "item_ids": item_ids,
        "item_ids_sorted": item_ids,
        "item_ids_order": np.arange(items, dtype=np.int64),
        "user_factors": factors,
        "user_factors_scale": scale,
        "item_factors": rng.standard_normal((items, FACTORS), dtype=np.float32) * np.float32(0.3),
        "recs_indptr": np.arange(0, users * RECS_PER_USER + 1, RECS_PER_USER, dtype=np.int64),
        "recs_indices": recs_indices,
        "recs_scores": recs_scores,
        "item_popularity": np.bincount(
            recs_indices[: min(users, 10**7) * RECS_PER_USER], minlength=items
        ).astype(np.float32),
    }
    generated = time.perf_counter()
    written = write_bundle(
        path, kind="cf", arrays=arrays, metadata={"source": "bench quantized", "synthetic": True}
    )
    write_seconds = time.perf_counter() - generated
    del arrays, user_ids, user_ids_sorted, factors, recs_indices, recs_scores
    shutil.rmtree(parts)
    return {
        "seconds": time.perf_counter() - started,
        "write_seconds": write_seconds,
        "size_bytes": written.size_bytes,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # with mapped pages
    }


def fixed_digits(numbers, width):
    """Return non-negative integers as zero-padded decimal text ``<U{width}``, without Python objects."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    codes = ((np.asarray(numbers, dtype=np.int64)[:, None] // powers) % 10 + ord("0")).astype(np.uint32)
    return np.ascontiguousarray(codes).view(f"<U{width}").reshape(-1)


def probe(path: Path, users: int, customers: int, cold: bool, advise_random: bool = False) -> dict:
    """Serve random customers from a fresh process; return first answer, latencies and memory."""
    started = time.perf_counter()
    if cold:
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        started = time.perf_counter()
    from modelstore.bundles import open_bundle
    from recommendations.engines import CFEngine
    from recommendations.engines.factors import advise_customer_arrays

    width = len(str(users - 1))
    rng = np.random.default_rng(41)
    ids = [f"{int(n):0{width}d}" for n in rng.integers(0, users, customers)]
    opened = time.perf_counter()
    arrays = open_bundle(path).arrays
    engine = CFEngine(arrays)  # at 1 GiB of customer arrays and more, it advises MADV_RANDOM itself
    advise_customer_arrays(arrays, advice=mmap.MADV_RANDOM if advise_random else mmap.MADV_NORMAL)
    open_seconds = time.perf_counter() - opened
    first = engine.recommend(ids[0], 10)
    first_answer = time.perf_counter() - started
    assert len(first.item_ids) == 10 and first.fallback is None
    cold_ms = _latencies(lambda customer: engine.recommend(customer, 10), ids[1:])
    warm_ms = _latencies(lambda customer: engine.recommend(customer, 10), ids[1:])
    fly_ms = _latencies(lambda customer: engine.recommend(customer, 20), ids[1:])
    items = np.asarray(engine.item_factors)
    rows = [engine.users.row(customer) for customer in ids[1:]]
    numpy_ms = _latencies(lambda u: np.argpartition(-(items @ engine.user_rows.row(u)), 20)[:20], rows)
    memory = _memory(path)
    return {
        "customers": customers,
        "first_answer_seconds": first_answer,
        "open_seconds": open_seconds,
        "cold": _summary(cold_ms),
        "warm": _summary(warm_ms),
        "fly": _summary(fly_ms),
        "numpy_p99_ms": float(np.percentile(numpy_ms, 99)),
        **memory,
    }


def _latencies(call, arguments):
    times = []
    for argument in arguments:
        began = time.perf_counter()
        call(argument)
        times.append((time.perf_counter() - began) * 1000)
    return np.array(times)


def _summary(ms):
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def _memory(path):
    """Return this process's RSS and PSS, and those of its mappings of ``path``, in bytes (/proc/self/smaps)."""
    totals = {"rss_bytes": 0, "pss_bytes": 0, "bundle_rss_bytes": 0, "bundle_pss_bytes": 0}
    target = str(Path(path).resolve())
    in_bundle = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header line
            in_bundle = len(fields) >= 6 and fields[5] == target
            continue
        if len(fields) == 3 and fields[0] in ("Rss:", "Pss:"):
            key = fields[0][:-1].lower()
            size = int(fields[1]) * 1024
            totals[f"{key}_bytes"] += size
            if in_bundle:
                totals[f"bundle_{key}_bytes"] += size
    return totals


class AnonymousPeak:
    """Sample this process's anonymous memory (RssAnon) in a thread; ``peak_bytes`` is the largest seen.

    Peak RSS would count the memory-mapped parts' pages the kernel keeps resident, which are page
    cache, not memory the build holds.
    """

    def __init__(self, interval_seconds=0.2):
        import threading

        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_seconds,), daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self, interval):
        while not self._stop.wait(interval):
            self._sample()

    def _sample(self):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                self.peak_bytes = max(self.peak_bytes, int(line.split()[1]) * 1024)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.parts.quantized")
    parser.add_argument("action", choices=("build", "verify", "probe"))
    parser.add_argument("path", type=Path)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--items", type=int, default=FULL_ITEMS)
    parser.add_argument("--customers", type=int, default=PROBE_CUSTOMERS)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--advise-random", action="store_true")
    args = parser.parse_args(argv)
    if args.action == "build":
        with AnonymousPeak() as peak:
            result = build_bundle(args.path, args.users, args.items)
        result["peak_anonymous_bytes"] = peak.peak_bytes
    elif args.action == "verify":
        from modelstore.bundles import open_bundle, verify_bundle

        started = time.perf_counter()
        with AnonymousPeak() as peak:
            counts = verify_bundle(open_bundle(args.path))
        result = {"seconds": time.perf_counter() - started, "peak_anonymous_bytes": peak.peak_bytes, **counts}
    else:
        result = probe(args.path, args.users, args.customers, args.cold, args.advise_random)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
