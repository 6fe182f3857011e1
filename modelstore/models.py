"""The registry: one row per bundle file, and an audit row per activation or rollback."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ModelVersion(models.Model):
    """A registered model bundle (CF or CB) and what is known about it."""

    class Kind(models.TextChoices):
        CF = "cf", "Collaborative filtering"
        CB = "cb", "Content-based"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        BUILDING = "building", "Building"
        VERIFYING = "verifying", "Verifying"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=2, choices=Kind.choices)
    label = models.CharField(max_length=100, help_text="Human name, unique per kind (e.g. cf-2026-11-27).")
    notes = models.TextField(blank=True)
    file = models.FileField(upload_to="bundles/", max_length=255, blank=True, help_text="The stored bundle.")
    sha256 = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="sha256 of the stored file."
    )
    uploaded_sha256 = models.CharField(
        max_length=64,
        blank=True,
        help_text="sha256 of the file as uploaded or built from (before conversion).",
    )
    content_sha256 = models.CharField(
        max_length=64, blank=True, help_text="sha256 of the array contents: the same content is one version."
    )
    size_bytes = models.BigIntegerField(null=True, blank=True)
    compression = models.CharField(
        max_length=10, blank=True, help_text="Empty when uncompressed (memory-mapped)."
    )
    format_version = models.PositiveSmallIntegerField(null=True, blank=True)
    source_layout = models.CharField(
        max_length=20, blank=True, help_text="native, seed-bundle, cf-artifacts or cb-artifacts."
    )
    joblib_version = models.CharField(max_length=32, blank=True)
    numpy_version = models.CharField(max_length=32, blank=True)
    pandas_version = models.CharField(max_length=32, blank=True)
    n_users = models.PositiveIntegerField(default=0)
    n_items = models.PositiveIntegerField(default=0)
    n_recommendations = models.BigIntegerField(default=0)
    n_factors = models.PositiveIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Offline evaluation results.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(
        default=timezone.now,
        help_text="When the status last changed; the sweep re-queues or fails versions stuck since then.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=Q(is_active=True), name="modelstore_one_active_version_per_kind"
            ),
            models.UniqueConstraint(fields=["kind", "label"], name="modelstore_unique_label_per_kind"),
            models.UniqueConstraint(
                fields=["kind", "content_sha256"],
                condition=~Q(content_sha256=""),
                name="modelstore_unique_content_per_kind",
            ),
        ]
        permissions = [("activate_modelversion", "Can activate and roll back model versions")]

    def __str__(self):
        return (
            f"{self.label} ({self.get_kind_display()}, {self.status}{', active' if self.is_active else ''})"
        )


class ActivationEvent(models.Model):
    """An audit row: who switched a kind's active version (or the system, and why), when, from which to which."""

    class Action(models.TextChoices):
        ACTIVATE = "activate", "Activate"
        ROLLBACK = "rollback", "Roll back"
        QUARANTINE = "quarantine", "Withdraw a faulty version"

    kind = models.CharField(max_length=2, choices=ModelVersion.Kind.choices)
    action = models.CharField(max_length=10, choices=Action.choices)
    from_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    from_label = models.CharField(max_length=100, blank=True, help_text="Kept when the version is deleted.")
    to_label = models.CharField(max_length=100, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text="Empty when the system switched versions on its own.",
    )
    reason = models.TextField(blank=True, help_text="Why the system switched versions, when it did.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "-created_at"])]

    def __str__(self):
        return f"{self.get_action_display()} {self.kind}: {self.from_label or '—'} → {self.to_label}"
