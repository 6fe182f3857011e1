"""Drive a synthetic population through the real API and read what the experiment concluded.

Customers ask for recommendations (the batch endpoint), and a simulated client reports an
impression for every item shown and a click with the arm's true probability (control ``p0``,
every candidate ``p0 + delta``); a click becomes an add-to-cart and a purchase with fixed odds.
Each arm stops reporting once it has the planned impressions, so the experiment is read exactly
at its planned size. Everything goes over HTTP (base URL and token), as from a shop's server.
"""

import json
import math
import time

import numpy as np
import requests
from django.core.management.base import BaseCommand, CommandError

from recommendations.experiments import stats

ADD_TO_CART_AFTER_CLICK = 0.3
PURCHASE_AFTER_ADD_TO_CART = 0.5
EVENTS_PER_POST = 1000


class Api:
    """The few calls the simulation makes, raising CommandError with the server's answer on a refusal."""

    def __init__(self, url, token, timeout_seconds=30):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.timeout = timeout_seconds

    def call(self, method, path, expected, **kwargs):
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise CommandError(f"{method} {path}: {exc}") from None
        if response.status_code not in expected:
            raise CommandError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json()


def _probability(value):
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Run a synthetic population with known click-through per arm (control p0, candidates "
        "p0 + delta) through the API of a running server, and print the experiment's results."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
        parser.add_argument(
            "--token", required=True, help="API token of a user with view, activate and feedback.add_event"
        )
        parser.add_argument("--experiment", type=int, help="a running experiment's id (default: start one)")
        parser.add_argument(
            "--kind", choices=("cf",), default="cf", help="the kind to start an experiment for"
        )
        parser.add_argument(
            "--arms",
            type=int,
            default=2,
            help="arms of the experiment it starts: the active version and the newest ready others (default 2)",
        )
        parser.add_argument(
            "--customers", type=int, help="the most customers to serve (default: as many as the plan needs)"
        )
        parser.add_argument(
            "--p0", type=_probability, default=0.10, help="the control's true click-through (0.10)"
        )
        parser.add_argument(
            "--delta", type=float, default=0.03, help="what candidates add to p0 (0.03; 0 for A/A)"
        )
        parser.add_argument("--min-effect", type=float, help="the plan's effect (default: delta)")
        parser.add_argument("--power", type=_probability, default=0.8, help="the plan's power (0.8)")
        parser.add_argument(
            "--alpha", type=_probability, default=0.05, help="the plan's two-sided alpha (0.05)"
        )
        parser.add_argument("--k", type=int, default=10, help="items per answer (10)")
        parser.add_argument("--batch", type=int, default=100, help="customers per batch request (100)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--stop", action="store_true", help="stop the experiment at the end, keeping the control"
        )
        parser.add_argument(
            "--wait-seconds", type=float, default=60, help="how long to wait for exposures to be written"
        )
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args, **options):
        api = Api(options["url"], options["token"])
        min_effect = options["min_effect"] if options["min_effect"] is not None else options["delta"]
        if not min_effect:
            raise CommandError("an A/A run (--delta 0) needs --min-effect to plan its size")
        experiment = self._experiment(api, options)
        arms = experiment["arms"]
        truth = {arm["name"]: options["p0"] + (0 if arm["is_control"] else options["delta"]) for arm in arms}
        if not all(0 <= p <= 1 for p in truth.values()):
            raise CommandError(f"p0 + delta must be a probability, got {truth}")
        planned = stats.sample_size_per_arm(
            options["p0"],
            min_effect,
            alpha=options["alpha"],
            power=options["power"],
            comparisons=max(len(arms) - 1, 1),
        )
        answers_needed = math.ceil(planned / options["k"])
        smallest_share = min(arm["share"] for arm in arms)
        customers = options["customers"] or math.ceil(answers_needed / smallest_share * 1.3) + 200
        started = time.monotonic()
        self._wait_until_served(api, experiment["id"], options)
        served, reported = self._drive(api, experiment["id"], truth, planned, customers, options)
        results = self._wait_for_exposures(api, experiment["id"], served, options["wait_seconds"])
        summary = {
            "experiment": experiment["id"],
            "seed": options["seed"],
            "truth": truth,
            "planned_impressions_per_arm": planned,
            "customers_served": sum(served.values()),
            "events_accepted": reported,
            "seconds": round(time.monotonic() - started, 2),
            "results": results,
        }
        if options["stop"]:
            api.call(
                "POST",
                f"/api/v1/experiments/{experiment['id']}/stop/",
                (200,),
                json={"keep_control": True, "reason": "simulation finished"},
            )
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self._print(summary)

    def _experiment(self, api, options):
        if options["experiment"] is not None:
            return api.call("GET", f"/api/v1/experiments/{options['experiment']}/", (200,))
        if options["arms"] < 2:
            raise CommandError("--arms must be at least 2 (the control and a candidate)")
        versions = api.call("GET", f"/api/v1/models/?kind={options['kind']}&limit=500", (200,))["results"]
        active = [v for v in versions if v["is_active"]]
        ready = sorted(
            (v for v in versions if v["status"] == "ready" and not v["is_active"]), key=lambda v: -v["id"]
        )
        if not active or len(ready) < options["arms"] - 1:
            raise CommandError(
                f"starting {options['arms']} arms needs an active {options['kind']} version and "
                f"{options['arms'] - 1} other ready ones; found {len(active)} active, {len(ready)} ready"
            )
        chosen = [active[0], *ready[: options["arms"] - 1]]
        share = round(1 / len(chosen), 6)
        shares = [share] * (len(chosen) - 1) + [round(1 - share * (len(chosen) - 1), 6)]
        return api.call(
            "POST",
            "/api/v1/experiments/",
            (201,),
            json={
                "kind": options["kind"],
                "name": f"simulation seed {options['seed']}",
                "arms": [{"version": v["id"], "share": s} for v, s in zip(chosen, shares, strict=True)],
            },
        )

    def _drive(self, api, experiment_id, truth, planned, customers, options):
        """Serve customers in batches and report their events until every arm has the planned impressions."""
        rng = np.random.default_rng(options["seed"])
        impressions = dict.fromkeys(truth, 0)
        served = dict.fromkeys(truth, 0)
        pending, accepted = [], 0
        for start in range(0, customers, options["batch"]):
            if all(count >= planned for count in impressions.values()):
                break
            ids = [
                f"sim-{options['seed']}-{i}" for i in range(start, min(start + options["batch"], customers))
            ]
            answers = api.call(
                "POST",
                "/api/v1/recommendations/batch/",
                (200,),
                json={"customer_ids": ids, "k": options["k"]},
            )["results"]
            for answer in answers:
                tag = answer.get("experiment")
                if not tag or tag["id"] != experiment_id:
                    # A worker that has not yet noticed the experiment (it checks every
                    # HYBRIDREC_VERSION_CHECK_SECONDS): that answer is not part of it.
                    continue
                arm = tag["arm"]
                served[arm] += 1
                if impressions[arm] >= planned:
                    continue
                pending.extend(self._events(rng, answer, truth[arm]))
                impressions[arm] += len(answer["items"])
            while len(pending) >= EVENTS_PER_POST:
                accepted += self._post(api, pending[:EVENTS_PER_POST])
                del pending[:EVENTS_PER_POST]
        if pending:
            accepted += self._post(api, pending)
        short = {arm: count for arm, count in impressions.items() if count < planned}
        if short:
            raise CommandError(
                f"{customers} customers were not enough for {planned} impressions per arm: {short}"
            )
        return served, accepted

    @staticmethod
    def _wait_until_served(api, experiment_id, options):
        """Wait until every answer of a probe batch comes from the experiment (workers check every second or so)."""
        probe = [f"probe-{options['seed']}-{i}" for i in range(20)]
        deadline = time.monotonic() + options["wait_seconds"]
        while True:
            answers = api.call(
                "POST", "/api/v1/recommendations/batch/", (200,), json={"customer_ids": probe, "k": 1}
            )["results"]
            if all((answer.get("experiment") or {}).get("id") == experiment_id for answer in answers):
                return
            if time.monotonic() > deadline:
                raise CommandError(
                    f"after {options['wait_seconds']} s answers still do not come from experiment {experiment_id}"
                )
            time.sleep(0.2)

    @staticmethod
    def _events(rng, answer, click_probability):
        customer, request_id = answer["customer_id"], answer["request_id"]
        events = []
        for item in answer["items"]:
            base = {"customer_id": customer, "item_id": item["item_id"], "request_id": request_id}
            events.append({"type": "impression", **base})
            if rng.random() < click_probability:
                events.append({"type": "click", **base})
                if rng.random() < ADD_TO_CART_AFTER_CLICK:
                    events.append({"type": "add_to_cart", **base})
                    if rng.random() < PURCHASE_AFTER_ADD_TO_CART:
                        events.append({"type": "purchase", **base})
        return events

    @staticmethod
    def _post(api, events):
        answer = api.call("POST", "/api/v1/events/", (202,), json={"events": events})
        if answer["rejected"]:
            raise CommandError(f"the server refused simulated events: {answer['rejected'][:3]}")
        return answer["accepted"]

    @staticmethod
    def _wait_for_exposures(api, experiment_id, served, wait_seconds):
        """Return the experiment's results once every served answer is counted (exposures are written every few seconds)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            results = api.call("GET", f"/api/v1/experiments/{experiment_id}/", (200,))["results"]
            counted = {row["arm"]: row["served"] for row in results["arms"]}
            if all(counted.get(arm, 0) >= n for arm, n in served.items()):
                return results
            if time.monotonic() > deadline:
                raise CommandError(
                    f"after {wait_seconds} s the server counts {counted} answers, not {served}"
                )
            time.sleep(0.5)

    def _print(self, summary):
        results = summary["results"]
        self.stdout.write(
            f"experiment {summary['experiment']}, seed {summary['seed']}: {summary['customers_served']:,} customers, "
            f"{summary['events_accepted']:,} events in {summary['seconds']} s; "
            f"planned {summary['planned_impressions_per_arm']:,} impressions per arm"
        )
        self.stdout.write(
            "arm      true p   served  impressions  clicks  click-through (95 % CI)    p (Holm)  called"
        )
        for row in results["arms"]:
            ctr = row["ctr"]
            versus = (row["vs_control"] or {}).get("ctr") or {}
            p = versus.get("p_adjusted")
            self.stdout.write(
                f"{row['arm']:<8} {summary['truth'][row['arm']]:<8.3f} {row['served']:>6} {row['impressions']:>12} "
                f"{row['clicks']:>7}  {ctr['rate'] or 0:.4f} ({ctr['low'] or 0:.4f}–{ctr['high'] or 0:.4f})"
                f"     {'—' if p is None else f'{p:.4f}':>8}  {'yes' if versus.get('significant') else 'no'}"
            )
        if results.get("warning"):
            self.stdout.write(f"warning: {results['warning']}")
