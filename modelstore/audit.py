"""Registry actions in Django's admin log, so a version's History and the Recent actions list show them."""

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry

__all__ = ["ADDITION", "CHANGE", "log_version_action"]


def log_version_action(*, user, version, flag, message):
    """Write one admin-log entry for ``version``; nothing when no user made the change."""
    if user is None or not getattr(user, "pk", None):
        return None
    return LogEntry.objects.log_actions(
        user_id=user.pk, queryset=[version], action_flag=flag, change_message=message, single_object=True
    )
