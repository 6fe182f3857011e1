"""Admin form: train CF and CB models from uploaded interaction (and item) files."""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from modelstore import services
from modelstore.formatting import human_bytes

from . import options as training
from .exceptions import TrainingError
from .options import TrainingOptions

FORMAT_LABELS = {
    "generic": "CSV: customer_id, item_id[, weight][, timestamp]",
    "online-retail": "UCI Online Retail transactions (InvoiceNo, StockCode, Description, …)",
}
FORMAT_CHOICES = [(name, FORMAT_LABELS[name]) for name in training.FORMATS]

MAX_FACTORS = 1024
MAX_ITERATIONS = 500


class TrainingForm(forms.Form):
    """Check the uploads' names and headers and the training parameters; ``training_queue`` does the rest."""

    interactions = forms.FileField(
        label="Interactions file",
        required=False,  # "required" is checked in clean_interactions, after a too-large refusal
        help_text=f"One of {', '.join(training.CSV_SUFFIXES)}.",
    )
    data_format = forms.ChoiceField(label="Format", choices=FORMAT_CHOICES, initial="generic")
    items = forms.FileField(
        label="Items file",
        required=False,
        help_text="Optional item_id,title[,…] CSV for the content-based model. The Online Retail "
        "format brings its own product descriptions.",
    )
    split_date = forms.DateField(
        required=False,
        help_text="Optional YYYY-MM-DD: train on what came before it and evaluate the new versions on "
        "the customer-item pairs first bought from then on.",
    )
    factors = forms.IntegerField(min_value=1, max_value=MAX_FACTORS, initial=training.DEFAULT_FACTORS)
    iterations = forms.IntegerField(
        min_value=1, max_value=MAX_ITERATIONS, initial=training.DEFAULT_ITERATIONS
    )
    regularization = forms.FloatField(min_value=0, initial=training.DEFAULT_REGULARIZATION)
    alpha = forms.FloatField(
        min_value=0, initial=training.DEFAULT_ALPHA, help_text="Confidence = 1 + alpha × weight."
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    activate = forms.BooleanField(
        label="Activate when ready",
        required=False,
        help_text="Make the new versions the active ones once they are verified.",
    )

    def __init__(self, *args, refusals=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.refusals = refusals or {}
        limit = settings.HYBRIDREC_MAX_UPLOAD_BYTES
        self.fields["interactions"].help_text += f" At most {human_bytes(limit)}."

    def _upload(self, field):
        upload = self.cleaned_data.get(field)
        if field in self.refusals:
            file_name, _ = self.refusals[field]
            limit = settings.HYBRIDREC_MAX_UPLOAD_BYTES
            raise ValidationError(
                f"“{file_name}” is larger than the upload limit of {human_bytes(limit)} "
                "(HYBRIDREC_MAX_UPLOAD_BYTES).",
                code="too_large",
            )
        if upload and upload.size == 0:
            raise ValidationError(f"“{upload.name}” is empty.", code="empty")
        return upload

    def clean_interactions(self):
        upload = self._upload("interactions")
        if not upload:
            raise ValidationError("Choose an interactions file.", code="required")
        return upload

    def clean_items(self):
        return self._upload("items")

    def clean_regularization(self):
        return _positive(self.cleaned_data["regularization"], "Regularization")

    def clean_alpha(self):
        return _positive(self.cleaned_data["alpha"], "Alpha")

    def clean(self):
        cleaned = super().clean()
        data_format = cleaned.get("data_format")
        checks = [("interactions", data_format), ("items", "items")]
        for field, kind in checks:
            upload = cleaned.get(field)
            if not upload or kind is None:
                continue
            from .data import missing_columns  # pandas: loaded when a file is checked

            try:
                missing = missing_columns(
                    upload.open(), name=upload.name, kind=kind, limits=services.bundle_limits()
                )
            except TrainingError as exc:
                self.add_error(field, ValidationError(str(exc), code="unreadable"))
                continue
            finally:
                upload.seek(0)
            if missing:
                described = "items" if kind == "items" else FORMAT_LABELS[kind].split(":")[0]
                self.add_error(
                    field,
                    ValidationError(
                        f"“{upload.name}” lacks the column(s) {', '.join(missing)} that {described} "
                        "files have.",
                        code="missing_columns",
                    ),
                )
        return cleaned

    def training_options(self) -> TrainingOptions:
        """Return the valid form's training options."""
        data = self.cleaned_data
        split_date = data["split_date"]
        return TrainingOptions(
            data_format=data["data_format"],
            split_date=split_date.isoformat() if split_date else None,
            factors=data["factors"],
            iterations=data["iterations"],
            regularization=data["regularization"],
            alpha=data["alpha"],
        )


def _positive(value, name):
    if not value > 0:
        raise ValidationError(f"{name} must be greater than 0.", code="min_value")
    return value
