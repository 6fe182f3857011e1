"""What the health endpoints report: alive, ready (a CF model and the database), and the summary.

The public summary says whether this process can serve and which versions, in plain words:
no file paths and no raw error texts. Staff get the cache's whole report as well.
"""

import logging

from django.db import DatabaseError, connection

from modelstore.bundles import CB

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


def plain_reasons(models, *, registry_unreadable):
    """Return why a process does not serve exactly what the registry says, naming no file or error.

    ``models`` is ``{kind: described}`` as in the cache's health report.
    """
    reasons = ["the registry cannot be read: the loaded versions keep serving"] if registry_unreadable else []
    for kind, model in models.items():
        error, fault, withdrawn = model["last_error"], model["fault"], model["withdrawn"]
        if kind == CB and not model["loaded"] and error is None:
            continue  # CB not asked for yet
        if not model["loaded"]:
            reasons.append(f"no {kind} model can be served")
            continue
        serves = f"{model['label']} serves"
        if fault is not None:
            reasons.append(
                f"{kind} version {fault['label']} stopped being served: its file {_what(fault['reason'])}; {serves}"
            )
        elif withdrawn:
            reasons.append(
                f"{kind} version {withdrawn['label']} was withdrawn by the system: "
                f"its file {_what(withdrawn['reason'])}; {serves}"
            )
        if error is not None and fault is None:
            reasons.append(f"the active {kind} version {error['label']} could not be loaded; {serves}")
        elif model["source"] != "bundle" and model["active"]:
            reasons.append(f"the active {kind} version is not loaded; {serves}")
    return reasons


def withdrawn_arm_reasons(withdrawn_arms):
    """Return why a running experiment is not served: arms of it were withdrawn (plain words).

    ``withdrawn_arms`` is ``{kind: {"experiment", "arms": {name: {"version", "label", "reason"}}}}``.
    """
    reasons = []
    for kind, described in withdrawn_arms.items():
        for name, arm in described["arms"].items():
            reasons.append(
                f"{kind} experiment {described['experiment']} is not served: the version {arm['label']} "
                f"of its arm {name} was withdrawn by the system (its file {_what(arm['reason'])}); "
                "the active version answers, uncounted, until the experiment is stopped"
            )
    return reasons


def public_withdrawn_arms(withdrawn_arms):
    """Return the withdrawn arms without their reasons (which may name files)."""
    return {
        kind: {
            "experiment": described["experiment"],
            "arms": {
                name: {"version": arm["version"], "label": arm["label"]}
                for name, arm in described["arms"].items()
            },
        }
        for kind, described in withdrawn_arms.items()
    }


def _what(reason):
    """Return what happened to a faulty file, in words that name no file and quote no error."""
    if "deleted" in reason:
        return "was deleted"
    if "changed on disk" in reason or "sha256" in reason:
        return "changed on disk"
    return "could not be verified"


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
            kind: {name: described.get(name) for name in PUBLIC_MODEL_FIELDS}
            for kind, described in report["models"].items()
        },
        "experiments": report["experiments"],
        "withdrawn_arms": public_withdrawn_arms(report["withdrawn_arms"]),
    }


def readiness(cache):
    """Return ``(ready, reasons)``: ready when a CF model is loaded and the database answers."""
    reasons = []
    if cache.preload() is None:
        reasons.append("no cf model is loaded")
    if not database_answers():
        reasons.append("the database cannot be reached")
    return not reasons, reasons
