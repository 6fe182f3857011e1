"""Engine time per call, next to a bare numpy baseline, and the cost of loading a bundle."""

import tempfile
import time
from pathlib import Path

import numpy as np

K = 10


def percentiles_ms(times_ns):
    values = np.asarray(times_ns, dtype=np.float64) / 1e6
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def time_calls(function, arguments, warmup=200):
    """Return (p50 ms, p99 ms) of ``function(argument)`` over ``arguments`` after a warm-up."""
    for argument in arguments[:warmup]:
        function(argument)
    times = []
    for argument in arguments:
        started = time.perf_counter_ns()
        function(argument)
        times.append(time.perf_counter_ns() - started)
    return percentiles_ms(times)


def bench_engines(cf_path, cb_path, calls, rng):
    """Return rows ``(name, p50, p99)`` with the baseline first, and the loading numbers."""
    from modelstore.bundles import file_sha256, open_bundle
    from recommendations.engines import CBEngine, CFEngine, HybridEngine
    from recommendations.serving.verified import ensure_verified

    loading = {}
    stamps = Path(tempfile.mkdtemp(prefix="stamps-", dir=cf_path.parent))
    started = time.perf_counter()
    sha256 = file_sha256(cf_path)
    loading["sha256 of the CF bundle file (first load of a version)"] = time.perf_counter() - started
    ensure_verified(cf_path, sha256, stamp_dir=stamps)
    started = time.perf_counter()
    ensure_verified(cf_path, sha256, stamp_dir=stamps)
    loading["stamp check instead (a restart)"] = time.perf_counter() - started
    started = time.perf_counter()
    bundle = open_bundle(cf_path)
    cf = CFEngine(bundle.arrays)
    cf.recommend(str(cf.users.ids[0]), K)
    loading["open bundle (mmap) + build engine + first answer"] = time.perf_counter() - started

    cb = CBEngine(open_bundle(cb_path).arrays)
    fly = CFEngine({name: array for name, array in bundle.arrays.items() if not name.startswith("recs_")})
    brute_cb = CBEngine(_without_neighbors(cb_path))
    hybrid = HybridEngine(cf, cb)

    n_users = cf.n_users
    users = [str(cf.users.ids[u]) for u in rng.integers(0, n_users, size=calls)]
    rows = [int(u) for u in rng.integers(0, n_users, size=calls)]
    items = [str(cb.items.ids[i]) for i in rng.integers(0, cb.n_items, size=calls)]
    unknown = [f"nobody-{i}" for i in range(calls)]
    item_factors, user_factors = np.asarray(cf.item_factors), np.asarray(cf.user_factors)

    def baseline(u):
        scores = item_factors @ user_factors[u]
        top = np.argpartition(-scores, K)[:K]
        return top[np.argsort(-scores[top])]

    batches = [users[i : i + 100] for i in range(0, min(calls, 2000), 100)]
    batch_p50, batch_p99 = time_calls(lambda batch: cf.recommend_batch(batch, K), batches, warmup=2)
    rows_out = [
        ("baseline: numpy item_factors @ user_factors[u] + top-k", *time_calls(baseline, rows)),
        ("CF, precomputed list", *time_calls(lambda u: cf.recommend(u, K), users)),
        ("CF, on the fly (factors, already-had left out)", *time_calls(lambda u: fly.recommend(u, K), users)),
        ("CF, unknown customer (popular)", *time_calls(lambda u: cf.recommend(u, K), unknown)),
        ("CF, batch of 100, per customer", batch_p50 / 100, batch_p99 / 100),
        ("CB, similar items (precomputed neighbours)", *time_calls(lambda i: cb.similar_items(i, K), items)),
        ("CB, similar items (all items scored)", *time_calls(lambda i: brute_cb.similar_items(i, K), items)),
        (
            "CB, for a customer (items they have)",
            *time_calls(lambda u: cb.for_items(cf.customer_items(u), K), users),
        ),
        ("hybrid, weight 0.7", *time_calls(lambda u: hybrid.recommend(u, K, weight=0.7), users)),
    ]
    return rows_out, loading


def _without_neighbors(cb_path):
    from modelstore.bundles import open_bundle

    arrays = open_bundle(cb_path).arrays
    return {name: array for name, array in arrays.items() if not name.startswith("neighbor_")}
