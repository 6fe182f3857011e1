"""Announce an activation to every serving process of every node, through Redis pub/sub.

``announce(kind)`` publishes after the surrounding transaction commits; ``Subscriber`` runs in
each serving process and calls back on every message. Without ``REDIS_URL`` both do nothing,
and the processes notice the change by polling (``HYBRIDREC_VERSION_CHECK_SECONDS``).
"""

import logging
import threading
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

# Publishing must not hold an activation up when Redis is away: polling catches up.
PUBLISH_TIMEOUT_SECONDS = 1.0


def announce(kind: str) -> None:
    """Publish ``kind`` on the swap channel once the current transaction commits."""
    if settings.REDIS_URL:
        transaction.on_commit(lambda: _publish(kind))


def _publish(kind: str) -> None:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=PUBLISH_TIMEOUT_SECONDS,
            socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS,
        )
        with client:
            client.publish(settings.HYBRIDREC_SWAP_CHANNEL, kind)
    except redis.RedisError as exc:
        logger.warning("could not announce the %s activation (%s); servers pick it up by polling", kind, exc)


class Subscriber:
    """Call ``on_message(kind)`` in a daemon thread for every message on the swap channel.

    A lost connection is retried with a doubling delay (``min_backoff`` up to ``max_backoff``
    seconds); ``on_connect()`` runs after every (re)connection, so a change announced while the
    subscriber was away is caught by a check then.
    """

    def __init__(
        self,
        on_message: Callable[[str], None],
        *,
        on_connect: Callable[[], None] = lambda: None,
        min_backoff: float = 0.1,
        max_backoff: float = 30.0,
        name: str = "hybridrec-swaps",
    ):
        self._on_message = on_message
        self._on_connect = on_connect
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    @property
    def alive(self) -> bool:
        """Return True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread when REDIS_URL is set, unless it runs already."""
        if not settings.REDIS_URL or self.alive:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait up to ``timeout`` seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = self._min_backoff
        while not self._stop.is_set():
            try:
                self._listen()
                backoff = self._min_backoff
            except redis.RedisError as exc:
                self.connected.clear()
                logger.warning("swap announcements unavailable (%s); retrying in %.1f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    def _listen(self) -> None:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, health_check_interval=10)
        with client, client.pubsub(ignore_subscribe_messages=True) as pubsub:
            pubsub.subscribe(settings.HYBRIDREC_SWAP_CHANNEL)
            pubsub.get_message(timeout=1.0)  # the subscription's confirmation
            self.connected.set()
            self._safely(self._on_connect)
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is not None and message["type"] == "message":
                    kind = message["data"].decode() if isinstance(message["data"], bytes) else message["data"]
                    self._safely(self._on_message, kind)

    @staticmethod
    def _safely(call: Callable[..., None], *args: str) -> None:
        try:
            call(*args)
        except Exception:  # the subscriber must outlive any one failed callback
            logger.exception("handling a swap announcement failed")
