"""A real S3 API on loopback: moto's server mode, started and stopped by tests.

Knows no pytest, like ``processes``: ``available()`` says whether moto[server] is installed.
"""

import importlib.util
import subprocess
import sys
from dataclasses import dataclass, field

from .processes import ROOT, free_port, status_of, stop, wait_until

READY_SECONDS = 60


def available():
    """Return True when moto's server mode (``moto[server]``) can be started."""
    return importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask") is not None


@dataclass
class S3Server:
    """moto's S3 server on a fixed loopback port: it can be stopped and started again there."""

    log_path: object
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        """Start the server (state starts empty: buckets do not survive a stop) and wait for it."""
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"moto_server exited {self.process.returncode}")
            return status_of(self.url + "/moto-api/", timeout=2) is not None

        wait_until(ready, timeout=READY_SECONDS, interval=0.1, message="moto's S3 server answering")
        return self

    def stop(self):
        if self.process is not None:
            stop(self.process, grace_seconds=10)
            self.process = None
