"""The benchmark suite: run the parts, save each one's JSON, render docs/BENCHMARKS.md.

    python -m bench                          # every part (make bench)
    python -m bench --quick                  # tiny sizes, under 2 minutes (make bench-quick)
    python -m bench --only load,build        # some parts; the others' saved JSON stays as it is
    python -m bench --report-only            # render the report from the saved JSON

A full run writes ``docs/bench/<part>.json``, the charts ``docs/bench/*.png`` and
``docs/BENCHMARKS.md``; ``--quick`` writes the same under ``bench/out/quick/`` and never touches
``docs/``. Generated data sets are cached in ``BENCH_DATA_DIR`` (default
``~/.cache/hybridrec-bench``).
"""

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.machine import machine_facts
from bench.parts import PARTS, part_module
from bench.report import (
    EXTRA_NAME,
    Context,
    data_dir_from_env,
    load_saved,
    render_report,
    save_section,
    section_from_json,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
QUICK_ROOT = ROOT / "bench" / "out" / "quick"
CHARTS_FOLDER = "bench"  # under the report's folder: docs/bench/
COMMANDS = """\
make bench                                  # python -m bench: every part, rewrites this file
make bench-quick                            # python -m bench --quick: tiny sizes, under 2 minutes
python -m bench --only load,build           # some parts alone; the others' results stay
python -m bench --report-only               # re-render this file from docs/bench/*.json
BENCH_DATA_DIR=/big/disk python -m bench    # where generated data sets are cached
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes; results in bench/out/quick/")
    parser.add_argument("--only", default="", help=f"comma-separated parts among {', '.join(PARTS)}")
    parser.add_argument("--report-only", action="store_true", help="render the report from saved JSON")
    parser.add_argument(
        "--remeasure-seed",
        action="store_true",
        help="measure joblib.load of the 10 M seed bundle again instead of reusing the saved figure",
    )
    parser.add_argument("--out", type=Path, help="report folder (default docs/, or bench/out/quick/)")
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; valid parts are {', '.join(PARTS)}")
    args.parts = [name for name in PARTS if not wanted or name in wanted]
    return args


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def prefixed_log(name: str) -> Callable[[str], None]:
    """Return a log function that prefixes each line with the part's name."""
    return lambda line: log(f"[{name}] {line}")


def run_parts(args: argparse.Namespace, report_root: Path) -> int:
    """Run the chosen parts, saving each one's JSON; return how many failed."""
    out_dir = report_root / CHARTS_FOLDER
    machine = machine_facts()
    failed = 0
    for name in args.parts:
        module = part_module(name)
        if module is None:
            log(f"[{name}] skipped: this checkout has no bench/parts/{name}.py")
            continue
        saved = load_saved(out_dir, name)
        ctx = Context(
            quick=args.quick,
            data_dir=data_dir_from_env(),
            out_dir=out_dir,
            charts_dir=out_dir,
            log=prefixed_log(name),
            remeasure_seed=args.remeasure_seed,
            previous=section_from_json(saved) if saved else None,
        )
        started = time.perf_counter()
        log(f"[{name}] running")
        try:
            section = module.run(ctx)
        except Exception:
            failed += 1
            log(f"[{name}] FAILED after {time.perf_counter() - started:.1f} s:\n{traceback.format_exc()}")
            continue
        path = save_section(section, out_dir, machine=machine, quick=args.quick)
        log(f"[{name}] done in {time.perf_counter() - started:.1f} s: {path.relative_to(report_root)}")
    return failed


def write_report(report_root: Path) -> Path:
    """Render ``BENCHMARKS.md`` in ``report_root`` from the JSON files in its ``bench/`` folder."""
    out_dir = report_root / CHARTS_FOLDER
    documents = [doc for name in PARTS if (doc := load_saved(out_dir, name)) is not None]
    extra_path = DOCS / CHARTS_FOLDER / EXTRA_NAME
    extra = extra_path.read_text() if extra_path.is_file() else ""
    text = render_report(documents, chart_prefix=f"{CHARTS_FOLDER}/", extra=extra, commands=COMMANDS)
    report_root.mkdir(parents=True, exist_ok=True)
    path = report_root / "BENCHMARKS.md"
    path.write_text(text)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report_root = args.out or (QUICK_ROOT if args.quick else DOCS)
    failed = 0 if args.report_only else run_parts(args, report_root)
    path = write_report(report_root)
    log(f"report: {path}")
    return 1 if failed else 0
