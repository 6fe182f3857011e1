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


# Counting: rows derived from exposures and events when they are written, so reading the results
# sums a few counters instead of joining every event to every answer. ``experiment_recount``
# rebuilds them from the exposures and events.


class ServedItem(models.Model):
    """One item of one counted answer: what events are matched against, by request id or by time."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="+")
    request_id = models.CharField(max_length=MAX_REQUEST_ID_LENGTH)
    customer_id = models.CharField(max_length=MAX_ID_LENGTH)
    item_id = models.CharField(max_length=MAX_ID_LENGTH)
    served_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["request_id", "item_id"], name="experiments_served_request"),
            models.Index(
                fields=["experiment", "customer_id", "item_id", "served_at"],
                name="experiments_served_customer",
            ),
        ]

    def __str__(self):
        return f"{self.request_id}: {self.item_id} → {self.customer_id}"


class ExposedCustomer(models.Model):
    """A customer an experiment served, once however many answers they got: the split is counted in these."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="+")
    customer_id = models.CharField(max_length=MAX_ID_LENGTH)
    first_served_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "customer_id"], name="experiments_customer_once"),
        ]

    def __str__(self):
        return f"{self.customer_id} in {self.arm_id}"


class Attribution(models.Model):
    """An event type counted for an arm: at most once per customer and item, however many events or answers."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="+")
    customer_id = models.CharField(max_length=MAX_ID_LENGTH)
    item_id = models.CharField(max_length=MAX_ID_LENGTH)
    type = models.CharField(max_length=12)
    at = models.DateTimeField(help_text="The time of the event that counted.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "customer_id", "item_id", "type"], name="experiments_attributed_once"
            ),
        ]

    def __str__(self):
        return f"{self.type} {self.customer_id} → {self.item_id} ({self.arm_id})"


class Tally(models.Model):
    """A counter per arm, metric and hour: what the results page sums."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=12, help_text="answer, customer, or an event type.")
    hour = models.DateTimeField(help_text="The hour (UTC) the counted answers or events happened in.")
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["arm", "metric", "hour"], name="experiments_tally_once"),
        ]

    def __str__(self):
        return f"{self.arm_id} {self.metric} {self.hour:%Y-%m-%d %H}:00 = {self.n}"
