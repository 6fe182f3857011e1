"""What an experiment has measured so far, per arm (shown by the API and the admin page)."""

from django.db.models import Count

from .models import Arm, Exposure


def experiment_results(experiment):
    """Return ``{"arms": [{"arm", "version", "is_control", "share", "served"}, …]}`` in arm order.

    ``served`` counts the answers recorded as exposures (forced answers are never recorded).
    """
    served = dict(
        Exposure.objects.filter(experiment=experiment)
        .values_list("arm_id")
        .annotate(n=Count("id"))
        .values_list("arm_id", "n")
    )
    arms = Arm.objects.filter(experiment=experiment).order_by("position")
    return {
        "arms": [
            {
                "arm": arm.name,
                "version": arm.version_id,
                "is_control": arm.is_control,
                "share": arm.share,
                "served": served.get(arm.pk, 0),
            }
            for arm in arms
        ]
    }
