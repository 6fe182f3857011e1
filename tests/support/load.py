"""Clients that keep asking a server for recommendations while a test or benchmark changes things."""

import threading
import time

import requests


class RecommendationLoad:
    """Threads asking ``url`` on keep-alive sessions until the block ends.

    ``answers`` holds ``(monotonic time, CF version id)`` of each 200; ``failures`` holds
    ``(monotonic time, what went wrong)`` of every other answer or failed request.
    """

    def __init__(self, url, headers=None, *, clients=4, timeout_seconds=10):
        self.url, self.headers, self.timeout_seconds = url, headers or {}, timeout_seconds
        self.answers, self.failures = [], []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._ask, daemon=True) for _ in range(clients)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def answers_after(self, at):
        """Return the CF version ids answered after monotonic time ``at``."""
        return [version for when, version in list(self.answers) if when > at]

    def wait_for_answers(self, *, after, count, timeout=60):
        """Return True once ``count`` answers arrived after monotonic time ``after``; False at the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.answers_after(after)) >= count:
                return True
            self._stop.wait(0.05)
        return False

    def _ask(self):
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    response = session.get(self.url, headers=self.headers, timeout=self.timeout_seconds)
                except requests.RequestException as exc:
                    self.failures.append((time.monotonic(), repr(exc)))
                    continue
                if response.status_code != 200:
                    self.failures.append((time.monotonic(), (response.status_code, response.text[:200])))
                    continue
                self.answers.append((time.monotonic(), response.json()["model"]["cf"]["id"]))
