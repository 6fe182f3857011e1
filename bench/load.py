"""Load on a server on loopback with ``wrk`` (Debian's) in another process.

``wrk_run`` asks a list of paths (GET) or bodies (POST) in random order from keep-alive
connections for a bounded time, and returns what its Lua ``done`` hook prints: requests, seconds,
requests per second, p50 and p99 in ms, and failures split into non-2xx answers and socket errors
(connect, read, write, timeout: a request slower than ``timeout_seconds`` counts as failed).
"""

import json
import shutil
import subprocess
from dataclasses import dataclass

# wrk's Lua: pick a request at random; at the end print one JSON line the caller parses.
_SCRIPT = """
local requests = {%(requests)s}
local counter = 0
math.randomseed(%(seed)d)
request = function()
  local r = requests[math.random(#requests)]
  return wrk.format(r[1], r[2], r[3], r[4])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "micros": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d, ' ..
    '"status": %%d, "connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
"""
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return self.non_2xx + self.socket_errors

    def as_dict(self):
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
        }


def available():
    """Return True when ``wrk`` is on the PATH."""
    return shutil.which("wrk") is not None


def get(path, headers=None):
    """Return a GET request for ``wrk_run``."""
    return ("GET", path, headers or {}, None)


def post_json(path, document, headers=None):
    """Return a POST request with a JSON body for ``wrk_run``."""
    return ("POST", path, {**JSON_HEADERS, **(headers or {})}, json.dumps(document))


def _lua(value):
    if value is None:
        return "nil"
    if isinstance(value, dict):
        return "{" + ",".join(f"[{json.dumps(k)}]={json.dumps(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def wrk_run(url, requests, *, seconds, connections, folder, threads=1, timeout_seconds=2, seed=1):
    """Run wrk against ``url`` with ``requests`` (from ``get`` / ``post_json``); return a LoadResult.

    One wrk thread by default: on a small machine wrk competes with the server for the cores,
    and one thread drives tens of thousands of requests per second on loopback.
    """
    script = folder / f"wrk-{seed}.lua"
    rows = ",".join("{" + ",".join(_lua(part) for part in request) + "}" for request in requests)
    script.write_text(_SCRIPT % {"requests": rows, "seed": seed})
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{seconds}s",
        f"--timeout={timeout_seconds}s",
        "-s",
        str(script),
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(line for line in reversed(result.stdout.splitlines()) if line.startswith("{"))
    found = json.loads(line)
    return LoadResult(
        requests=found["requests"],
        seconds=found["micros"] / 1e6,
        p50_ms=found["p50_us"] / 1e3,
        p99_ms=found["p99_us"] / 1e3,
        max_ms=found["max_us"] / 1e3,
        non_2xx=found["status"],
        socket_errors=found["connect"] + found["read"] + found["write"] + found["timeout"],
    )
