"""What the health endpoints report: alive, ready (a CF model and the database), and the summary.

The public summary says whether this process can serve and which versions, in plain words:
no file paths and no raw error texts. Staff get the cache's whole report as well.
"""

import logging

from django.db import DatabaseError, connection

from .cache import KINDS

logger = logging.getLogger(__name__)

PUBLIC_MODEL_FIELDS = ("loaded", "id", "label", "sha256", "source", "serving_active")


def database_answers():
    """Return True if the database answers a trivial query now."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("the database does not answer: %s", exc)
        connection.close()
        return False
    return True


def summary(cache, *, detail=False):
    """Return the health summary; with ``detail`` the whole report (loads, errors, timings)."""
    report = cache.health()
    database = database_answers()
    if not database:
        report["reasons"].append("the database cannot be reached")
        if report["status"] == "ok":
            report["status"] = "degraded"
    report["database"] = "ok" if database else "unavailable"
    if detail:
        return report
    return {
        "status": report["status"],
        "can_serve": report["can_serve"],
        "database": report["database"],
        "reasons": report["reasons"],
        "pid": report["pid"],
        "cb_loaded": report["cb_loaded"],
        "models": {
            kind: {name: report["models"][kind].get(name) for name in PUBLIC_MODEL_FIELDS} for kind in KINDS
        },
    }


def readiness(cache):
    """Return ``(ready, reasons)``: ready when a CF model is loaded and the database answers."""
    reasons = []
    if cache.preload() is None:
        reasons.append("no cf model is loaded")
    if not database_answers():
        reasons.append("the database cannot be reached")
    return not reasons, reasons
