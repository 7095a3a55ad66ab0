"""OpenAPI description of a record on a timeline: a record as the records API shows it, and on a
unit's timeline the links reconciliation made to the other records of the unit."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from clearinghouse.common.api.fields import MomentField
from clearinghouse.reconciliation.models import RecordLink
from clearinghouse.records.api.schema import RecordSerializer, datetime_text
from clearinghouse.records.api.schema import represent as represent_record


class LinkSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RecordLink.Kind.values)
    ref = serializers.UUIDField(help_text="the matched record, on the same unit")
    matched_at = MomentField(help_text="when reconciliation matched the two")


# No docstring of its own: the schema describes it by RecordSerializer's (``RecordComponent``).
class TimelineRecordSerializer(RecordSerializer):
    links = LinkSerializer(
        many=True,
        required=False,
        help_text="on a unit timeline: the records reconciliation matched this one with, "
        "where you may see both",
    )


class RecordComponent(OpenApiSerializerExtension):
    """The schema has one record type, ``Record``, for every operation that answers records
    (lists, details, timelines): a timeline's, whose ``links`` only a unit timeline fills. The
    records API knows nothing of links; this layer, which joins them, describes the whole."""

    target_class = RecordSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict:
        return auto_schema._map_serializer(
            TimelineRecordSerializer, direction, bypass_extensions=True
        )


def represent(item: dict) -> dict:
    """What ``TimelineRecordSerializer(item).data`` gives for a projected record: the record as
    ``clearinghouse.records.api.schema.represent`` writes it, then its links when it has any
    (``selectors.attach_links``)."""
    out = represent_record(item)
    if "links" in item:
        out["links"] = [
            {
                "kind": str(link["kind"]),
                "ref": str(link["ref"]),
                "matched_at": datetime_text(link["matched_at"]),
            }
            for link in item["links"]
        ]
    return out
