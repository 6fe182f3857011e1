"""Input checks for the API (query strings and bodies) and the answer shapes the schema shows.

Whatever size the client controls is capped: ``k`` by ``HYBRIDREC_MAX_K``, a batch by
``HYBRIDREC_MAX_BATCH``, every id by ``MAX_ID_LENGTH`` characters and ``exclude`` by
``MAX_EXCLUDE`` ids. Limits are read from settings when a request is checked.
"""

import re

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from modelstore.models import ModelVersion

from ..services import SCORE_KINDS, STRATEGIES

MAX_ID_LENGTH = 200
MAX_EXCLUDE = 1000
# ``exclude`` in a query string: comma-separated parts of at most MAX_ID_LENGTH characters, and
# short enough (and far under gunicorn's 4094-byte request line) to hold at most MAX_EXCLUDE parts.
MAX_EXCLUDE_TEXT = 2 * MAX_EXCLUDE - 1
EXCLUDE_PATTERN = rf"^[^,]{{0,{MAX_ID_LENGTH}}}(,[^,]{{0,{MAX_ID_LENGTH}}})*$"
MAX_PAGE_SIZE = 500
# What an id may be: no control characters (PostgreSQL refuses NUL); in a URL also no "/".
BODY_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
ID_PATTERN = r"^[^\x00-\x1f\x7f/]+$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUERY_INTEGER = re.compile(r"-?[0-9]{1,18}")


def id_problem(value, max_length=MAX_ID_LENGTH):
    """Return why ``value`` is not an acceptable id in a URL, or None."""
    if len(value) > max_length:
        return f"Ensure this id has no more than {max_length} characters (it has {len(value)})."
    if _CONTROL.search(value):
        return "Ensure this id has no control characters."
    return None


def id_parameter_schema(max_length=MAX_ID_LENGTH):
    """Return the OpenAPI schema of an id in a URL path."""
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": ID_PATTERN}


def check_id(field, value):
    """Return ``value`` if it is an acceptable id, else raise a 400 naming ``field``."""
    problem = id_problem(value)
    if problem:
        raise serializers.ValidationError({field: [problem]})
    return value


# --- fields that take only what the schema says ------------------------------------------------


class QueryInteger(serializers.IntegerField):
    """An integer in a query string: digits only (no "5.0", no spaces)."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not _QUERY_INTEGER.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class JsonInteger(serializers.IntegerField):
    """An integer in a JSON body: a JSON integer, not a string, a float or a boolean."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class JsonNumber(serializers.FloatField):
    """A number in a JSON body: a JSON number, not a string or a boolean."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class JsonChoice(serializers.ChoiceField):
    """One of ``choices`` in a JSON body: a string, not a number that reads like one."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


@extend_schema_field(
    {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": BODY_ID_PATTERN}
)
class IdField(serializers.CharField):
    """A customer or item id in a JSON body: a string of 1..MAX_ID_LENGTH characters, no control ones."""

    def __init__(self, **kwargs):
        super().__init__(max_length=MAX_ID_LENGTH, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if _CONTROL.search(data):
            raise serializers.ValidationError("Ensure this id has no control characters.")
        return super().to_internal_value(data)


# --- requests ---------------------------------------------------------------------------------

K_HELP = "How many items, 1..HYBRIDREC_MAX_K (default HYBRIDREC_DEFAULT_K)."
WEIGHT_HELP = "Hybrid only: the share of CF in the blend, 0..1 (default HYBRIDREC_HYBRID_WEIGHT)."


class SimilarQuery(serializers.Serializer):
    """Query string of GET /api/v1/items/<item_id>/similar/ (parsed by ``params.parse_query``)."""

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


class RecommendationQuery(SimilarQuery):
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


class VersionListQuery(serializers.Serializer):
    """Query string of GET /api/v1/models/."""

    kind = serializers.ChoiceField(choices=ModelVersion.Kind.values, required=False)
    limit = QueryInteger(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, help_text="Versions per page (default 100)."
    )
    offset = QueryInteger(required=False, min_value=0, help_text="How many versions to skip.")


class UploadRequest(serializers.Serializer):
    """Multipart body of POST /api/v1/models/."""

    file = serializers.FileField(help_text="A bundle: native or seed layout, plain or compressed.")
    kind = serializers.ChoiceField(choices=ModelVersion.Kind.values, required=False, allow_blank=True)
    label = serializers.CharField(required=False, allow_blank=True, max_length=100)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    activate = serializers.BooleanField(
        required=False, default=False, help_text="Activate once verified (needs the activate permission)."
    )


class RollbackRequest(serializers.Serializer):
    """JSON body of POST /api/v1/models/rollback/."""

    kind = JsonChoice(choices=ModelVersion.Kind.values)


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
    cf = ModelReference(allow_null=True)
    cb = ModelReference(allow_null=True)


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


class SimilarAnswer(serializers.Serializer):
    item_id = serializers.CharField()
    strategy = serializers.CharField()
    items = ItemAnswer(many=True)
    fallback = serializers.CharField(allow_null=True)
    score_kind = serializers.ChoiceField(choices=list(SCORE_KINDS), help_text=SCORE_KIND_HELP)
    model = ModelsUsed()


class BatchAnswer(serializers.Serializer):
    results = RecommendationAnswer(many=True)


class VersionAnswer(serializers.Serializer):
    """``modelstore.selectors.version_as_dict``."""

    id = serializers.IntegerField()
    label = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    is_active = serializers.BooleanField()
    sha256 = serializers.CharField()
    uploaded_sha256 = serializers.CharField()
    content_sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField(allow_null=True)
    compression = serializers.CharField(allow_null=True)
    format_version = serializers.IntegerField(allow_null=True)
    source_layout = serializers.CharField()
    n_users = serializers.IntegerField()
    n_items = serializers.IntegerField()
    n_recommendations = serializers.IntegerField()
    n_factors = serializers.IntegerField()
    libraries = serializers.DictField()
    metrics = serializers.DictField()
    error = serializers.CharField()
    notes = serializers.CharField()
    created_at = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(allow_null=True)
    verified_at = serializers.DateTimeField(allow_null=True)
    activated_at = serializers.DateTimeField(allow_null=True)
    activated_by = serializers.CharField(allow_null=True)


class VersionPage(serializers.Serializer):
    """A page of GET /api/v1/models/."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = VersionAnswer(many=True)


class ErrorAnswer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="Validation errors by field.")


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
