"""An experiment splits one kind's traffic between versions (arms); exposures record what was served."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from hybridrec.limits import MAX_ID_LENGTH, MAX_REQUEST_ID_LENGTH
from modelstore.models import ModelVersion


class Experiment(models.Model):
    """A traffic split for one kind: the active version as control and one or more candidates."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"

    class Outcome(models.TextChoices):
        NONE = "", "—"
        KEPT_CONTROL = "kept_control", "Kept the control"
        PROMOTED = "promoted", "Promoted a candidate"

    kind = models.CharField(max_length=2, choices=ModelVersion.Kind.choices)
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING, db_index=True)
    started_at = models.DateTimeField(default=timezone.now)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.NONE, blank=True)
    promoted_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True, help_text="Why the experiment was stopped, as its stopper put it.")

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(status="running"),
                name="experiments_one_running_per_kind",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()}, {self.status})"


class Arm(models.Model):
    """One version in an experiment and the share of customers it serves."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    share = models.FloatField(help_text="Fraction of customers in (0, 1]; an experiment's shares sum to 1.")
    is_control = models.BooleanField(default=False)
    name = models.CharField(max_length=20, help_text="control, B, C, …")
    position = models.PositiveSmallIntegerField(help_text="Order of the arms on the unit interval.")

    class Meta:
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "version"], name="experiments_arm_version_once"),
            models.UniqueConstraint(fields=["experiment", "position"], name="experiments_arm_position_once"),
            models.UniqueConstraint(fields=["experiment", "name"], name="experiments_arm_name_once"),
            models.UniqueConstraint(
                fields=["experiment"],
                condition=Q(is_control=True),
                name="experiments_one_control_per_experiment",
            ),
            models.CheckConstraint(
                condition=Q(share__gt=0) & Q(share__lte=1), name="experiments_arm_share_in_unit_interval"
            ),
        ]

    def __str__(self):
        return f"{self.name}: version {self.version_id} ({self.share:.0%})"


class Exposure(models.Model):
    """One served answer that counted in an experiment: who got which items from which arm."""

    request_id = models.CharField(
        max_length=MAX_REQUEST_ID_LENGTH, db_index=True, help_text="Issued by the server."
    )
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="exposures")
    # As long as any id the API takes: a shorter column made every buffered exposure unwritable.
    customer_id = models.CharField(max_length=MAX_ID_LENGTH)
    items = models.JSONField(default=list, help_text="Item ids served, in order.")
    served_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-served_at", "-id"]
        indexes = [
            models.Index(fields=["experiment", "arm", "served_at"], name="experiments_exp_arm_served"),
            models.Index(fields=["customer_id", "served_at"], name="experiments_customer_served"),
        ]

    def __str__(self):
        return f"{self.request_id} → {self.customer_id} ({self.arm_id})"


class ExperimentChange(models.Model):
    """An audit row: who started, stopped or promoted from an experiment, when and why."""

    class Action(models.TextChoices):
        STARTED = "started", "Started"
        STOPPED = "stopped", "Stopped"
        PROMOTED = "promoted", "Promoted"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="changes")
    action = models.CharField(max_length=10, choices=Action.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty when the system made the change.",
    )
    at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.get_action_display()} {self.experiment_id} at {self.at:%Y-%m-%d %H:%M}"
