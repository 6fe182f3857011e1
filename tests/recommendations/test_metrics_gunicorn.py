"""/metrics under a real gunicorn with two workers: one scrape sums the numbers of both."""

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gunicorn import gunicorn, prepare, server_env

pytestmark = [pytest.mark.gunicorn, pytest.mark.slow]

TOKEN = "scrape-secret-2"


def samples(url, name):
    """Return the samples of metric ``name`` from one scrape, as ``[(labels, value)]``."""
    response = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name
    ]


def live_requests(url):
    return sum(
        value
        for labels, value in samples(url, "hybridrec_requests_total")
        if labels["endpoint"] == "api:health-live"
    )


def test_one_scrape_counts_the_requests_of_both_workers(tmp_path):
    env = server_env(tmp_path, HYBRIDREC_METRICS_TOKEN=TOKEN)
    versions = prepare(env, tmp_path)["versions"]
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=2) as url:
        assert requests.get(f"{url}/metrics", timeout=10).status_code == 403

        before = live_requests(url)
        pids = [requests.get(f"{url}/api/v1/health/live/", timeout=5).json()["pid"] for _ in range(40)]
        after = live_requests(url)
        loaded = samples(url, "hybridrec_loaded_version")

    assert len(set(pids)) == 2
    assert after - before == len(pids)
    assert {labels["pid"] for labels, value in loaded if value == versions[0]} == set(map(str, pids))
