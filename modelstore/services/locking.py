"""The one lock every change of a kind's active version takes."""

from ..models import ModelVersion


def lock_kind(kind: str) -> list[ModelVersion]:
    """Lock every version row of ``kind`` until the transaction ends; return them in id order.

    Activation, rollback, withdrawal, starting an experiment and promoting its candidate all take
    it first, so they run one after the other; rows are locked in id order, so two lockers never
    deadlock. Call it inside ``transaction.atomic()`` (Django refuses a row lock outside one).
    """
    return list(ModelVersion.objects.select_for_update().filter(kind=kind).order_by("pk"))
