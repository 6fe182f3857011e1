"""The counting families: events and asks that try to inflate or break an experiment's numbers.

One experiment (the active CF version against a candidate, half each) runs for all of them. Each
family aims at its own customer, takes the counts of ``GET /api/v1/experiments/<id>/`` before
and after, and says whether they stayed where an honest client would have left them.
"""

import contextlib
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from tests.security import hostile_events
from tests.support import processes

REPLAYS = 300
ASKS = 300
FLOOD = 100
K = 5
# Exposures are written by each worker every HYBRIDREC_EXPERIMENT_FLUSH_SECONDS (0.5 on the
# stand): after the last ask, two periods more let the other worker write what it holds.
SETTLE_SECONDS = 2 * 0.5 + 0.5
WAIT_SECONDS = 20


@dataclass
class Outcome:
    """What a counting family did: verdict, the line's note, and the slowest request."""

    bounded: bool
    note: str
    slowest_ms: float = 0.0
    statuses: list = field(default_factory=list)


class Experiment:
    """The stand's running experiment, and the requests the counting families make against it."""

    def __init__(self, stand):
        self.stand = stand
        self.staff = {"Authorization": f"Token {stand.facts['staff']['token']}"}
        self.client = {"Authorization": f"Token {stand.facts['client_token']}"}
        self.slowest_ms = 0.0
        self.statuses = []
        versions = stand.facts["versions"]
        arms = [
            {"version": versions["cf-control"], "share": 0.5},
            {"version": versions["cf-candidate"], "share": 0.5},
        ]
        response = requests.post(
            f"{stand.url}/api/v1/experiments/",
            json={"kind": "cf", "name": "red-team", "arms": arms},
            headers=self.staff,
            timeout=30,
        )
        if response.status_code != 201:
            raise RuntimeError(
                f"starting the experiment answered {response.status_code}: {response.text[:200]}"
            )
        self.id = response.json()["id"]

        def every_worker_serves_it():
            return all(
                (self.get(f"/api/v1/recommendations/C0059/?k={K}").json() or {}).get("experiment")
                for _ in range(10)
            )

        processes.wait_until(
            every_worker_serves_it, timeout=WAIT_SECONDS, interval=0.2, message="the experiment"
        )
        # The first results read imports the statistics (scipy) in its worker: not a family's growth.
        for _ in range(6):
            self.counts()

    def _timed(self, method, path, **kwargs):
        started = time.perf_counter()
        response = requests.request(method, f"{self.stand.url}{path}", timeout=30, **kwargs)
        self.slowest_ms = max(self.slowest_ms, (time.perf_counter() - started) * 1000)
        self.statuses.append(response.status_code)
        return response

    def get(self, path):
        return self._timed("GET", path, headers=self.client)

    def post_events(self, batch):
        return self._timed("POST", "/api/v1/events/", json=batch, headers=self.client)

    def counts(self):
        """Return the experiment's totals over its arms: served, impressions, clicks."""
        response = requests.get(
            f"{self.stand.url}/api/v1/experiments/{self.id}/", headers=self.staff, timeout=30
        )
        arms = response.json()["results"]["arms"]
        return {name: sum(arm[name] for arm in arms) for name in ("served", "impressions", "clicks")}

    def stored_events(self):
        return self.stand.query("SELECT count(*) FROM feedback_event")

    def answer(self, customer_id):
        """Ask for ``customer_id``'s answer; return what events need, once its exposure is written."""
        before = self.counts()["served"]
        response = self.get(f"/api/v1/recommendations/{customer_id}/?k={K}")
        body = response.json()
        self.wait_served(before + 1)
        return {
            "request_id": body["request_id"],
            "customer_id": customer_id,
            "items": [item["item_id"] for item in body["items"]],
            "served_at": datetime.now(UTC),
        }

    def wait_served(self, at_least):
        processes.wait_until(
            lambda: self.counts()["served"] >= at_least,
            timeout=WAIT_SECONDS,
            interval=0.1,
            message="exposures",
        )

    def settle(self):
        """Give every worker time to write the exposures it buffered (a bound from the flush setting)."""
        threading.Event().wait(SETTLE_SECONDS)

    def run(self, family):
        self.slowest_ms, self.statuses = 0.0, []
        try:
            outcome = family(self)
        except (requests.RequestException, AssertionError, KeyError, ValueError) as exc:
            # The family could not finish (a worker died, an answer lacked a field): that is its result.
            outcome = Outcome(False, f"stopped: {type(exc).__name__}: {str(exc)[:120]}")
        outcome.slowest_ms, outcome.statuses = self.slowest_ms, list(self.statuses)
        if any(status >= 500 for status in self.statuses):
            outcome.bounded = False
            outcome.note += f"; {sum(s >= 500 for s in self.statuses)} answers were 5xx"
        return outcome


def replayed(experiment):
    answer = experiment.answer("C0001")
    before = experiment.counts()
    for batch in hostile_events.replayed_events(answer, times=REPLAYS):
        experiment.post_events(batch)
    after = experiment.counts()
    clicks, impressions = after["clicks"] - before["clicks"], after["impressions"] - before["impressions"]
    return Outcome(
        clicks == 1 and impressions == 1,
        f"{REPLAYS} posts → {clicks} clicks, {impressions} impressions counted (1 and 1 expected)",
    )


def flooded(experiment):
    answer = experiment.answer("C0002")
    before = experiment.counts()["impressions"]
    experiment.post_events(hostile_events.impressions_flood(answer, count=FLOOD))
    counted = experiment.counts()["impressions"] - before
    shown = len(answer["items"])
    return Outcome(
        counted <= shown, f"{FLOOD} impressions for a {shown}-item answer → {counted} counted (≤ {shown})"
    )


def clicked_before(experiment):
    answer = experiment.answer("C0003")
    before = experiment.counts()["clicks"]
    experiment.post_events(hostile_events.clicks_before_answer(answer, answer["served_at"]))
    counted = experiment.counts()["clicks"] - before
    return Outcome(
        counted == 0, f"{len(answer['items'])} clicks an hour before the answer → {counted} counted (0)"
    )


def asked_again(experiment):
    before = experiment.counts()["served"]
    for _ in range(ASKS):
        experiment.get(f"/api/v1/recommendations/C0004/?k={K}")
    experiment.wait_served(before + 1)
    experiment.settle()
    served = experiment.counts()["served"] - before
    return Outcome(served <= 1, f"{ASKS} asks for one customer → served +{served} (≤ 1)")


def long_customer_id(experiment):
    customer = hostile_events.long_customer_id(150)
    before = experiment.counts()["served"]
    status = experiment.get(f"/api/v1/recommendations/{customer}/?k={K}").status_code
    experiment.get(f"/api/v1/recommendations/C0005/?k={K}")
    expected = 2 if status == 200 else 1
    # Not reaching it is the finding: a write that failed loses the answers buffered with it.
    with contextlib.suppress(AssertionError):
        experiment.wait_served(before + expected)
    experiment.settle()
    served = experiment.counts()["served"] - before
    return Outcome(
        served == expected and (status == 200 or 400 <= status < 500),
        f"150-character id → {status}; served +{served} with the next answer ({expected} expected)",
    )


def ts_offset(experiment):
    answer = experiment.answer("C0006")
    stored = experiment.stored_events()
    response = experiment.post_events(hostile_events.ts_with_offset(answer, hours=16))
    added = experiment.stored_events() - stored
    body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    accepted = body.get("accepted", 0) if response.status_code == 202 else 0
    return Outcome(
        response.status_code < 500 and accepted == added,
        f"ts +16:00 → {response.status_code} {body.get('code') or f'accepted {accepted}'}; stored +{added}",
    )


def only_refused(experiment):
    stored = experiment.stored_events()
    response = experiment.post_events(hostile_events.only_refused_events(3))
    added = experiment.stored_events() - stored
    code = response.json().get("code") if response.status_code < 500 else None
    refused = 400 <= response.status_code < 500 and bool(code)
    return Outcome(
        refused and added == 0,
        f"3 refused events → {response.status_code} {code or 'no code'}; stored +{added} (a 4xx expected)",
    )


FAMILIES = [
    ("7 events replayed 300 times", replayed),
    ("7 100 impressions for a 5-item answer", flooded),
    ("8 clicks timestamped before the answer", clicked_before),
    ("9 one answer asked 300 times", asked_again),
    ("12 an event ts with offset +16:00", ts_offset),
    ("17 a batch of only refused events", only_refused),
    # Last: where a long id makes a worker's exposure write fail, that worker may write no later
    # exposure either, which would fail the families after it for this family's fault.
    ("10 a 150-character customer id", long_customer_id),
]
