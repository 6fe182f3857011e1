"""Input checks for the API (query strings and bodies) and the answer shapes the schema shows.

Whatever size the client controls is capped: ``k`` by ``HYBRIDREC_MAX_K``, a batch by
``HYBRIDREC_MAX_BATCH``, every id by ``MAX_ID_LENGTH`` characters and ``exclude`` by
``MAX_EXCLUDE`` ids. Limits are read from settings when a request is checked.
"""

import re

from django.conf import settings
from rest_framework import serializers

from modelstore.models import ModelVersion

from ..services import SCORE_KINDS, STRATEGIES

MAX_ID_LENGTH = 200
MAX_EXCLUDE = 1000
MAX_FILE_NAME_BYTES = 255
# What an id in a URL may be: no control characters (PostgreSQL refuses NUL) and no "/".
ID_PATTERN = r"^[^\x00-\x1f\x7f/]+$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def id_problem(value, max_length=MAX_ID_LENGTH):
    """Return why ``value`` is not an acceptable id in a URL, or None."""
    if len(value) > max_length:
        return f"Ensure this id has no more than {max_length} characters (it has {len(value)})."
    if _CONTROL.search(value):
        return "Ensure this id has no control characters."
    return None


def check_id(field, value):
    """Return ``value`` if it is an acceptable id, else raise a 400 naming ``field``."""
    problem = id_problem(value)
    if problem:
        raise serializers.ValidationError({field: [problem]})
    return value


class _Limits(serializers.Serializer):
    """``k``, ``weight`` and ``exclude``, shared by every recommendation request."""

    k = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="How many items, 1..HYBRIDREC_MAX_K (default HYBRIDREC_DEFAULT_K).",
    )
    exclude = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=True,
        max_length=MAX_EXCLUDE * (MAX_ID_LENGTH + 1),
        help_text="Comma-separated item ids to leave out.",
    )

    def validate_k(self, value):
        limit = settings.HYBRIDREC_MAX_K
        if value > limit:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {limit}.")
        return value

    def validate_exclude(self, value):
        ids = [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value
        if len(ids) > MAX_EXCLUDE:
            raise serializers.ValidationError(f"Ensure there are no more than {MAX_EXCLUDE} ids.")
        for item_id in ids:
            if len(item_id) > MAX_ID_LENGTH:
                raise serializers.ValidationError(
                    f"Ensure every id has no more than {MAX_ID_LENGTH} characters."
                )
        return ids


class RecommendationQuery(_Limits):
    """Query string of GET /api/v1/recommendations/<customer_id>/."""

    strategy = serializers.ChoiceField(choices=STRATEGIES, required=False, default="cf")
    weight = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        help_text="Hybrid only: the share of CF in the blend, 0..1 (default HYBRIDREC_HYBRID_WEIGHT).",
    )


class SimilarQuery(_Limits):
    """Query string of GET /api/v1/items/<item_id>/similar/."""


class BatchRequest(RecommendationQuery):
    """Body of POST /api/v1/recommendations/batch/."""

    customer_ids = serializers.ListField(
        child=serializers.CharField(max_length=MAX_ID_LENGTH, trim_whitespace=False),
        allow_empty=False,
        help_text="Customer ids, at most HYBRIDREC_MAX_BATCH.",
    )
    exclude = serializers.ListField(
        child=serializers.CharField(max_length=MAX_ID_LENGTH, trim_whitespace=False),
        required=False,
        max_length=MAX_EXCLUDE,
        help_text="Item ids to leave out.",
    )

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


class UploadRequest(serializers.Serializer):
    """Multipart body of POST /api/v1/models/."""

    file = serializers.FileField(help_text="A bundle: native or seed layout, plain or compressed.")
    kind = serializers.ChoiceField(choices=ModelVersion.Kind.values, required=False, allow_blank=True)
    label = serializers.CharField(required=False, allow_blank=True, max_length=100)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    activate = serializers.BooleanField(
        required=False, default=False, help_text="Activate once verified (needs the activate permission)."
    )

    def validate_file(self, value):
        # File systems keep names of at most 255 bytes; a longer one could not be staged.
        if len((value.name or "").encode()) > MAX_FILE_NAME_BYTES:
            raise serializers.ValidationError(
                f"Ensure the file name has no more than {MAX_FILE_NAME_BYTES} bytes in UTF-8."
            )
        return value


class RollbackRequest(serializers.Serializer):
    """Body of POST /api/v1/models/rollback/."""

    kind = serializers.ChoiceField(choices=ModelVersion.Kind.values)


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
