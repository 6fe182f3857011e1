"""Print the serving benchmark's results as Markdown tables."""

from bench.engine_timing import K


def table(headers, rows):
    """Print a Markdown table."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(row):
        return (
            "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
        )

    print(line(headers))
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        print(line(row))
    print()


def print_engines(rows, loading, args, size_mb):
    print(
        f"\nEngine time per call — {args.users:,} users × {args.items:,} items, {args.factors} factors, "
        f"k={K}, 1 BLAS thread, {args.calls:,} calls per row (memory-mapped {size_mb:.0f} MB bundle)\n"
    )
    base_p50, base_p99 = rows[0][1], rows[0][2]
    table(
        ["call", "p50 ms", "p99 ms", "p50 × baseline", "p99 × baseline"],
        [
            (name, f"{p50:.3f}", f"{p99:.3f}", f"{p50 / base_p50:.2f}", f"{p99 / base_p99:.2f}")
            for name, p50, p99 in rows
        ],
    )
    cf_p99 = rows[1][2]
    print(f"CF precomputed p99 {cf_p99:.3f} ms (target < 0.5 ms): {'met' if cf_p99 < 0.5 else 'NOT met'}\n")
    table(["loading", "seconds"], [(name, f"{seconds:.4f}") for name, seconds in loading.items()])


def print_http(http, args):
    client = "wrk" if http["client"] == "wrk" else "Python keep-alive client"
    print(
        f"HTTP — gunicorn {args.workers} workers × {args.threads} threads on loopback, {client} with "
        f"{args.connections} connections in another process, 2 × {args.seconds} s per row "
        f"(workers up and serving in {http['startup_seconds']:.2f} s)\n"
    )
    rows = list(http["throughput"].items())
    base = rows[0][1]["rps"]
    table(
        ["endpoint", "requests/s", "p50 ms", "p99 ms", "non-200", "requests/s × health"],
        [
            (
                name,
                f"{r['rps']:.0f}",
                f"{r['p50']:.2f}",
                f"{r['p99']:.2f}",
                r["errors"],
                f"{r['rps'] / base:.2f}",
            )
            for name, r in rows
        ],
    )
    ratio = rows[1][1]["rps"] / base
    print(f"recommendations at {ratio:.2f} × health (target ≥ 0.8): {'met' if ratio >= 0.8 else 'NOT met'}\n")
    table(
        ["hot swap", "seconds to every worker", "slowest load s", "failed requests during swap"],
        [
            (
                name,
                "—" if s["seconds"] is None else f"{s['seconds']:.2f}",
                f"{s.get('load_seconds', float('nan')):.3f}",
                f"{s['failed_requests']} of {s['requests']}",
            )
            for name, s in http["swaps"].items()
        ],
    )
