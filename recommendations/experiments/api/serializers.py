"""Request and answer shapes of the experiments API (``/api/v1/experiments/…``)."""

from rest_framework import serializers

from hybridrec.api.fields import MAX_PAGE_SIZE, JsonChoice, JsonInteger, JsonNumber, QueryInteger
from modelstore.models import ModelVersion

from ..models import Experiment
from ..services import MAX_ARMS

# The largest offset a query-string integer can hold (QueryInteger reads at most 18 digits).
MAX_OFFSET = 10**18 - 1


class ExperimentListQuery(serializers.Serializer):
    """Query string of GET /api/v1/experiments/."""

    kind = serializers.ChoiceField(choices=ModelVersion.Kind.values, required=False)
    status = serializers.ChoiceField(choices=Experiment.Status.choices, required=False)
    limit = QueryInteger(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, help_text="Experiments per page (default 100)."
    )
    offset = QueryInteger(
        required=False, min_value=0, max_value=MAX_OFFSET, help_text="How many experiments to skip."
    )


class ArmRequest(serializers.Serializer):
    version = JsonInteger(min_value=1, help_text="A ready version of the experiment's kind.")
    share = JsonNumber(
        min_value=0.0, max_value=1.0, help_text="Its share of customers, in (0, 1]; the shares sum to 1."
    )


class StartRequest(serializers.Serializer):
    """JSON body of POST /api/v1/experiments/."""

    kind = JsonChoice(choices=ModelVersion.Kind.values)
    name = serializers.RegexField(
        r"\S", max_length=Experiment._meta.get_field("name").max_length, help_text="Not blank."
    )
    arms = serializers.ListField(
        child=ArmRequest(),
        min_length=2,
        max_length=MAX_ARMS,
        help_text="The kind's active version (the control, named control) and the candidates (named "
        "B, C, … in the order given); the order is also their order on the unit interval.",
    )


class StopRequest(serializers.Serializer):
    """JSON body of POST /api/v1/experiments/<id>/stop/: exactly one of promote and keep_control."""

    promote = JsonInteger(required=False, min_value=1, help_text="A candidate's version id: activate it.")
    keep_control = serializers.BooleanField(required=False, help_text="true: keep the active version.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def validate(self, attrs):
        if ("promote" in attrs) == bool(attrs.get("keep_control")):
            raise serializers.ValidationError(
                'Give either "promote" (a candidate version id) or "keep_control": true.'
            )
        return attrs


class ArmAnswer(serializers.Serializer):
    name = serializers.CharField(help_text="control, B, C, …")
    version = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # DRF stubs: Field.label is a str
    share = serializers.FloatField()
    is_control = serializers.BooleanField()
    position = serializers.IntegerField()
    withdrawn = serializers.CharField(
        allow_null=True, help_text="Why the system withdrew this arm's version (its file changed), else null."
    )


class ExperimentAnswer(serializers.Serializer):
    """``recommendations.experiments.selectors.experiment_as_dict``."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ModelVersion.Kind.values)
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Experiment.Status.choices)
    started_at = serializers.DateTimeField()
    started_by = serializers.CharField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    ended_by = serializers.CharField(allow_null=True)
    outcome = serializers.ChoiceField(choices=Experiment.Outcome.values, allow_blank=True)
    promoted_version = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    arms = ArmAnswer(many=True)
    withdrawn_arms = serializers.ListField(
        child=serializers.CharField(),
        help_text="Arms whose version was withdrawn: the split is not served; stop it.",
    )


class RateResult(serializers.Serializer):
    rate = serializers.FloatField(allow_null=True, help_text="null without impressions.")
    low = serializers.FloatField(allow_null=True, help_text="95 % Wilson interval.")
    high = serializers.FloatField(allow_null=True)


class ComparisonResult(serializers.Serializer):
    difference = serializers.FloatField(allow_null=True, help_text="This arm's rate minus the control's.")
    z = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True, help_text="Two-sided, pooled two-proportion z-test.")
    p_adjusted = serializers.FloatField(allow_null=True, help_text="Holm-adjusted across candidates.")
    significant = serializers.BooleanField(
        help_text="p_adjusted < alpha, and only once every arm has the planned impressions."
    )


class VersusControl(serializers.Serializer):
    ctr = ComparisonResult()
    conversion = ComparisonResult()


class ArmResult(serializers.Serializer):
    arm = serializers.CharField()
    version = serializers.IntegerField()
    is_control = serializers.BooleanField()
    share = serializers.FloatField()
    served = serializers.IntegerField(
        help_text="Customers this arm served, each once however many answers they got: the split is read in these."
    )
    answers = serializers.IntegerField(help_text="Answers counted for this arm (forced answers never are).")
    impressions = serializers.IntegerField(
        help_text="Items shown, once per customer and item, attributed to this arm (docs/EXPERIMENTS.md)."
    )
    clicks = serializers.IntegerField()
    add_to_carts = serializers.IntegerField()
    purchases = serializers.IntegerField()
    ctr = RateResult(help_text="Click-through: clicks / impressions.")
    conversion = RateResult(help_text="Purchases / impressions.")
    vs_control = VersusControl(allow_null=True, help_text="null for the control.")


class PlanResult(serializers.Serializer):
    metric = serializers.CharField()
    baseline_rate = serializers.FloatField()
    min_effect = serializers.FloatField()
    alpha = serializers.FloatField()
    power = serializers.FloatField()
    comparisons = serializers.IntegerField()
    impressions_per_arm = serializers.IntegerField()


class SeriesPoint(serializers.Serializer):
    at = serializers.DateTimeField()
    impressions = serializers.IntegerField()
    clicks = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


class SeriesResult(serializers.Serializer):
    bucket = serializers.ChoiceField(choices=["hour", "day"])
    cumulative = serializers.BooleanField()
    arms = serializers.DictField(
        child=SeriesPoint(many=True), help_text="Cumulative click-through by arm name."
    )


class Results(serializers.Serializer):
    """``recommendations.experiments.results.experiment_results``."""

    arms = ArmResult(many=True)
    plan = PlanResult()
    planned_size_reached = serializers.BooleanField()
    test = serializers.CharField()
    warning = serializers.CharField(allow_null=True)
    attribution_window_seconds = serializers.IntegerField()
    clock_skew_seconds = serializers.IntegerField(
        help_text="How far an event may seem to precede its answer and still count (HYBRIDREC_ATTRIBUTION_CLOCK_SKEW_SECONDS)."
    )
    series = SeriesResult()


class ExperimentDetail(ExperimentAnswer):
    results = Results()


class ExperimentPage(serializers.Serializer):
    """A page of GET /api/v1/experiments/."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ExperimentAnswer(many=True)
