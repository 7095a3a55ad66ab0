"""Serializer fields that take only what they say they take.

DRF's text fields turn a number into text (``{"reason": 0}`` becomes ``"0"``) and its date-time
field accepts a time without a zone (read in the server's zone) and any year. A client that
sends either has a bug it should hear about, and the OpenAPI document promises a string and a
date-time with an offset: the fields here refuse the rest. Every serializer of the API uses
them (``tests/partners/test_fields.py`` walks them all).
"""

from datetime import timedelta

from django.db import models
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from .bodies import parse_moment
from .schema import GTIN_SCHEMA


class StrictText:
    """A text field that refuses anything but a JSON string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(StrictText, serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}


class StrictEmailField(StrictText, serializers.EmailField):
    pass


class StrictURLField(StrictText, serializers.URLField):
    pass


class StrictSlugField(StrictText, serializers.SlugField):
    pass


@extend_schema_field(GTIN_SCHEMA)
class GtinField(StrictCharField):
    """A GTIN as the schema says it (the check digit is the service's to check)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 14)
        super().__init__(**kwargs)


class MomentField(serializers.DateTimeField):
    """An ISO 8601 date-time with a time zone, between 1900 and 9000 (``parse_moment``);
    ``past=True``: not later than now (a minute's tolerance for clocks)."""

    def __init__(self, *, past=False, **kwargs):
        self.past = past
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        try:
            moment = parse_moment(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if self.past and moment > timezone.now() + timedelta(minutes=1):
            raise serializers.ValidationError("is in the future")
        return moment


class StrictModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose generated text and date-time fields are the strict ones."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.EmailField: StrictEmailField,
        models.URLField: StrictURLField,
        models.SlugField: StrictSlugField,
        models.DateTimeField: MomentField,
    }

    # DRF checks a unique field or constraint through the model's default manager, which is
    # partner-scoped and fails closed. Uniqueness holds across every partner's rows, as the
    # database constraint does, so these checks read across partners; a check learns only
    # whether a clashing row exists. A related field's queryset is left as it is: the
    # serializer that declares the field scopes it.

    def build_standard_field(self, field_name, model_field):
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        for validator in field_kwargs.get("validators", []):
            if isinstance(validator, UniqueValidator):
                validator.queryset = _across_partners(validator.queryset)
        return field_class, field_kwargs

    def get_unique_together_constraints(self, model):
        for fields, queryset, *rest in super().get_unique_together_constraints(model):
            yield (fields, _across_partners(queryset), *rest)


def _across_partners(queryset):
    rows = queryset.all()
    if hasattr(rows, "unscoped"):  # a partner-scoped queryset (``partners.tenancy``)
        return rows.unscoped("uniqueness holds across every partner's rows, like the constraint")
    return queryset
