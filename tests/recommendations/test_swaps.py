"""Activations are announced on Redis after the commit, and a subscriber survives a lost connection."""

import threading

import pytest
import redis

from hybridrec import swaps
from modelstore import services
from tests.support.celery_worker import broker_url

pytestmark = [pytest.mark.redis, pytest.mark.django_db]


@pytest.fixture
def redis_url(settings):
    url = broker_url()
    settings.REDIS_URL = url
    settings.HYBRIDREC_SWAP_CHANNEL = "hybridrec-test:swap"
    return url


@pytest.fixture
def listener(redis_url):
    """Return a pubsub subscribed to the swap channel."""
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("hybridrec-test:swap")
    pubsub.get_message(timeout=1)
    yield pubsub
    pubsub.close()
    client.close()


def messages(pubsub, timeout=1.0):
    found = []
    while (message := pubsub.get_message(timeout=timeout)) is not None:
        found.append(message["data"])
    return found


def test_an_activation_is_announced_only_once_committed(
    listener, cf_version, cf_version_two, django_capture_on_commit_callbacks
):
    messages(listener, timeout=0.2)  # the fixture's own activation
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.version_activate(version=cf_version_two)
    assert messages(listener, timeout=0.3) == []

    for callback in callbacks:
        callback()
    assert messages(listener) == [b"cf"]


def test_a_rollback_is_announced(listener, cf_version, cf_version_two, django_capture_on_commit_callbacks):
    services.version_activate(version=cf_version_two)
    messages(listener, timeout=0.2)
    with django_capture_on_commit_callbacks(execute=True):
        services.version_rollback(kind="cf")
    assert messages(listener) == [b"cf"]


def test_without_redis_nothing_is_announced_and_no_subscriber_runs(settings):
    settings.REDIS_URL = None
    subscriber = swaps.Subscriber(lambda kind: None)
    subscriber.start()
    assert not subscriber.alive


def test_a_subscriber_whose_connection_was_cut_reconnects_and_hears_the_next_announcement(redis_url):
    heard = []
    arrived = threading.Event()
    subscriber = swaps.Subscriber(lambda kind: (heard.append(kind), arrived.set()), min_backoff=0.05)
    subscriber.start()
    try:
        assert subscriber.connected.wait(10)
        admin = redis.Redis.from_url(redis_url)
        subscriber.connected.clear()
        admin.client_kill_filter(_type="pubsub")
        assert subscriber.connected.wait(10)

        swaps._publish("cf")
        assert arrived.wait(10)
        assert heard == ["cf"]
    finally:
        subscriber.stop()


def test_withdrawing_the_active_version_is_announced(
    listener, cf_version, cf_version_two, django_capture_on_commit_callbacks
):
    messages(listener, timeout=0.2)
    with django_capture_on_commit_callbacks(execute=True):
        services.version_quarantine(version=cf_version, reason="its file changed")
    assert messages(listener) == [b"cf"]
