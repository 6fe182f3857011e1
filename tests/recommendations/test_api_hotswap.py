"""Hot swap against a real server: requests keep succeeding while another version is activated."""

import threading
import time

import pytest
import requests
from rest_framework.authtoken.models import Token

from modelstore import services

pytestmark = pytest.mark.django_db(transaction=True)

N_CLIENTS = 4


def test_every_request_succeeds_during_a_swap_and_then_names_the_new_version(
    live_server, django_user_model, cf_version, cf_version_two
):
    reader = django_user_model.objects.create_user("swap-reader")
    headers = {"Authorization": f"Token {Token.objects.create(user=reader).key}"}
    url = f"{live_server.url}/api/v1/recommendations/C0001/?k=5"
    stop = threading.Event()
    answers, failures = [], []

    def client():
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    response = session.get(url, headers=headers, timeout=10)
                except requests.RequestException as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append((response.status_code, response.text[:200]))
                    continue
                answers.append((time.monotonic(), response.json()["model"]["cf"]["id"]))

    threads = [threading.Thread(target=client) for _ in range(N_CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        services.version_activate(version=cf_version_two)
        activated = time.monotonic()
        time.sleep(2.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)

    assert not failures
    before = [version for at, version in answers if at < activated]
    settled = [version for at, version in answers if at > activated + 2.0]
    assert before and set(before) == {cf_version.pk}
    assert settled and set(settled) == {cf_version_two.pk}
    health = requests.get(f"{live_server.url}/api/v1/health/", timeout=10).json()
    assert health["models"]["cf"]["id"] == cf_version_two.pk
