"""Input checks for the recommendation API (query strings and bodies) and the answer shapes the schema shows.

Whatever size the client controls is capped: ``k`` by ``HYBRIDREC_MAX_K``, a batch by
``HYBRIDREC_MAX_BATCH``, every id by ``MAX_ID_LENGTH`` characters (``hybridrec.api.fields``)
and ``exclude`` by ``MAX_EXCLUDE`` ids. Limits are read from settings when a request is checked.
"""

from django.conf import settings
from rest_framework import serializers

from hybridrec.api.fields import MAX_ID_LENGTH, IdField, JsonChoice, JsonInteger, JsonNumber
from modelstore.selectors import MAX_ID

from ..services import SCORE_KINDS, STRATEGIES

MAX_EXCLUDE = 1000
# ``exclude`` in a query string: comma-separated parts of at most MAX_ID_LENGTH characters, and
# short enough (and far under gunicorn's 4094-byte request line) to hold at most MAX_EXCLUDE parts.
MAX_EXCLUDE_TEXT = 2 * MAX_EXCLUDE - 1
EXCLUDE_PATTERN = rf"^[^,]{{0,{MAX_ID_LENGTH}}}(,[^,]{{0,{MAX_ID_LENGTH}}})*$"


# --- requests ---------------------------------------------------------------------------------

K_HELP = "How many items, 1..HYBRIDREC_MAX_K (default HYBRIDREC_DEFAULT_K)."
WEIGHT_HELP = "Hybrid only: the share of CF in the blend, 0..1 (default HYBRIDREC_HYBRID_WEIGHT)."


VERSION_HELP = (
    "Staff only: answer from this version (the active one or an arm of the running experiment); "
    'the answer says "forced": true and is not counted in the experiment.'
)


class ItemsQuery(serializers.Serializer):
    """What every recommendation GET takes: k, exclude and (staff) version."""

    k = serializers.IntegerField(
        required=False, min_value=1, max_value=settings.HYBRIDREC_MAX_K, help_text=K_HELP
    )
    exclude = serializers.RegexField(
        EXCLUDE_PATTERN,
        required=False,
        allow_blank=True,
        max_length=MAX_EXCLUDE_TEXT,
        help_text=f"Comma-separated item ids to leave out: at most {MAX_EXCLUDE}, each at most "
        f"{MAX_ID_LENGTH} characters.",
    )
    version = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text=VERSION_HELP)


class SimilarQuery(ItemsQuery):
    """Query string of GET /api/v1/items/<item_id>/similar/ (parsed by ``params.parse_query``)."""

    customer_id = IdField(
        required=False,
        help_text="Who asks: while a CB experiment runs, their arm answers (without it, a random arm).",
    )


class RecommendationQuery(ItemsQuery):
    """Query string of GET /api/v1/recommendations/<customer_id>/ (parsed by ``params.parse_query``)."""

    strategy = serializers.ChoiceField(choices=STRATEGIES, required=False, default="cf")
    weight = serializers.FloatField(required=False, min_value=0.0, max_value=1.0, help_text=WEIGHT_HELP)


class BatchRequest(serializers.Serializer):
    """JSON body of POST /api/v1/recommendations/batch/."""

    customer_ids = serializers.ListField(
        child=IdField(),
        min_length=1,
        max_length=settings.HYBRIDREC_MAX_BATCH,
        help_text="Customer ids, at most HYBRIDREC_MAX_BATCH.",
    )
    k = JsonInteger(required=False, min_value=1, max_value=settings.HYBRIDREC_MAX_K, help_text=K_HELP)
    strategy = JsonChoice(choices=STRATEGIES, required=False, default="cf")
    weight = JsonNumber(required=False, min_value=0.0, max_value=1.0, help_text=WEIGHT_HELP)
    exclude = serializers.ListField(
        child=IdField(), required=False, max_length=MAX_EXCLUDE, help_text="Item ids to leave out."
    )
    version = JsonInteger(required=False, min_value=1, max_value=MAX_ID, help_text=VERSION_HELP)

    # The limits are read again per request: tests and deployments may lower them.
    def validate_k(self, value):
        limit = settings.HYBRIDREC_MAX_K
        if value > limit:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {limit}.")
        return value

    def validate_customer_ids(self, value):
        limit = settings.HYBRIDREC_MAX_BATCH
        if len(value) > limit:
            raise serializers.ValidationError(
                f"Ensure this list has no more than {limit} ids (HYBRIDREC_MAX_BATCH); it has {len(value)}."
            )
        return value


# --- answer shapes, for the schema ------------------------------------------------------------


SCORE_KIND_HELP = "What the scores are: " + "; ".join(f"{kind}: {text}" for kind, text in SCORE_KINDS.items())


class ItemAnswer(serializers.Serializer):
    item_id = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    rank = serializers.IntegerField()
    title = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Present, whatever the strategy, when a loaded CB model has titles; null for an item it lacks.",
    )


class ModelReference(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null when served from an artifacts folder.")
    label = serializers.CharField()
    sha256 = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=["bundle", "files"])


class ModelsUsed(serializers.Serializer):
    """Every version that contributed to the answer; ``score_kind`` says which one ranked it."""

    cf = ModelReference(allow_null=True)
    cb = ModelReference(
        allow_null=True, help_text="The CB version that ranked the answer or gave its titles."
    )


class ExperimentTag(serializers.Serializer):
    id = serializers.IntegerField(help_text="The running experiment.")
    arm = serializers.CharField(help_text="The customer's arm: control, B, C, …")
    version = serializers.IntegerField(help_text="The version that ranked this answer (the arm's).")


REQUEST_ID_HELP = (
    "Issued by the server for this answer (never taken from the request): send it back with the "
    "events about these items."
)
EXPERIMENT_HELP = "Null unless an experiment runs for the kind that ranked this answer and counted it."
FORCED_HELP = "True when staff forced the version (version=…): the answer is not counted."


class RecommendationAnswer(serializers.Serializer):
    customer_id = serializers.CharField()
    strategy = serializers.ChoiceField(choices=STRATEGIES)
    items = ItemAnswer(many=True)
    fallback = serializers.CharField(
        allow_null=True,
        help_text='Null, "popular" (unknown customer or no history) or "cf" (hybrid without CB).',
    )
    score_kind = serializers.ChoiceField(choices=list(SCORE_KINDS), help_text=SCORE_KIND_HELP)
    model = ModelsUsed()
    request_id = serializers.CharField(help_text=REQUEST_ID_HELP)
    experiment = ExperimentTag(allow_null=True, help_text=EXPERIMENT_HELP)
    forced = serializers.BooleanField(help_text=FORCED_HELP)


class SimilarAnswer(serializers.Serializer):
    item_id = serializers.CharField()
    strategy = serializers.CharField()
    items = ItemAnswer(many=True)
    fallback = serializers.CharField(allow_null=True)
    score_kind = serializers.ChoiceField(choices=list(SCORE_KINDS), help_text=SCORE_KIND_HELP)
    model = ModelsUsed()
    request_id = serializers.CharField(help_text=REQUEST_ID_HELP)
    experiment = ExperimentTag(allow_null=True, help_text=EXPERIMENT_HELP)
    forced = serializers.BooleanField(help_text=FORCED_HELP)


class BatchAnswer(serializers.Serializer):
    results = RecommendationAnswer(many=True)


class HealthAnswer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded", "unavailable"])
    can_serve = serializers.BooleanField(help_text="A CF model is loaded and answers.")
    database = serializers.ChoiceField(choices=["ok", "unavailable"])
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="Why the status is not ok, in plain words."
    )
    pid = serializers.IntegerField()
    cb_loaded = serializers.BooleanField()
    models = serializers.DictField(
        help_text=(
            "Per kind: loaded, id, label, sha256, source, serving_active. Staff also get load "
            "seconds, counts, the last load error, file faults and the active version."
        )
    )
    experiments = serializers.DictField(
        help_text='Per kind, the experiment this process serves: {"id", "arms": {arm name: version id}}.'
    )
    withdrawn_arms = serializers.DictField(
        help_text=(
            "Per kind, the running experiment not served because the system withdrew arms of it "
            '(their files changed): {"experiment", "arms": {arm name: {"version", "label"}}}; '
            "staff also get each reason."
        )
    )
    watching = serializers.BooleanField(required=False, help_text="Staff only: a watcher thread checks.")
    checked_at = serializers.DateTimeField(allow_null=True, required=False, help_text="Staff only.")
    check_error = serializers.CharField(allow_null=True, required=False, help_text="Staff only.")


class LiveAnswer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["alive"])
    pid = serializers.IntegerField()


class ReadyAnswer(serializers.Serializer):
    ready = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    pid = serializers.IntegerField()
