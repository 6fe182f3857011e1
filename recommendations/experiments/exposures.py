"""Counting served answers without holding a request up: a per-process buffer and its flusher.

A request only appends a tuple to a bounded deque (``record``). A daemon thread of the process
writes what is buffered every ``HYBRIDREC_EXPERIMENT_FLUSH_SECONDS`` with one ``bulk_create``,
and once more when the process exits normally (``atexit``: gunicorn's workers exit through it).
When the buffer holds ``HYBRIDREC_EXPERIMENT_BUFFER`` rows, new ones are dropped and counted
(``hybridrec_experiment_exposures_dropped_total`` in /metrics) rather than waited for. A
process killed with SIGKILL loses what it buffered: at most one flush interval of exposures.
A write that fails because of the database (away, locked) puts the rows back, as far as the
buffer has room. A batch the database refuses because of a row (a value it cannot store) is
written again row by row, so that only the rows it refuses are left out; those, the rows of a
deleted experiment and what is still buffered when the process ends are counted in
``hybridrec_experiment_exposures_lost_total`` by reason.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import deque
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, connections, router, transaction
from prometheus_client import Counter

from hybridrec.metrics import count_lost_exposures

from . import counting
from .models import Arm, Exposure

logger = logging.getLogger(__name__)

WRITTEN = Counter("hybridrec_experiment_exposures_written_total", "Exposures written to the database.")
DROPPED = Counter(
    "hybridrec_experiment_exposures_dropped_total",
    "Exposures dropped because the process's buffer was full (the database slower than the traffic).",
)
BATCH_SIZE = 1000
# What a row can make a write fail with: a value too long or one the driver cannot encode (a
# NUL for PostgreSQL, a lone surrogate), a row whose arm is gone. Any other DatabaseError is the
# database's (away, locked): the rows wait for the next flush.
ROW_FAULTS = (DataError, IntegrityError, ValueError)


class ExposureBuffer:
    """A bounded buffer of exposures and the thread that writes them."""

    def __init__(self):
        self._rows: deque[tuple] = deque()
        self._lock = threading.Lock()  # one flush at a time
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.dropped = 0

    def record(self, *, request_id: str, experiment_id: int, arm_id: int, customer_id: str, items: list[str]):
        """Buffer one exposure; never blocks. Start the flusher on first use in this process."""
        if len(self._rows) >= settings.HYBRIDREC_EXPERIMENT_BUFFER:
            self.dropped += 1
            DROPPED.inc()
            return
        self._rows.append((request_id, experiment_id, arm_id, customer_id, items, datetime.now(UTC)))
        if self._thread is None:
            self._start()

    def pending(self) -> int:
        """Return how many exposures wait to be written."""
        return len(self._rows)

    def flush(self) -> int:
        """Write every buffered exposure now; return how many were written."""
        with self._lock:
            taken = []
            while self._rows:
                taken.append(self._rows.popleft())
            if not taken:
                return 0
            try:
                # Rows of an experiment deleted meanwhile can never be written: leave them out.
                arms = set(Arm.objects.filter(pk__in={row[2] for row in taken}).values_list("pk", flat=True))
            except DatabaseError as exc:
                self._put_back(taken, exc)
                return 0
            kept = [row for row in taken if row[2] in arms]
            self._lose("experiment_deleted", len(taken) - len(kept))
            written, refused, left, error = store(kept)
            if left:
                self._put_back(left, error)
            if refused:
                self._lose("refused", len(refused))
                logger.warning(
                    "left out %d exposures the database refused (the first: %s)", len(refused), refused[0]
                )
            WRITTEN.inc(written)
            return written

    def _put_back(self, rows, exc):
        """Keep ``rows`` for the next flush, as far as the buffer has room; count the rest as dropped."""
        room = max(settings.HYBRIDREC_EXPERIMENT_BUFFER - len(self._rows), 0)
        self._rows.extendleft(reversed(rows[:room]))
        lost = len(rows) - min(room, len(rows))
        if lost:
            self.dropped += lost
            DROPPED.inc(lost)
        logger.warning("could not write %d exposures (%s); kept %d", len(rows), exc, len(rows) - lost)
        connections.close_all()

    def _lose(self, reason, count):
        self.dropped += count
        count_lost_exposures(reason, count)

    def _start(self):
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="hybridrec-exposures", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0):
        """Stop the flusher thread (after its last flush) and wait for it."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    def _run(self):
        while not self._stop.wait(float(settings.HYBRIDREC_EXPERIMENT_FLUSH_SECONDS)):
            self._flush_quietly()
        self._flush_quietly()
        connections.close_all()

    def _flush_quietly(self):
        try:
            self.flush()
        except Exception:  # the flusher must outlive any one failed write
            logger.exception("writing exposures failed")


_buffer = ExposureBuffer()


def buffer() -> ExposureBuffer:
    """Return this process's exposure buffer."""
    return _buffer


def record(**exposure):
    """Buffer one exposure in this process (see ``ExposureBuffer.record``)."""
    _buffer.record(**exposure)


def _write(rows):
    """Insert ``rows`` with one ``executemany`` per batch, in one transaction (all or none).

    Not ``bulk_create``: building a model instance and compiling its SQL costs about 0.15 ms a
    row in the worker's Python, under the GIL its request threads need; binding plain values
    costs a few microseconds.
    """
    connection = connections[router.db_for_write(Exposure)]
    table = connection.ops.quote_name(Exposure._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(Exposure._meta.get_field(name).column)
        for name in ("request_id", "experiment", "arm", "customer_id", "items", "served_at")
    )
    sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s)"
    items_field = Exposure._meta.get_field("items")
    adapt_time = connection.ops.adapt_datetimefield_value
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH_SIZE):
            cursor.executemany(
                sql,
                [
                    (
                        request_id,
                        experiment_id,
                        arm_id,
                        customer_id,
                        items_field.get_db_prep_value(items, connection),
                        adapt_time(served_at),
                    )
                    for request_id, experiment_id, arm_id, customer_id, items, served_at in rows[
                        start : start + BATCH_SIZE
                    ]
                ],
            )


def store(rows):
    """Write ``rows`` a batch at a time and count them, leaving out only the rows the database refuses.

    What the flusher does with a buffer's rows (``(request_id, experiment_id, arm_id,
    customer_id, items, served_at)`` tuples); the benchmark calls it to write answers in bulk.
    Return ``(written, refusals, rows left, error)``: an error of the database itself (away,
    locked) stops the writing and returns the rows not written with it.
    """
    written, refused, position = 0, [], 0
    try:
        while position < len(rows):
            batch = rows[position : position + BATCH_SIZE]
            try:
                _write(batch)
                _counted(batch)
                written += len(batch)
                position += len(batch)
                continue
            except ROW_FAULTS:
                pass
            # One bad row must not keep the others out: again row by row, a savepoint each, in
            # one transaction (a commit a row costs milliseconds on PostgreSQL).
            try:
                stored, faults = _write_each(batch)
                _counted(stored)
                written += len(stored)
                refused += faults
                position += len(batch)
                continue
            except ROW_FAULTS:  # refused at the commit (a foreign key is checked there)
                pass
            for row in batch:
                try:
                    _write([row])
                    _counted([row])
                    written += 1
                except ROW_FAULTS as exc:
                    refused.append(exc)
                position += 1
    except DatabaseError as exc:
        return written, refused, rows[position:], exc
    return written, refused, [], None


def _write_each(rows):
    """Insert ``rows`` one by one in one transaction, leaving out those refused.

    Return ``(the rows stored, the errors of those refused)``.
    """
    stored, faults = [], []
    with transaction.atomic(using=router.db_for_write(Exposure)):
        for row in rows:
            try:
                _write([row])  # nested: a savepoint
                stored.append(row)
            except ROW_FAULTS as exc:
                faults.append(exc)
    return stored, faults


def _counted(rows):
    """Count committed ``rows`` for their experiments (counting.py).

    After the commit, so events stored meanwhile by another transaction are seen.
    """
    if rows:
        counting.exposures_count(rows=rows)


def _flush_at_exit():
    _buffer.stop(timeout=5.0)
    try:
        _buffer.flush()
    except Exception:  # the process is ending: say so, never raise from an exit handler
        logger.exception("writing exposures at exit failed")
    left = _buffer.pending()
    if left:
        count_lost_exposures("exit", left)
        logger.error("the process ends with %d exposures it could not write: they are lost", left)


def _forget_after_fork():
    # A forked child starts with an empty buffer and no flusher: the parent writes its own rows.
    global _buffer
    _buffer = ExposureBuffer()


atexit.register(_flush_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)
