"""Request and answer shapes of the registry API (``/api/v1/models/…``)."""

from rest_framework import serializers

from hybridrec.api.fields import MAX_PAGE_SIZE, JsonChoice, QueryInteger

from ..models import ModelVersion

# The column's length: a label the API takes always fits.
LABEL_LENGTH = ModelVersion._meta.get_field("label").max_length


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
    label = serializers.CharField(required=False, allow_blank=True, max_length=LABEL_LENGTH)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    activate = serializers.BooleanField(
        required=False, default=False, help_text="Activate once verified (needs the activate permission)."
    )


class RollbackRequest(serializers.Serializer):
    """JSON body of POST /api/v1/models/rollback/."""

    kind = JsonChoice(choices=ModelVersion.Kind.values)


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


class UploadMatchAnswer(VersionAnswer):
    """The version an upload matched, with the options it gave that the version did not take."""

    not_applied = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Present when the upload's label or notes differ from the matched version's, "
        "which keeps its own: {field: why}.",
    )


class VersionPage(serializers.Serializer):
    """A page of GET /api/v1/models/."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = VersionAnswer(many=True)
