"""A training run started from the admin: its state, progress and the versions it ended with."""

from django.conf import settings
from django.db import models

from modelstore.models import ModelVersion


class TrainingRun(models.Model):
    """One "train and build" job: queued, running (with its current stage), then done or failed."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    # Stages a run goes through, for "step n of N"; CB and evaluation steps are skipped when absent.
    STEPS = ("reading the files", "training", "building CF", "building CB", "evaluating")

    source = models.CharField(max_length=255, help_text="The uploaded file name(s).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=255, blank=True, help_text="What the run is doing now.")
    step = models.PositiveSmallIntegerField(default=0)
    steps = models.PositiveSmallIntegerField(default=len(STEPS))
    cf_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cb_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per kind: {"id", "made": true when a new version, false when it matched one}.',
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The table it had when it lived in the recommendations app: moving it renamed nothing.
        db_table = "recommendations_trainingrun"

    def __str__(self):
        return f"training run {self.pk} from {self.source} ({self.status})"

    @property
    def is_busy(self):
        """Return True while the run is queued or running."""
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    def outcome_lines(self):
        """Return one sentence per kind: "CF made version 7", "CB matched version 2", "CB failed: …"."""
        lines = []
        for kind in ("cf", "cb"):
            result = self.outcome.get(kind)
            if not result:
                continue
            version = ModelVersion.objects.filter(pk=result["id"]).first()
            if version is None:
                lines.append((kind, None, f"{kind.upper()} version {result['id']} has since been deleted"))
            elif version.status == ModelVersion.Status.FAILED:
                lines.append((kind, version, f"{kind.upper()} failed: {version.error}"))
            else:
                verb = "made" if result.get("made") else "matched"
                lines.append((kind, version, f"{kind.upper()} {verb} version {version.pk} ({version.label})"))
        return lines
