"""What both APIs share to check input: ids, strict JSON and query fields, ``checked``, the error shape.

Whatever size the client controls is capped: every id by ``MAX_ID_LENGTH`` characters, a page
by ``MAX_PAGE_SIZE`` rows. Input that will not parse is a 400 naming the field, never a 500.
"""

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from hybridrec.limits import MAX_ID_LENGTH

MAX_PAGE_SIZE = 500
# What an id may be: no control characters (PostgreSQL refuses NUL); in a URL also no "/".
BODY_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
ID_PATTERN = r"^[^\x00-\x1f\x7f/]+$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUERY_INTEGER = re.compile(r"-?[0-9]{1,18}")


def checked(serializer_class, data):
    """Return the validated data or raise the 400 that names the bad fields."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def single_values(params, names):
    """Return ``{name: value}`` for those of ``names`` given; raise a 400 naming any given twice."""
    repeated = {name: ["Give this parameter once."] for name in names if len(params.getlist(name)) > 1}
    if repeated:
        raise ValidationError(repeated)
    return {name: params[name] for name in names if name in params}


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


class ErrorAnswer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="Validation errors by field.")
