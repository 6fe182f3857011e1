"""The admin's start form: checks in ``clean`` (through the service's own rules), writes in ``save``."""

from django import forms
from django.db import transaction

from modelstore.models import ModelVersion
from modelstore.selectors import active_version

from . import services
from .exceptions import ExperimentError
from .models import Experiment

CANDIDATE_SLOTS = 3


def control_versions():
    """Name the version that would be the control of each kind: its active version."""
    named = []
    for kind, kind_label in ModelVersion.Kind.choices:
        active = active_version(kind)
        named.append(
            f"{kind_label}: “{active.label}” (version {active.pk})"
            if active
            else f"{kind_label}: none active"
        )
    return "The control is the kind's active version — " + "; ".join(named) + "."


class StartForm(forms.Form):
    """Start an experiment: the kind's active version is the control, with up to three candidates."""

    kind = forms.ChoiceField(choices=ModelVersion.Kind.choices)
    name = forms.CharField(max_length=Experiment._meta.get_field("name").max_length)
    control_share = forms.FloatField(
        min_value=0.0, max_value=1.0, initial=0.5, help_text="The active version's share of customers."
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["control_share"].help_text = f"The control's share of customers. {control_versions()}"
        ready = ModelVersion.objects.filter(status=ModelVersion.Status.READY, is_active=False).order_by(
            "kind", "-id"
        )
        for slot in range(1, CANDIDATE_SLOTS + 1):
            self.fields[f"candidate_{slot}"] = forms.ModelChoiceField(
                ready, required=slot == 1, label=f"Candidate {slot}", help_text="A ready version of the kind."
            )
            self.fields[f"share_{slot}"] = forms.FloatField(
                min_value=0.0, max_value=1.0, required=slot == 1, label=f"Share {slot}"
            )

    def arms(self):
        """Return the arms as the service takes them: the active version first, then the candidates."""
        data = self.cleaned_data
        active = active_version(data["kind"])
        arms = [{"version": active.pk if active else 0, "share": data.get("control_share")}]
        for slot in range(1, CANDIDATE_SLOTS + 1):
            version = data.get(f"candidate_{slot}")
            if version is not None:
                arms.append({"version": version.pk, "share": data.get(f"share_{slot}")})
        return arms

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        for slot in range(1, CANDIDATE_SLOTS + 1):
            if (cleaned.get(f"candidate_{slot}") is None) != (cleaned.get(f"share_{slot}") is None):
                self.add_error(f"share_{slot}", "Give a candidate and its share together.")
        if self.errors:
            return cleaned
        if active_version(cleaned["kind"]) is None:
            raise forms.ValidationError(
                f"No {cleaned['kind']} version is active: the active version is the control."
            )
        # The service's rules, tried in a transaction that is rolled back: the form only checks.
        try:
            with transaction.atomic():
                services.experiment_start(kind=cleaned["kind"], name=cleaned["name"], arms=self.arms())
                transaction.set_rollback(True)
        except ExperimentError as exc:
            raise forms.ValidationError(str(exc), code=exc.code) from None
        return cleaned

    def save(self):
        """Start the experiment; return it."""
        data = self.cleaned_data
        return services.experiment_start(
            kind=data["kind"], name=data["name"], arms=self.arms(), user=self.user
        )


class StopForm(forms.Form):
    """Why the experiment stops (kept in the audit)."""

    reason = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
