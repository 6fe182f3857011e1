"""What experiments ask of the registry: no activation of a kind while an experiment runs for it."""

from __future__ import annotations

from modelstore.models import ModelVersion

from .exceptions import ExperimentRunning
from .models import Experiment


def refuse_while_running(*, kind: str, version: ModelVersion) -> None:
    """Refuse to activate ``version`` while an experiment runs for ``kind``; say how to stop it.

    Serving answers from the experiment's arms and the experiment calls the active version its
    control, so an activation now would be reported as served while no answer came from it.
    ``experiment_stop(promote=…)`` ends the experiment before it activates, so it passes.
    """
    running = Experiment.objects.filter(kind=kind, status=Experiment.Status.RUNNING).first()
    if running is None:
        return
    raise ExperimentRunning(
        f"experiment {running.pk} “{running.name}” runs for {kind}, so {version.label} cannot be "
        f"activated now: stop it first (POST /api/v1/experiments/{running.pk}/stop/ with "
        '{"keep_control": true} or {"promote": <version id>}, or its Stop page in the admin), '
        "then activate"
    )
