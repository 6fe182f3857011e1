"""Load generators for a server on loopback: ``wrk`` when installed, else keep-alive Python threads.

Each returns requests per second, p50 and p99 in ms and the count of non-200 answers; every loop
is bounded by ``seconds``.
"""

import http.client
import json
import multiprocessing
import re
import subprocess
import threading
import time

import numpy as np

from bench.engine_timing import percentiles_ms


def wrk_load(port, paths, seconds, connections, folder):
    script = folder / "paths.lua"
    script.write_text(
        "local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
        "request = function()\n"
        '  return wrk.format("GET", paths[math.random(#paths)])\n'
        "end\n"
    )
    result = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {}
    for label in ("50%", "99%"):
        value, unit = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        latency[label] = float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50": latency["50%"],
        "p99": latency["99%"],
        "errors": int(errors.group(1)) if errors else 0,
    }


def _python_client(port, paths, seconds, connections, queue):
    """Keep-alive GETs from ``connections`` threads for ``seconds``; put (latencies ns, errors) on ``queue``."""
    latencies, errors = [], [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(seed):
        rng = np.random.default_rng(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, failed = [], 0
        while time.monotonic() < stop_at:
            path = paths[int(rng.integers(len(paths)))]
            started = time.perf_counter_ns()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    failed += 1
            except (OSError, http.client.HTTPException):
                failed += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            mine.append(time.perf_counter_ns() - started)
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    queue.put((latencies, errors[0]))


def python_load(port, paths, seconds, connections, folder):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_python_client, args=(port, paths, seconds, connections, queue))
    started = time.monotonic()
    process.start()
    latencies, errors = queue.get(timeout=seconds + 60)
    elapsed = time.monotonic() - started
    process.join(30)
    p50, p99 = percentiles_ms(latencies) if latencies else (float("nan"), float("nan"))
    # The spawn start-up is not load time: use the client's own window.
    return {"rps": len(latencies) / seconds, "p50": p50, "p99": p99, "errors": errors, "wall": elapsed}
