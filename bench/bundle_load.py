"""How long until a model can answer, for each way of storing the same CF model.

Run: ``.venv/bin/python bench/bundle_load.py [--users 552782] [--items 7214] [--factors 64]``

Writes synthetic data at the seed's scale with ``make_demo_data`` (into ``bench/out/``, git-
ignored), stores the same CF model four ways, then loads each in a fresh process and measures
the seconds from the end of its imports to the first answer (load + one recommendation), and
the process's whole wall time beside it:

  (a) the seed bundle: a joblib dict with a DataFrame and id dicts, read with joblib.load
  (b) the seed's individual files: np.load + pickle + pandas
  (c) the native bundle, memory-mapped
  (d) the native bundle, lz4-compressed (read into memory)

Prints file sizes and the ratios a/c and b/c. Every case runs ``--repeat`` times (default 3);
the median is reported.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hybridrec.settings")

CASES = {
    "a": "seed bundle, joblib.load",
    "b": "seed individual files",
    "c": "native bundle, mmap",
    "d": "native bundle, lz4",
}


def prepare(out, users, items, factors):
    """Write the demo artifacts and the four stored forms; return their paths."""
    data = out / "data"
    paths = {
        "a": out / "seed.joblib",
        "b": data / "cf",
        "c": out / "native.joblib",
        "d": out / "native-lz4.joblib",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "make_demo_data",
            str(data),
            "--users",
            str(users),
            "--items",
            str(items),
            "--factors",
            str(factors),
            "--recs-share",
            "1.0",
            "--top-n",
            "10",
        ],
        check=True,
    )
    import django

    django.setup()
    import joblib
    import numpy as np
    import pandas as pd

    from modelstore.bundles import read_artifacts, write_bundle

    folder = paths["b"]
    mapping = {}
    for stem in ("customer_mapping", "item_mapping"):
        path = folder / f"{stem}.pkl"
        mapping[stem] = (
            pd.read_pickle(path) if path.exists() else json.loads((folder / f"{stem}.json").read_text())
        )
    recs = pd.read_parquet(folder / "recommendations.parquet")
    joblib.dump(
        {
            "recs_df": recs,
            "user_factors": np.load(folder / "user_factors.npy"),
            "item_factors": np.load(folder / "item_factors.npy"),
            "customer_mapping": mapping["customer_mapping"],
            "item_mapping": mapping["item_mapping"],
            "metadata": {"source": "bench"},
        },
        paths["a"],
    )
    loaded = read_artifacts(folder, "cf")
    write_bundle(paths["c"], kind="cf", arrays=loaded.arrays)
    write_bundle(paths["d"], kind="cf", arrays=loaded.arrays, compress="lz4:3")
    return paths


def size_of(path):
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir())
    return path.stat().st_size


def run_case(case, path):
    """In this (fresh) process: import, then load and answer once; print the seconds as JSON."""
    if case in "ab":
        import pickle

        import joblib
        import numpy as np
        import pandas as pd
    else:
        import numpy as np

        from modelstore.bundles import open_bundle
        from recommendations.engines import CFEngine
    imported = time.perf_counter()

    if case == "a":
        model = joblib.load(path)
        customers, factors, items = model["customer_mapping"], model["user_factors"], model["item_factors"]
        recs = model["recs_df"]
    elif case == "b":
        factors = np.load(path / "user_factors.npy")
        items = np.load(path / "item_factors.npy")
        with open(path / "customer_mapping.pkl", "rb") as handle:
            customers = pickle.load(handle)
        recs = pd.read_parquet(path / "recommendations.parquet")
    if case in "ab":
        customer = next(iter(customers))
        row = customers[customer]
        scores = factors[row] @ items.T
        top = np.argpartition(-scores, 10)[:10]
        answer = top[np.argsort(-scores[top])]
        assert len(recs) > 0
    else:
        bundle = open_bundle(path)
        engine = CFEngine(bundle.arrays)
        answer = engine.recommend(str(bundle.arrays["user_ids"][0]), k=10).item_ids
    ready = time.perf_counter()
    assert len(answer) == 10
    print(json.dumps({"load_seconds": ready - imported}))


def measure(case, path, repeat):
    loads, walls = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--one", case, "--path", str(path)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        walls.append(time.perf_counter() - started)
        loads.append(json.loads(done.stdout.strip().splitlines()[-1])["load_seconds"])
    return statistics.median(loads), statistics.median(walls)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=552_782)
    parser.add_argument("--items", type=int, default=7_214)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "bundle_load")
    parser.add_argument("--one", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_case(args.one, args.path)
        return

    out = args.out / f"{args.users}x{args.items}x{args.factors}"
    out.mkdir(parents=True, exist_ok=True)
    paths = prepare(out, args.users, args.items, args.factors)
    results = {case: measure(case, paths[case], args.repeat) for case in CASES}

    print(
        f"\n{args.users:,} users × {args.items:,} items × {args.factors} factors, median of {args.repeat} fresh processes\n"
    )
    print("| case | load to first answer (s) | process wall (s) | size (MB) |")
    print("|---|---:|---:|---:|")
    for case, title in CASES.items():
        load, wall = results[case]
        print(f"| ({case}) {title} | {load:.4f} | {wall:.2f} | {size_of(paths[case]) / 1e6:.1f} |")
    base = results["c"][0]
    print(f"\nratio a/c (seed bundle vs native mmap): {results['a'][0] / base:.0f}×")
    print(f"ratio b/c (individual files vs native mmap): {results['b'][0] / base:.0f}×")
    print(f"ratio d/c (lz4 vs native mmap): {results['d'][0] / base:.0f}×")


if __name__ == "__main__":
    main()
