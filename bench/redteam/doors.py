"""The doors a hostile input goes through, each sending it as a client or an operator would.

Every door returns an ``Answer``: whether it was refused cleanly, and what was answered. HTTP doors
talk to the stand's gunicorn on loopback with a read timeout (a door that gets no answer in time
is ``hung``); command doors run ``manage.py`` under the same memory cap and report their own peak.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html import unescape

import requests

from tests.support import processes

from . import memory
from . import stand as stand_module

ERRORLIST = re.compile(r'<ul class="errorlist[^"]*"[^>]*>\s*<li>(.*?)</li>', re.S)


@dataclass
class Answer:
    """What one door answered to one hostile input."""

    door: str
    refused: bool
    outcome: str
    hung: bool = False
    peak_mb: float | None = None  # measured by the door itself (commands); else from the workers


def _hung(door, timeout):
    return Answer(door, False, f"no answer in {timeout:g} s", hung=True)


def _no_answer(door, timeout, exc):
    """A request that got no answer: too slow (``hung``), or its worker closed the connection (died)."""
    if isinstance(exc, requests.Timeout):
        return _hung(door, timeout)
    return Answer(door, False, "connection closed without an answer", hung=True)


def _json_answer(door, response):
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code", "no code") if isinstance(body, dict) else "no code"
    refused = 400 <= response.status_code < 500 and isinstance(body, dict) and bool(body.get("detail"))
    return Answer(door, refused, f"{response.status_code} {code}")


def _form_error(response):
    found = ERRORLIST.search(response.text)
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()[:80] if found else None


def api_upload(stand, name, data, *, timeout):
    """POST the file to ``/api/v1/models/`` with the staff token."""
    token = stand.facts["staff"]["token"]
    try:
        response = requests.post(
            f"{stand.url}/api/v1/models/",
            files={"file": (name, data)},
            headers={"Authorization": f"Token {token}"},
            timeout=(5, timeout),
        )
    except requests.RequestException as exc:
        return _no_answer("API upload", timeout, exc)
    return _json_answer("API upload", response)


class AdminSession:
    """A logged-in staff session on the stand's admin (login page, CSRF token from the cookie)."""

    def __init__(self, stand):
        self.stand = stand
        self.session = requests.Session()
        login = f"{stand.url}/admin/login/"
        self.session.get(login, timeout=10)
        staff = stand.facts["staff"]
        response = self.session.post(
            login,
            data={
                **self._csrf(),
                "username": staff["username"],
                "password": staff["password"],
                "next": "/admin/",
            },
            timeout=10,
            allow_redirects=False,
        )
        if response.status_code != 302:
            raise RuntimeError(f"admin login answered {response.status_code}")

    def _csrf(self):
        return {"csrfmiddlewaretoken": self.session.cookies.get("csrftoken", "")}

    def post(self, path, *, data, files=None, timeout):
        """POST a form to an admin page; return the response (no redirects followed)."""
        return self.session.post(
            f"{self.stand.url}{path}",
            data={**self._csrf(), **data},
            files=files,
            timeout=(5, timeout),
            allow_redirects=False,
        )


def _form_answer(door, response):
    if response.status_code == 200:
        error = _form_error(response)
        return Answer(door, bool(error), f"form error: {error}" if error else "200 without an error")
    if 400 <= response.status_code < 500:
        return Answer(door, True, f"{response.status_code}")
    return Answer(door, False, f"{response.status_code} accepted" if response.status_code < 400 else "500")


def admin_upload(stand, admin, name, data, *, timeout):
    """Upload the file on the admin's upload page."""
    try:
        response = admin.post(
            "/admin/modelstore/modelversion/add/",
            data={"kind": ""},
            files={"file": (name, data)},
            timeout=timeout,
        )
    except requests.RequestException as exc:
        return _no_answer("admin upload", timeout, exc)
    return _form_answer("admin upload", response)


def _newest_version(stand, since):
    return stand.query(
        "SELECT json_build_object('status', status, 'error', error) FROM modelstore_modelversion "
        "WHERE id > %s ORDER BY id DESC LIMIT 1",
        since["versions"],
    )


def admin_build(stand, admin, folder, *, timeout):
    """Build a CF bundle from ``folder`` on the admin's Build page (the build runs in the request)."""
    since = stand.high_water()
    form = {"cf_path": str(folder), "compression": "none", "level": "3", "factors_dtype": "float32"}
    try:
        response = admin.post("/admin/modelstore/modelversion/build/", data=form, timeout=timeout)
    except requests.RequestException as exc:
        return _no_answer("admin build", timeout, exc)
    if response.status_code != 302:
        return _form_answer("admin build", response)
    newest = _newest_version(stand, since)
    if newest is None:
        return Answer("admin build", True, "no version made")
    if newest["status"] == "failed":
        return Answer("admin build", True, f"row failed: {(newest['error'] or '')[:80]}")
    return Answer("admin build", False, f"version {newest['status']}")


def admin_train(stand, admin, path, *, timeout):
    """Train from the file on the admin's training page; follow the run until it ends (or ``timeout``)."""
    since = stand.high_water()
    form = {
        "data_format": "generic",
        "factors": "4",
        "iterations": "2",
        "regularization": "0.01",
        "alpha": "1",
    }
    started = time.monotonic()
    try:
        with open(path, "rb") as upload:
            response = admin.post(
                "/admin/recommendations/train/",
                data=form,
                files={"interactions": (path.name, upload)},
                timeout=timeout,
            )
    except requests.RequestException as exc:
        return _no_answer("admin training", timeout, exc)
    if response.status_code != 302:
        return _form_answer("admin training", response)

    def finished():
        return stand.query(
            "SELECT json_build_object('status', status, 'error', error) FROM recommendations_trainingrun "
            "WHERE id > %s AND status IN ('done', 'failed') ORDER BY id DESC LIMIT 1",
            since["runs"],
        )

    try:
        run = processes.wait_until(
            finished,
            timeout=max(1.0, timeout - (time.monotonic() - started)),
            interval=0.1,
            message="the run",
        )
    except AssertionError:
        return _hung("admin training", timeout)
    if run["status"] == "failed":
        return Answer("admin training", True, f"run failed: {(run['error'] or '')[:80]}")
    return Answer("admin training", False, "run done")


def command(stand, door, args, *, timeout):
    """Run ``manage.py args`` under the memory cap; refused means a non-zero exit ending in a one-line error."""
    # stderr to a file: a long traceback would fill a pipe and stall the command.
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *map(str, args)],
            env=stand.env,
            cwd=processes.ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            start_new_session=True,
            preexec_fn=processes.address_space_limit(stand_module.MEMORY_LIMIT_BYTES),
        )
        deadline = time.monotonic() + timeout
        while (finished := os.wait4(process.pid, os.WNOHANG))[0] == 0:
            if time.monotonic() >= deadline:
                peak_kb = memory.peak_kb(process.pid)  # its peak so far, read before it is killed
                processes.stop(process, grace_seconds=5)
                hung = _hung(door, timeout)
                hung.peak_mb = None if peak_kb is None else peak_kb / 1024
                return hung
            time.sleep(0.05)
        _, status, usage = finished
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        lines = stderr.read().strip().splitlines()
    peak_mb = usage.ru_maxrss / 1024
    if process.returncode == 0:
        return Answer(door, False, "exit 0 (built)", peak_mb=peak_mb)
    # Progress lines may come first (a command says what it reads); the error is the last line,
    # one line, and nothing on stderr is a traceback.
    clean = (
        bool(lines)
        and lines[-1].startswith("CommandError")
        and not any(line.startswith("Traceback") for line in lines)
    )
    outcome = f"exit {process.returncode}: {(lines[-1] if lines else '')[:80]}"
    if not clean:
        outcome += f" ({len(lines)} lines of stderr)"
    return Answer(door, clean, outcome, peak_mb=peak_mb)
