"""Reads of the timelines: the links reconciliation made, joined to a page of visible records."""

from __future__ import annotations

from django.db.models import Q

from clearinghouse.reconciliation.models import RecordLink
from clearinghouse.records.visibility import Projected, Visible


def attach_links(items: Projected, *, unit: Visible | None = None) -> Projected:
    """Give each projected record of a unit timeline page (``items``, a ``Projected`` page)
    its ``links``: the records reconciliation matched it with, where the reader may see both
    ends, so a link never reveals a record. Both ends of a link are on the same unit: when the
    page holds only part of the unit's timeline, pass the unit's ``Visible`` as ``unit`` and
    the other ends are looked up there (their refs only, nothing else is read)."""
    by_id = dict(zip(items.ids, items, strict=True))
    for item in items:
        item["links"] = []
    if not by_id:
        return items
    refs = {pk: str(item["ref"]) for pk, item in by_id.items()}
    if unit is not None:
        refs.update(unit.ids_and_refs())
    # Looked up by from_record (the primary key starts with it); both ends must be visible.
    links = (
        RecordLink.objects.filter(from_record_id__in=refs, to_record_id__in=refs)
        .filter(Q(from_record_id__in=by_id) | Q(to_record_id__in=by_id))
        .order_by("created_at", "from_record_id", "to_record_id")
    )
    for kind, one, other, matched_at in links.values_list(
        "kind", "from_record_id", "to_record_id", "created_at"
    ):
        for here, there in ((one, other), (other, one)):
            if here in by_id:
                shown = by_id.get(there, {})
                by_id[here]["links"].append(
                    {
                        "kind": kind,
                        "label": RecordLink.Kind(kind).label,
                        "ref": refs[there],
                        "matched_at": matched_at,
                        # the other end, when it is on this page
                        "other_label": shown.get("kind_label"),
                        "other_at": shown.get("occurred_at"),
                    }
                )
    return items
